/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench: the receiver process of a connection set and its threads,
 * which drain and check every byte.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "discard_shared.h"
#include "discard.skel.h"
#include "net_internal.h"

/* ---- receiving threads (in the receiver process) ----------------------------*/
struct rx_sock {
	int fd;
	int idx;
	struct rx_shared *sh;
	uint32_t gen;
	uint32_t k;
	size_t off;
};

struct rx_thread {
	pthread_t th;
	int epfd;
	struct rx_shared *sh;
};

#define RXBUF (256 * 1024)

static void rx_fail(struct rx_shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rx_fail(struct rx_shared *sh, const char *fmt, ...)
{
	int expected = 0;
	va_list ap;

	if (atomic_compare_exchange_strong(&sh->failed, &expected, 1)) {
		va_start(ap, fmt);
		vsnprintf(sh->why, sizeof(sh->why), fmt, ap);
		va_end(ap);
		atomic_store(&sh->failed, 2);
	}
	atomic_store(&sh->wake_at, 0);
	futex(&sh->completed, FUTEX_WAKE, 1 << 30, NULL);
}

static void rx_data(struct rx_sock *s, const uint8_t *buf, size_t r)
{
	struct rx_shared *sh = s->sh;
	uint32_t g = atomic_load_explicit(&sh->gen, memory_order_acquire);
	size_t pos = 0;

	if (s->gen != g) {
		s->gen = g;
		s->k = 0;
		s->off = 0;
	}
	while (pos < r) {
		size_t m = sh->total - s->off;
		const uint8_t *exp;

		if (s->k >= (uint32_t)sh->calls) {
			rx_fail(sh, "socket %d: %zu bytes beyond the %d calls of this repetition",
				s->idx, r - pos, sh->calls);
			return;
		}
		if (m > r - pos)
			m = r - pos;
		exp = pattern_at(sh->seed_base + s->k) + s->off;
		if (memcmp(buf + pos, exp, m)) {
			size_t j = 0;

			while (j < m && buf[pos + j] == exp[j])
				j++;
			rx_fail(sh, "DATA MISMATCH at socket %d, call %u of the repetition, byte %zu "
				"of %zu: got 0x%02x, expected 0x%02x",
				s->idx, s->k, s->off + j, sh->total, buf[pos + j], exp[j]);
			return;
		}
		pos += m;
		s->off += m;
		if (s->off == sh->total) {
			uint32_t v;

			sh->done_ns[(size_t)s->k * (size_t)sh->n + (size_t)s->idx] = now_ns();
			s->k++;
			s->off = 0;
			v = atomic_fetch_add(&sh->completed, 1) + 1;
			if (v == atomic_load(&sh->wake_at))
				futex(&sh->completed, FUTEX_WAKE, 1, NULL);
		}
	}
}

static void pin_mask(unsigned long mask)
{
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	for (i = 0; i < (int)(8 * sizeof(mask)); i++)
		if (mask & (1ul << i))
			CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *rx_main(void *arg)
{
	struct rx_thread *t = arg;
	struct epoll_event ev[256];
	uint8_t *buf = malloc(RXBUF);
	int i, n;

	pin_mask(env.rx_mask);
	if (!buf)
		return NULL;
	for (;;) {
		n = epoll_wait(t->epfd, ev, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rx_fail(t->sh, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct rx_sock *s = ev[i].data.ptr;
			size_t budget = 4 * RXBUF;

			if (!s)
				goto out;
			while (budget) {
				ssize_t r = read(s->fd, buf, RXBUF);

				if (r > 0) {
					rx_data(s, buf, (size_t)r);
					budget = budget > (size_t)r ? budget - (size_t)r : 0;
					continue;
				}
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0 && errno == EAGAIN)
					break;
				rx_fail(t->sh, "socket %d: %s", s->idx,
					r == 0 ? "unexpected end of stream" : strerror(errno));
				epoll_ctl(t->epfd, EPOLL_CTL_DEL, s->fd, NULL);
				break;
			}
		}
	}
out:
	free(buf);
	return NULL;
}

/* In the receiver process: keep only the descriptors it needs. */
static void close_other_fds(const int *keep, int nkeep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int *fds = NULL, nfds = 0, cap = 0, i, j, dfd;

	if (!d)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dfd || fd <= 2)
			continue;
		for (j = 0; j < nkeep && keep[j] != fd; j++)
			;
		if (j < nkeep)
			continue;
		if (nfds == cap) {
			cap = cap ? 2 * cap : 1024;
			fds = realloc(fds, sizeof(int) * (size_t)cap);
			if (!fds)
				abort();
		}
		fds[nfds++] = fd;
	}
	closedir(d);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	free(fds);
}

#define CHILD_FAIL(...)                                         \
	do {                                                    \
		rx_fail(sh, __VA_ARGS__);                       \
		_exit(1);                                       \
	} while (0)

static int make_listener(const struct recv_mode *m, struct sockaddr_in *sa, char *why, size_t len)
{
	socklen_t sl = sizeof(*sa);
	int fd;

	if (m->net == NET_VETH) {
		if (setns(ns_fd, CLONE_NEWNET)) {
			snprintf(why, len, "setns: %s", strerror(errno));
			return -1;
		}
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (setns(self_ns_fd, CLONE_NEWNET)) {
			snprintf(why, len, "setns back: %s", strerror(errno));
			return -1;
		}
	} else {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return -1;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	inet_pton(AF_INET, m->net == NET_VETH ? addr_b : "127.0.0.1", &sa->sin_addr);
	if (tune_socket(fd) || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)sa, &sl)) {
		snprintf(why, len, "listener: %s", strerror(errno));
		return -1;
	}
	return fd;
}

/*
 * The receiver process of one connection set: accepts the connections,
 * puts the discard sockets in the sockmap, drains and checks the others.
 * Separate from the sender so that each process stays within
 * RLIMIT_NOFILE (10000 targets = 10000 descriptors on each side).
 */
void __attribute__((noreturn)) rx_child(struct conns *c, int ctl)
{
	struct rx_shared *sh = c->sh;
	const struct recv_mode *m = c->mode;
	int keep[8], nkeep = 0, lfd, n = c->n, done = 0, i, j, t, stop_efd, nthreads;
	int mfd = -1, ifd = -1;
	struct sockaddr_in la;
	struct rx_sock *rxs;
	struct rx_thread *threads;
	int *rcv, *port_idx;
	char why[256], cmd;
	int sigs[] = { SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE };
	size_t k;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "wvvb-receiver");
	/* ^C goes to the whole process group: the sender cleans up and
	 * this process dies with it (PDEATHSIG) */
	signal(SIGINT, SIG_IGN);
	for (k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
		signal(sigs[k], SIG_DFL);
	keep[nkeep++] = ctl;
	if (ns_fd >= 0)
		keep[nkeep++] = ns_fd;
	if (self_ns_fd >= 0)
		keep[nkeep++] = self_ns_fd;
	if (c->ndiscard) {
		mfd = bpf_map__fd(dskel->maps.discard_map);
		ifd = bpf_map__fd(dskel->maps.discard_index);
		keep[nkeep++] = mfd;
		keep[nkeep++] = ifd;
	}
	close_other_fds(keep, nkeep);
	pin_mask(env.rx_mask);

	rcv = malloc(sizeof(int) * (size_t)n);
	rxs = calloc((size_t)n, sizeof(*rxs));
	port_idx = malloc(sizeof(int) * 65536);
	if (!rcv || !rxs || !port_idx)
		CHILD_FAIL("receiver: out of memory");
	lfd = make_listener(m, &la, why, sizeof(why));
	if (lfd < 0)
		CHILD_FAIL("receiver: %s", why);
	if (xwrite(ctl, &la, sizeof(la)))
		_exit(1);
	/* batches: the sender connects, sends the local ports in index order */
	while (done < n) {
		int batch;
		uint16_t ports[1024];

		if (xread(ctl, &batch, sizeof(batch)) || batch <= 0 || batch > 1024 ||
		    xread(ctl, ports, sizeof(uint16_t) * (size_t)batch))
			_exit(1);
		for (j = 0; j < batch; j++)
			port_idx[ports[j]] = done + j;
		for (j = 0; j < batch; j++) {
			struct sockaddr_in peer;
			socklen_t pl = sizeof(peer);
			int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0)
				CHILD_FAIL("receiver: accept: %s", strerror(errno));
			if (tune_socket(fd))
				CHILD_FAIL("receiver: TCP_CONGESTION %s: %s", env.cc, strerror(errno));
			rcv[port_idx[ntohs(peer.sin_port)]] = fd;
		}
		done += batch;
		if (xwrite(ctl, "k", 1))
			_exit(1);
	}
	close(lfd);
	free(port_idx);

	for (i = 0; i < n; i++) {
		rxs[i].fd = rcv[i];
		rxs[i].idx = i;
		rxs[i].sh = sh;
		rxs[i].gen = ~0u;
		if (c->drained[i])
			continue;
		{
			uint64_t cookie, fdv = (uint64_t)rcv[i];
			socklen_t cl = sizeof(cookie);
			uint32_t key = (uint32_t)(c->dbase + i);

			if (getsockopt(rcv[i], SOL_SOCKET, SO_COOKIE, &cookie, &cl))
				CHILD_FAIL("receiver: SO_COOKIE: %s", strerror(errno));
			dskel->bss->socks_stat[c->dbase + i].bytes = 0;
			dskel->bss->socks_stat[c->dbase + i].last_ns = 0;
			if (bpf_map_update_elem(ifd, &cookie, &key, BPF_ANY) ||
			    bpf_map_update_elem(mfd, &key, &fdv, BPF_ANY))
				CHILD_FAIL("receiver: adding socket %d to the discard map: %s", i,
					   strerror(errno));
		}
	}

	stop_efd = eventfd(0, EFD_CLOEXEC);
	nthreads = env.rx_threads;
	threads = calloc((size_t)nthreads, sizeof(*threads));
	if (!threads || stop_efd < 0)
		CHILD_FAIL("receiver: out of memory");
	for (t = 0; t < nthreads; t++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		threads[t].sh = sh;
		threads[t].epfd = epoll_create1(EPOLL_CLOEXEC);
		epoll_ctl(threads[t].epfd, EPOLL_CTL_ADD, stop_efd, &ev);
	}
	for (i = 0, j = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN };

		if (!c->drained[i])
			continue;
		ev.data.ptr = &rxs[i];
		if (epoll_ctl(threads[j++ % nthreads].epfd, EPOLL_CTL_ADD, rcv[i], &ev))
			CHILD_FAIL("receiver: epoll_ctl: %s", strerror(errno));
	}
	for (t = 0; t < nthreads; t++)
		pthread_create(&threads[t].th, NULL, rx_main, &threads[t]);
	if (xwrite(ctl, "r", 1))
		_exit(1);

	/* until the sender says quit (or goes away) */
	while (xread(ctl, &cmd, 1) == 0 && cmd != 'q')
		;
	{
		uint64_t one = 1;

		if (write(stop_efd, &one, sizeof(one)) < 0)
			_exit(1);
	}
	for (t = 0; t < nthreads; t++)
		pthread_join(threads[t].th, NULL);
	for (i = 0; i < n; i++) {
		if (!c->drained[i]) {
			uint64_t cookie;
			socklen_t cl = sizeof(cookie);

			if (!getsockopt(rcv[i], SOL_SOCKET, SO_COOKIE, &cookie, &cl))
				bpf_map_delete_elem(ifd, &cookie);
		}
		close(rcv[i]);
	}
	if (xwrite(ctl, "x", 1))
		_exit(1);
	_exit(0);
}
