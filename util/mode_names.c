/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "writevv.h"
#include "mode_names.h"

static const struct {
	const char *name;
	int mode;
} modes[] = {
	{ "default", WRITEVV_MODE_DEFAULT },   { "kernel", WRITEVV_MODE_KERNEL },
	{ "userland", WRITEVV_MODE_USERLAND }, { "iouring", WRITEVV_MODE_IOURING },
	{ "sendfile", WRITEVV_MODE_SENDFILE }, { "zerocopy", WRITEVV_MODE_ZEROCOPY },
};

const char *wvv_mode_name(int mode)
{
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (modes[i].mode == mode)
			return modes[i].name;
	return "unknown";
}

int wvv_mode_parse(const char *name)
{
	size_t i;

	if (!name)
		return -1;
	if (!strcmp(name, "io_uring"))
		return WRITEVV_MODE_IOURING;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(modes[i].name, name))
			return modes[i].mode;
	return -1;
}
