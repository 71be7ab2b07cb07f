/* SPDX-License-Identifier: MIT */
/* Placeholder: replaced by the BPF engine. */
#include <errno.h>
#include "internal.h"
int wvv_kernel_available(void) { return -ENOENT; }
const char *wvv_kernel_reason(void) { return "not implemented yet"; }
int wvv_kernel_run(struct wvv_call *c) { (void)c; return -ENOENT; }
