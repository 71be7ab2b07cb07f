/* SPDX-License-Identifier: MIT */
/* writevv-bench: the command line (options.c), the machine description
 * (machine.c) and the run (main.c): what they share. */
#ifndef WVV_BENCH_CLI_H
#define WVV_BENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

struct bench_opts {
	bool quick;
	bool wl_writevvtest, wl_grid;
	bool recv[8];
	bool eng[N_ENGINES];
	int targets[16], ntargets;
	size_t payloads[16];
	int npayloads;
	int reps;
	int loops;
	int calls;          /* forced open-loop calls per repetition (grid), 0 = automatic */
	int closed_calls;   /* forced closed-loop calls per repetition (grid), -1 = automatic */
	int max_closed;
	const char *csv;
	const char *plot;
	bool calibrate;
	long budget_writes;
	long budget_bytes;
	int max_calls;
};
extern struct bench_opts opt;

/* Parses the command line into opt; exits with the usage on an error. */
void parse_args(int argc, char **argv);
/* Prints the machine and the run's set-up; finds which engines are
 * available (eng_ok, and why not in eng_why). */
void print_header(void);
extern char eng_why[N_ENGINES][200];
extern bool eng_ok[N_ENGINES];

#endif
