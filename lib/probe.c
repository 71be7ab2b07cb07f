/* SPDX-License-Identifier: MIT */
/* When to try an engine, or a thread's part of one, again after it failed
 * to start: one second later (one clock and one delay for every engine). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

#define RETRY_NS 1000000000ll

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

bool wvv_retry_due(_Atomic long long *at)
{
	return now_ns() >= atomic_load(at);
}

void wvv_retry_later(_Atomic long long *at)
{
	atomic_store(at, now_ns() + RETRY_NS);
}

static int transient(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -EAGAIN ||
	       err == -ENOBUFS || err == -EINTR;
}

int wvv_probe_again(int err, _Atomic long long *retry_at)
{
	return transient(err) && wvv_retry_due(retry_at);
}

void wvv_probe_failed(int err, _Atomic long long *retry_at)
{
	if (err)
		wvv_retry_later(retry_at);
}
