/* SPDX-License-Identifier: MIT */
/* The names of the WRITEVV_MODE_* values, as WRITEVV_MODE and the tools'
 * command lines spell them (writevv(3)). */
#ifndef WVV_UTIL_MODE_NAMES_H
#define WVV_UTIL_MODE_NAMES_H

/* "default", "kernel", "userland", "iouring", "sendfile", "zerocopy";
 * "unknown" for any other number. */
const char *wvv_mode_name(int mode);
/* The mode a name stands for ("io_uring" is taken for "iouring"), or -1. */
int wvv_mode_parse(const char *name);

#endif /* WVV_UTIL_MODE_NAMES_H */
