/* SPDX-License-Identifier: MIT */
/* Retrying engines whose setup failed for want of resources. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

static long coarse_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long)ts.tv_sec;
}

static int transient(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -EAGAIN ||
	       err == -ENOBUFS || err == -EINTR;
}

int wvv_probe_again(int err, _Atomic long *retry_s)
{
	return transient(err) && coarse_now_s() >= atomic_load(retry_s);
}

void wvv_probe_failed(int err, _Atomic long *retry_s)
{
	if (err)
		atomic_store(retry_s, coarse_now_s() + 1);
}
