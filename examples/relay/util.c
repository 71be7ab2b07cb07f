/* SPDX-License-Identifier: MIT */
/* writevv-relay: logging, clocks and small helpers shared by its modules. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <writevv.h>

#include "relay.h"

bool relay_verbose;

/* ---- small utilities -------------------------------------------------- */

static void vlog_to_stderr(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "writevv-relay: ");

	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	n = (int)strlen(buf);
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
		/* nothing sensible to do */
	}
}

void logmsg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_to_stderr(fmt, ap);
	va_end(ap);
}

void vlogmsg(const char *fmt, ...)
{
	va_list ap;

	if (!relay_verbose)
		return;
	va_start(ap, fmt);
	vlog_to_stderr(fmt, ap);
	va_end(ap);
}

long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

