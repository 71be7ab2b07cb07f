// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* writevv-loader: the helpers of loader.h that every part of it uses. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "loader.h"

void errmsg(const char *fmt, ...)
{
	va_list ap;

	fputs("writevv-loader: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int join(char *buf, const char *dir, const char *name)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}
