/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench: the receiver modes, the connection sets (sender side) and
 * one repetition's accounting of what the receivers got.
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

const struct recv_mode recv_modes[] = {
	{ "drain", NET_LO, RX_DRAIN,
	  "loopback, receiving threads read and check every byte" },
	{ "discard", NET_LO, RX_DISCARD,
	  "loopback, sk_skb verdict program drops at the receiver (byte counts checked; "
	  "a sample of sockets drained and checked)" },
	{ "nic", NET_VETH, RX_DRAIN,
	  "veth pair into a private netns, RPS on the other core, threads read and check every byte" },
	{ "nic-discard", NET_VETH, RX_DISCARD,
	  "veth + RPS as nic, sk_skb verdict program drops at the receiver" },
};
const int n_recv_modes = (int)(sizeof(recv_modes) / sizeof(recv_modes[0]));

/* ---- connections ----------------------------------------------------------*/
static void parent_fail(struct conns *c, const char *what)
{
	int st;

	waitpid(c->rx_pid, &st, 0);
	if (atomic_load(&c->sh->failed) == 2)
		fprintf(stderr, "writevv-bench: FAILED: %s\n", c->sh->why);
	else
		fprintf(stderr, "writevv-bench: FAILED: the receiver process %s\n", what);
	exit(1);
}

struct conns *conns_open(const struct recv_mode *m, int n, int set, int dbase, int max_calls)
{
	struct conns *c = calloc(1, sizeof(*c));
	struct sockaddr_in la;
	int sv[2], i, done = 0;
	uint64_t t0 = now_ns();
	size_t bytes;
	char ack;

	if (!c)
		abort();
	c->n = n;
	c->mode = m;
	c->set = set;
	c->dbase = dbase;
	c->max_calls = max_calls;
	c->snd = malloc(sizeof(int) * (size_t)n);
	c->drained = calloc((size_t)n, 1);
	c->discard_base = calloc((size_t)n, sizeof(uint64_t));
	c->acked_base = calloc((size_t)n, sizeof(uint64_t));
	if (!c->snd || !c->drained || !c->discard_base || !c->acked_base)
		abort();
	for (i = 0; i < n; i++) {
		c->drained[i] = m->rx == RX_DRAIN || i % env.discard_sample == 0;
		if (c->drained[i])
			c->ndrained++;
		else
			c->ndiscard++;
	}
	if (c->ndiscard && dbase + n > DISCARD_MAX) {
		fprintf(stderr, "writevv-bench: discard mode supports %d sockets\n", DISCARD_MAX);
		exit(1);
	}

	/* shared with the receiver process: state, call start times, arrivals */
	bytes = sizeof(struct rx_shared) + sizeof(uint64_t) * ((size_t)max_calls +
							       (size_t)max_calls * (size_t)n);
	bytes = (bytes + 4095) & ~(size_t)4095;
	c->sh = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->sh == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	c->sh_bytes = bytes;
	c->sh->start_ns = (uint64_t *)(c->sh + 1);
	c->sh->done_ns = c->sh->start_ns + max_calls;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("socketpair");
		exit(1);
	}
	fflush(NULL);
	c->rx_pid = fork();
	if (c->rx_pid < 0) {
		perror("fork");
		exit(1);
	}
	if (c->rx_pid == 0) {
		close(sv[0]);
		rx_child(c, sv[1]);
	}
	close(sv[1]);
	c->ctl = sv[0];
	if (xread(c->ctl, &la, sizeof(la)))
		parent_fail(c, "did not start");

	while (done < n) {
		int batch = n - done < 1024 ? n - done : 1024;
		uint16_t ports[1024];

		for (i = done; i < done + batch; i++) {
			struct sockaddr_in me;
			socklen_t ml = sizeof(me);
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

			if (fd < 0) {
				fprintf(stderr, "writevv-bench: socket %d: %s (RLIMIT_NOFILE?)\n", i,
					strerror(errno));
				exit(1);
			}
			if (tune_socket(fd)) {
				fprintf(stderr, "writevv-bench: TCP_CONGESTION %s: %s\n", env.cc,
					strerror(errno));
				exit(1);
			}
			if (connect(fd, (struct sockaddr *)&la, sizeof(la)) ||
			    getsockname(fd, (struct sockaddr *)&me, &ml)) {
				fprintf(stderr, "writevv-bench: connect %d: %s\n", i, strerror(errno));
				exit(1);
			}
			c->snd[i] = fd;
			ports[i - done] = ntohs(me.sin_port);
		}
		if (xwrite(c->ctl, &batch, sizeof(batch)) ||
		    xwrite(c->ctl, ports, sizeof(uint16_t) * (size_t)batch) || xread(c->ctl, &ack, 1))
			parent_fail(c, "failed while accepting");
		done += batch;
	}
	if (xread(c->ctl, &ack, 1) || ack != 'r')
		parent_fail(c, "failed while setting up");
	fprintf(stderr, "  [%s] set %d: %d connections up in %.2f s (%d drained, %d discarded)\n",
		m->name, set, n, (double)(now_ns() - t0) / 1e9, c->ndrained, c->ndiscard);
	return c;
}

void conns_drop_sender_fds(struct conns *c)
{
	int i;

	for (i = 0; i < c->n; i++) {
		close(c->snd[i]);
		c->snd[i] = -1;
	}
	c->snd_closed = true;
}

void conns_stop_rx(struct conns *c)
{
	char ack;
	int st;

	if (!c->rx_pid)
		return;
	if (xwrite(c->ctl, "q", 1) == 0)
		xread(c->ctl, &ack, 1);
	waitpid(c->rx_pid, &st, 0);
	close(c->ctl);
	c->rx_pid = 0;
}

void conns_close(struct conns *c)
{
	int i;

	conns_stop_rx(c);
	if (!c->snd_closed)
		for (i = 0; i < c->n; i++)
			close(c->snd[i]);
	munmap(c->sh, c->sh_bytes);
	free(c->snd);
	free(c->drained);
	free(c->discard_base);
	free(c->acked_base);
	free(c);
}

/* ---- one repetition --------------------------------------------------------*/
static volatile uint64_t *discard_total(void)
{
	return (volatile uint64_t *)&dskel->bss->total_bytes;
}

void rx_begin(struct conns *c, size_t total, uint32_t seed_base, int calls)
{
	struct rx_shared *sh = c->sh;
	int i;

	if (calls > c->max_calls) {
		fprintf(stderr, "writevv-bench: internal error: %d calls > %d\n", calls, c->max_calls);
		exit(1);
	}
	sh->n = c->n;
	sh->total = total;
	sh->seed_base = seed_base;
	sh->calls = calls;
	memset(sh->start_ns, 0, sizeof(uint64_t) * (size_t)calls);
	memset(sh->done_ns, 0, sizeof(uint64_t) * (size_t)calls * (size_t)c->n);
	atomic_store(&sh->completed, 0);
	atomic_store(&sh->wake_at, 0);
	if (c->ndiscard) {
		for (i = 0; i < c->n; i++)
			if (!c->drained[i])
				c->discard_base[i] =
					((volatile struct discard_sock *)dskel->bss->socks_stat)[c->dbase + i].bytes;
		c->discard_total_base = *discard_total();
	}
	atomic_fetch_add_explicit(&sh->gen, 1, memory_order_release);
}

static int rx_failed(struct rx_shared *sh)
{
	int f = atomic_load(&sh->failed);

	if (!f)
		return 0;
	while (atomic_load(&sh->failed) != 2)
		sched_yield();
	fprintf(stderr, "\nwritevv-bench: FAILED: %s\n", sh->why);
	return 1;
}

int rx_wait(struct conns *c, int ncalls, int record_discard_k)
{
	struct rx_shared *sh = c->sh;
	uint32_t target = (uint32_t)ncalls * (uint32_t)c->ndrained;
	uint64_t dtarget = c->discard_total_base + (uint64_t)ncalls * (uint64_t)c->ndiscard * sh->total;
	uint64_t last_progress = now_ns(), last_val = 0, spin_until = last_progress + 100000;
	int i, st = 0;

	/* a short spin first: the sender's core has nothing else to do, and a
	 * futex sleep adds a wake-up (tens of us on this VM) to every call */
	while (now_ns() < spin_until) {
		if (atomic_load(&sh->completed) >= target &&
		    (!c->ndiscard || *discard_total() >= dtarget))
			break;
		__builtin_ia32_pause();
	}
	for (;;) {
		uint32_t got = atomic_load(&sh->completed);
		uint64_t dgot = c->ndiscard ? *discard_total() : 0;
		bool dok = !c->ndiscard || dgot >= dtarget;

		if (rx_failed(sh))
			return -1;
		if (got >= target && dok)
			break;
		if (got + dgot != last_val) {
			last_val = got + dgot;
			last_progress = now_ns();
		} else if (now_ns() - last_progress > 1000000000ull &&
			   waitpid(c->rx_pid, &st, WNOHANG) == c->rx_pid) {
			fprintf(stderr, "\nwritevv-bench: FAILED: the receiver process died (status %d)\n", st);
			c->rx_pid = 0;
			return -1;
		} else if (now_ns() - last_progress > 30ull * 1000000000ull) {
			fprintf(stderr, "\nwritevv-bench: FAILED: no delivery progress for 30 s: "
				"%u/%u socket-calls received by threads, %llu/%llu discarded bytes\n",
				got, target, (unsigned long long)(dgot - c->discard_total_base),
				(unsigned long long)(dtarget - c->discard_total_base));
			return -1;
		}
		if (got < target) {
			struct timespec ts = { 0, dok ? 100000000 : 200000 };

			atomic_store(&sh->wake_at, target);
			if (atomic_load(&sh->completed) >= target)
				continue;
			futex(&sh->completed, FUTEX_WAIT, got, &ts);
		} else {
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
		}
	}
	if (record_discard_k >= 0 && c->ndiscard) {
		volatile struct discard_sock *st = (volatile struct discard_sock *)dskel->bss->socks_stat + c->dbase;

		for (i = 0; i < c->n; i++)
			if (!c->drained[i])
				sh->done_ns[(size_t)record_discard_k * (size_t)c->n + (size_t)i] =
					st[i].last_ns;
	}
	return 0;
}

static int tcp_info_of(int fd, struct tcp_info *ti)
{
	socklen_t l = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &l);
}

void tcp_snapshot(struct conns *c, struct tcp_sums *s)
{
	struct tcp_info ti;
	int i;

	memset(s, 0, sizeof(*s));
	s->valid = !c->snd_closed;
	for (i = 0; i < c->n && s->valid; i++) {
		if (tcp_info_of(c->snd[i], &ti))
			continue;
		c->acked_base[i] = ti.tcpi_bytes_acked;
		s->segs_out += ti.tcpi_segs_out;
		s->retrans += ti.tcpi_total_retrans;
		s->bytes_acked += ti.tcpi_bytes_acked;
	}
}

int rx_finish(struct conns *c, const struct tcp_sums *before, struct tcp_sums *after)
{
	struct rx_shared *sh = c->sh;
	uint64_t want = (uint64_t)sh->calls * sh->total;
	uint64_t deadline = now_ns() + 10ull * 1000000000ull;
	struct tcp_info ti;
	int i;

	/* discard sockets: the program's per-socket byte counts */
	for (i = 0; i < c->n; i++) {
		uint64_t got;

		if (c->drained[i])
			continue;
		got = ((volatile struct discard_sock *)dskel->bss->socks_stat)[c->dbase + i].bytes -
		      c->discard_base[i];
		if (got != want) {
			fprintf(stderr, "\nwritevv-bench: FAILED: discard socket %d received %llu bytes, "
				"expected %llu\n", i, (unsigned long long)got, (unsigned long long)want);
			return -1;
		}
	}
	/* every sender socket: everything acknowledged (ACKs may still be in flight) */
	memset(after, 0, sizeof(*after));
	after->valid = !c->snd_closed;
	for (i = 0; i < c->n && after->valid; i++) {
		for (;;) {
			if (tcp_info_of(c->snd[i], &ti)) {
				perror("TCP_INFO");
				return -1;
			}
			if (ti.tcpi_bytes_acked - c->acked_base[i] >= want)
				break;
			if (now_ns() > deadline) {
				fprintf(stderr, "\nwritevv-bench: FAILED: socket %d: %llu bytes acked, "
					"expected %llu\n", i,
					(unsigned long long)(ti.tcpi_bytes_acked - c->acked_base[i]),
					(unsigned long long)want);
				return -1;
			}
			sched_yield();
		}
		if (ti.tcpi_bytes_acked - c->acked_base[i] != want) {
			fprintf(stderr, "\nwritevv-bench: FAILED: socket %d: %llu bytes acked, expected %llu\n",
				i, (unsigned long long)(ti.tcpi_bytes_acked - c->acked_base[i]),
				(unsigned long long)want);
			return -1;
		}
		after->segs_out += ti.tcpi_segs_out;
		after->retrans += ti.tcpi_total_retrans;
		after->bytes_acked += ti.tcpi_bytes_acked;
	}
	(void)before;
	return 0;
}
