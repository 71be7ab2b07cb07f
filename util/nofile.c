/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "nofile.h"

int nofile_set(rlim_t soft)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	rl.rlim_cur = soft;
	if (rl.rlim_max < soft)
		rl.rlim_max = soft;
	return setrlimit(RLIMIT_NOFILE, &rl) ? -errno : 0;
}

rlim_t nofile_raise_to_hard(rlim_t *was)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (was)
		*was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}
