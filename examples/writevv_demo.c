/* SPDX-License-Identifier: MIT */
/*
 * writevv-demo: fan one stream out to N loopback TCP viewers with writevv,
 * check every byte at every viewer, print the per-target status summary and
 * the sender's cost of each engine against the plain writev loop
 * (writevv's userland mode), in interleaved rounds.
 *
 *   writevv-demo [--targets N] [--calls N] [--size BYTES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <writevv.h>

struct viewer {
	int tx, rx;
	uint64_t got;     /* bytes received */
	uint64_t bad;     /* bytes that did not match the stream */
};

#define ROUNDS 3

static const struct {
	int mode;
	const char *name;
} engines[] = {
	{ WRITEVV_MODE_USERLAND, "writev loop (userland)" },
	{ WRITEVV_MODE_KERNEL, "kernel (BPF sk_msg)" },
	{ WRITEVV_MODE_IOURING, "io_uring batch" },
	{ WRITEVV_MODE_DEFAULT, "default" },
};
#define NENGINES ((int)(sizeof(engines) / sizeof(engines[0])))

static struct viewer *viewers;
static int nviewers;
static _Atomic int stop_rx;

/* Byte k of the stream: every viewer must see exactly this sequence. */
static unsigned char stream_byte(uint64_t k)
{
	return (unsigned char)((k * 0x9e3779b97f4a7c15ull) >> 56);
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *rx_main(void *arg)
{
	int ep = *(int *)arg;
	struct epoll_event ev[256];
	unsigned char buf[65536];

	while (!atomic_load(&stop_rx)) {
		int n = epoll_wait(ep, ev, 256, 50), i;

		for (i = 0; i < n; i++) {
			struct viewer *v = &viewers[ev[i].data.u32];
			ssize_t r, k;

			while ((r = recv(v->rx, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
				for (k = 0; k < r; k++)
					if (buf[k] != stream_byte(v->got + (uint64_t)k))
						v->bad++;
				v->got += (uint64_t)r;
			}
		}
	}
	return NULL;
}

static int open_viewers(int n, int ep)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l, i, one = 1;
	char cc[] = "cubic";

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1024) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		return -errno;
	for (i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		struct viewer *v = &viewers[i];

		v->tx = socket(AF_INET, SOCK_STREAM, 0);
		if (v->tx < 0)
			return -errno;
		setsockopt(v->tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(v->tx, IPPROTO_TCP, TCP_CONGESTION, cc, sizeof(cc));
		if (connect(v->tx, (struct sockaddr *)&a, sizeof(a)))
			return -errno;
		v->rx = accept(l, NULL, NULL);
		if (v->rx < 0)
			return -errno;
		epoll_ctl(ep, EPOLL_CTL_ADD, v->rx, &ev);
	}
	close(l);
	return 0;
}

/* Run 'calls' writevv calls in 'mode'; returns sender CPU seconds. */
static double run(int mode, int calls, size_t size, uint64_t *offset, int *fds, size_t *rets,
		  int *errs, long *full, long *partial, long *failed)
{
	unsigned char *buf = malloc(size);
	struct iovec iov[4];
	double t0;
	size_t q = size / 4;
	int c, i, m = mode;

	if (writevv_control(WRITEVV_SETMODE, &m)) {
		fprintf(stderr, "writevv-demo: mode %d unavailable: %s (%s)\n", mode, strerror(errno),
			writevv_kernel_status());
		exit(1);
	}
	writevv_control(WRITEVV_GETMODE, &m);
	if (mode != WRITEVV_MODE_DEFAULT && m != mode) {
		fprintf(stderr, "writevv-demo: asked for engine %d, got %d\n", mode, m);
		exit(1);
	}
	/* Four iovecs, like the original writevvtest. */
	for (i = 0; i < 4; i++) {
		iov[i].iov_base = buf + (size_t)i * q;
		iov[i].iov_len = i == 3 ? size - 3 * q : q;
	}
	t0 = cpu_now();
	for (c = 0; c < calls; c++) {
		size_t k;

		for (k = 0; k < size; k++)
			buf[k] = stream_byte(*offset + k);
		writevv(fds, nviewers, iov, 4, rets, errs);
		for (i = 0; i < nviewers; i++) {
			if (errs[i])
				(*failed)++;
			else if (rets[i] == size)
				(*full)++;
			else
				(*partial)++;
		}
		*offset += size;
	}
	t0 = cpu_now() - t0;
	free(buf);
	return t0;
}

int main(int argc, char **argv)
{
	int calls = 200, opt, ep, i, *fds, *errs, mode = 0;
	size_t size = 4 * 974, *rets;
	long full = 0, partial = 0, failed = 0;
	uint64_t offset = 0, bad = 0, missing = 0;
	double best[NENGINES], w0, waited;
	int kernel_ok, r, e;
	struct rlimit rl;
	pthread_t thr;
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "calls", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	nviewers = 1000;
	while ((opt = getopt_long(argc, argv, "t:c:s:h", opts, NULL)) != -1) {
		switch (opt) {
		case 't': nviewers = atoi(optarg); break;
		case 'c': calls = atoi(optarg); break;
		case 's': size = (size_t)strtoul(optarg, NULL, 0); break;
		default:
			printf("usage: %s [--targets N] [--calls N] [--size BYTES]\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (nviewers < 1 || calls < 1 || size < 4) {
		fprintf(stderr, "writevv-demo: need targets >= 1, calls >= 1, size >= 4\n");
		return 2;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	viewers = calloc((size_t)nviewers, sizeof(*viewers));
	fds = calloc((size_t)nviewers, sizeof(int));
	errs = calloc((size_t)nviewers, sizeof(int));
	rets = calloc((size_t)nviewers, sizeof(size_t));
	ep = epoll_create1(0);
	if (open_viewers(nviewers, ep)) {
		fprintf(stderr, "writevv-demo: cannot open %d loopback connections: %s\n", nviewers,
			strerror(errno));
		return 1;
	}
	for (i = 0; i < nviewers; i++)
		fds[i] = viewers[i].tx;
	pthread_create(&thr, NULL, rx_main, &ep);

	/* Same stream, same viewers; engines take turns, ROUNDS times, and
	 * each engine's best round counts (the least disturbed by others). */
	kernel_ok = writevv_control(WRITEVV_SETMODE, &(int){ WRITEVV_MODE_KERNEL }) == 0;
	if (!kernel_ok)
		printf("kernel engine: unavailable (%s)\n", writevv_kernel_status());
	for (r = 0; r < ROUNDS; r++)
		for (e = 0; e < NENGINES; e++) {
			double t;

			if (engines[e].mode == WRITEVV_MODE_KERNEL && !kernel_ok)
				continue;
			t = run(engines[e].mode, calls, size, &offset, fds, rets, errs, &full, &partial,
				&failed);
			if (r == 0 || t < best[e])
				best[e] = t;
		}
	writevv_control(WRITEVV_SETMODE, &(int){ WRITEVV_MODE_DEFAULT });
	writevv_control(WRITEVV_GETMODE, &mode);

	w0 = wall_now();
	for (;;) {
		missing = 0;
		for (i = 0; i < nviewers; i++)
			missing += offset - viewers[i].got;
		if (!missing || wall_now() - w0 > 20)
			break;
		usleep(10000);
	}
	waited = wall_now() - w0;
	atomic_store(&stop_rx, 1);
	pthread_join(thr, NULL);
	for (i = 0; i < nviewers; i++)
		bad += viewers[i].bad;

	printf("writevv-demo: %d viewers, %d calls x %zu bytes (4 iovecs) per engine and round, %d rounds\n",
	       nviewers, calls, size, ROUNDS);
	printf("default mode uses: %s\n", mode == WRITEVV_MODE_KERNEL ? "kernel" :
	       mode == WRITEVV_MODE_IOURING ? "io_uring" : "userland");
	printf("per-target status: %ld full, %ld partial, %ld failed\n", full, partial, failed);
	printf("receivers: %llu bytes each expected, %llu missing, %llu wrong (drained in %.3f s)\n",
	       (unsigned long long)offset, (unsigned long long)missing, (unsigned long long)bad,
	       waited);
	printf("sender CPU per target-write (best of %d rounds):\n", ROUNDS);
	for (e = 0; e < NENGINES; e++) {
		if (engines[e].mode == WRITEVV_MODE_KERNEL && !kernel_ok)
			continue;
		printf("  %-24s %7.2f us   loop/engine %.2fx\n", engines[e].name,
		       best[e] * 1e6 / ((double)calls * nviewers),
		       best[e] > 0 ? best[0] / best[e] : 0.0);
	}
	if (missing || bad || partial || failed) {
		printf("writevv-demo: FAILED\n");
		return 1;
	}
	printf("writevv-demo: every byte arrived at every viewer\n");
	return 0;
}
