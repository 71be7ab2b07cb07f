/* SPDX-License-Identifier: MIT */
/* RLIMIT_NOFILE: how many descriptors the fan-out may hold. */
#ifndef WVV_UTIL_NOFILE_H
#define WVV_UTIL_NOFILE_H

#include <sys/resource.h>

/* Sets the soft limit to soft, and the hard limit to soft where it is lower
 * (allowed with CAP_SYS_RESOURCE). Returns 0 or -errno (nothing changed). */
int nofile_set(rlim_t soft);
/* Raises the soft limit to the hard limit. Returns the soft limit now in
 * force (0 if it cannot be read); *was, if not NULL, gets the one before. */
rlim_t nofile_raise_to_hard(rlim_t *was);

#endif /* WVV_UTIL_NOFILE_H */
