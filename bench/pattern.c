/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench: the payload pattern (bench.h), which every receiver checks.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

uint8_t *pat_table;
size_t pat_len;

void pattern_init(size_t max_total)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t i;

	pat_len = PAT_OFFSETS + max_total + 4096;
	pat_len = (pat_len + 4095) & ~(size_t)4095;
	if (posix_memalign((void **)&pat_table, 4096, pat_len)) {
		perror("posix_memalign");
		exit(1);
	}
	for (i = 0; i < pat_len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pat_table[i] = (uint8_t)(x >> 29);
	}
}
