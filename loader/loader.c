/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include "writevv.skel.h"
int main(void) { struct writevv_bpf *s = writevv_bpf__open(); printf("%p\n", (void *)s); writevv_bpf__destroy(s); return 0; }
