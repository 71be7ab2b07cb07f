/* SPDX-License-Identifier: MIT */
/* Reading the loader's maps wvv_config and wvv_stats (bpf/writevv_frame.h),
 * for the library, the loader and the tests. */
#ifndef WVV_UTIL_PINNED_MAPS_H
#define WVV_UTIL_PINNED_MAPS_H

#include "writevv_frame.h"

/* wvv_config[0], whatever its value's size (up to 4 KiB), so that a foreign
 * ABI is still recognised by its first word: what is beyond this build's
 * struct is dropped, what is missing stays 0. -EPROTO when fd is not a
 * one-word-keyed array. Returns 0 or -errno. */
int wvv_read_config(int fd, struct wvv_config *cfg);
/* The per-CPU counters of wvv_stats[0] summed over the possible CPUs.
 * The caller checks the value size first where the ABI is not known to
 * match. Returns 0 or -errno. */
int wvv_sum_stats(int fd, struct wvv_stats *sum);

#endif /* WVV_UTIL_PINNED_MAPS_H */
