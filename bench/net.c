/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench: connections, receivers (draining threads, the in-kernel
 * discard program, a veth pair into a private network namespace) and the
 * clean-up of everything the benchmark changes on the machine.
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

struct bench_env env = {
	.sender_cpu = 0,
	.cc = "cubic",
	.backlog_set = 100000,
	.rx_threads = 1,
	.discard_sample = 64,
};

/* ---- pattern --------------------------------------------------------------*/
uint8_t *pat_table;
size_t pat_len;

void pattern_init(size_t max_total)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t i;

	pat_len = PAT_OFFSETS + max_total + 4096;
	pat_len = (pat_len + 4095) & ~(size_t)4095;
	if (posix_memalign((void **)&pat_table, 4096, pat_len)) {
		perror("posix_memalign");
		exit(1);
	}
	for (i = 0; i < pat_len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pat_table[i] = (uint8_t)(x >> 29);
	}
}

/* ---- machine state changes and their clean-up ---------------------------*/
static char ns_name[32], ns_path[96], veth_a[16], veth_b[16];
static char addr_a[20], addr_b[20], veth_info[512];
static volatile sig_atomic_t ns_created;
static volatile sig_atomic_t backlog_changed;
static char backlog_saved[32];
static int ns_fd = -1, self_ns_fd = -1;

static const char BACKLOG_PATH[] = "/proc/sys/net/core/netdev_max_backlog";

static int read_file_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, len - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		buf[--r] = 0;
	return 0;
}

static int write_file_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s));
	close(fd);
	return r < 0 ? -1 : 0;
}

/* Only async-signal-safe calls: used from the signal handler too. */
static void cleanup_async(void)
{
	if (backlog_changed) {
		int fd = open(BACKLOG_PATH, O_WRONLY);

		if (fd >= 0) {
			if (write(fd, backlog_saved, strlen(backlog_saved)) < 0) {
				/* nothing more can be done here */
			}
			close(fd);
		}
		backlog_changed = 0;
	}
	if (ns_created) {
		/* What `ip netns del` does; the namespace and with it the veth
		 * pair go away when this process's sockets are closed. */
		umount2(ns_path, MNT_DETACH);
		unlink(ns_path);
		ns_created = 0;
	}
}

static void on_signal(int sig)
{
	static const char msg[] = "\nwritevv-bench: interrupted, cleaning up\n";

	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* ignore */
	}
	cleanup_async();
	signal(sig, SIG_DFL);
	raise(sig);
}

void net_install_signal_handlers(void)
{
	struct sigaction sa;
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE };
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

void net_cleanup(void)
{
	if (ns_fd >= 0) {
		close(ns_fd);
		ns_fd = -1;
	}
	if (ns_created) {
		run_cmd("ip link del %s 2>/dev/null", veth_a);
		run_cmd("ip netns del %s 2>/dev/null", ns_name);
		/* if ip failed, do it by hand */
		cleanup_async();
	}
	if (backlog_changed) {
		write_file_str(BACKLOG_PATH, backlog_saved);
		backlog_changed = 0;
		fprintf(stderr, "writevv-bench: net.core.netdev_max_backlog restored to %s\n",
			backlog_saved);
	}
}

/* Namespaces left by a benchmark that was killed with SIGKILL. */
static void remove_stale_namespaces(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int pid;

		if (sscanf(de->d_name, "wvvb-%d", &pid) == 1 && pid > 0 &&
		    kill(pid, 0) < 0 && errno == ESRCH) {
			fprintf(stderr, "writevv-bench: removing stale namespace %s\n", de->d_name);
			run_cmd("ip netns del %s 2>/dev/null", de->d_name);
		}
	}
	closedir(d);
}

bool veth_is_up(void)
{
	return ns_fd >= 0;
}

const char *veth_desc(void)
{
	return veth_info;
}

int veth_up(char *why, size_t len)
{
	int pid = getpid();
	unsigned net = ((unsigned)pid & 0x3fffu) << 2; /* a /30 inside 10.200.0.0/16 */
	char rps[64], cur[32];

	if (ns_fd >= 0)
		return 0;
	remove_stale_namespaces();
	snprintf(ns_name, sizeof(ns_name), "wvvb-%d", pid);
	snprintf(ns_path, sizeof(ns_path), "/run/netns/%s", ns_name);
	snprintf(veth_a, sizeof(veth_a), "wvb%da", pid % 1000000);
	snprintf(veth_b, sizeof(veth_b), "wvb%db", pid % 1000000);
	snprintf(addr_a, sizeof(addr_a), "10.200.%u.%u", (net >> 8) & 255, (net & 255) + 1);
	snprintf(addr_b, sizeof(addr_b), "10.200.%u.%u", (net >> 8) & 255, (net & 255) + 2);

	if (access("/usr/sbin/ip", X_OK) && access("/sbin/ip", X_OK) && access("/usr/bin/ip", X_OK)) {
		snprintf(why, len, "the ip command (iproute2) is not installed");
		return -1;
	}
	if (run_cmd("ip netns add %s", ns_name)) {
		snprintf(why, len, "ip netns add %s failed (need root)", ns_name);
		return -1;
	}
	ns_created = 1;
	if (run_cmd("ip link add %s type veth peer name %s netns %s", veth_a, veth_b, ns_name) ||
	    run_cmd("ip addr add %s/30 dev %s", addr_a, veth_a) ||
	    run_cmd("ip link set %s up", veth_a) ||
	    run_cmd("ip -n %s addr add %s/30 dev %s", ns_name, addr_b, veth_b) ||
	    run_cmd("ip -n %s link set %s up", ns_name, veth_b) ||
	    run_cmd("ip -n %s link set lo up", ns_name)) {
		snprintf(why, len, "creating the veth pair %s/%s failed", veth_a, veth_b);
		net_cleanup();
		return -1;
	}
	/* RPS: the receive work of the namespace side on the receivers' CPUs */
	snprintf(rps, sizeof(rps), "%lx", env.rx_mask);
	if (run_cmd("ip netns exec %s sh -c 'echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus'",
		    ns_name, rps, veth_b)) {
		snprintf(why, len, "setting rps_cpus on %s failed", veth_b);
		net_cleanup();
		return -1;
	}
	if (read_file_str(BACKLOG_PATH, backlog_saved, sizeof(backlog_saved))) {
		snprintf(why, len, "cannot read %s", BACKLOG_PATH);
		net_cleanup();
		return -1;
	}
	if (atol(backlog_saved) < env.backlog_set) {
		snprintf(cur, sizeof(cur), "%ld", env.backlog_set);
		backlog_changed = 1;
		if (write_file_str(BACKLOG_PATH, cur)) {
			backlog_changed = 0;
			snprintf(why, len, "cannot raise netdev_max_backlog");
			net_cleanup();
			return -1;
		}
	}
	ns_fd = open(ns_path, O_RDONLY | O_CLOEXEC);
	if (self_ns_fd < 0)
		self_ns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns_fd < 0 || self_ns_fd < 0) {
		snprintf(why, len, "cannot open the namespace: %s", strerror(errno));
		net_cleanup();
		return -1;
	}
	snprintf(veth_info, sizeof(veth_info),
		 "veth %s (%s/30) <-> %s (%s/30) in netns %s; rps_cpus(%s)=%s; "
		 "netdev_max_backlog %s -> %ld (restored on exit)",
		 veth_a, addr_a, veth_b, addr_b, ns_name, veth_b, rps, backlog_saved,
		 backlog_changed ? env.backlog_set : atol(backlog_saved));
	return 0;
}

/* ---- the discard program --------------------------------------------------*/
static struct discard_bpf *dskel;

bool discard_loaded(void)
{
	return dskel != NULL;
}

int discard_load(char *why, size_t len)
{
	int err;

	if (dskel)
		return 0;
	dskel = discard_bpf__open_and_load();
	if (!dskel) {
		snprintf(why, len, "loading bench/discard.bpf.c failed: %s", strerror(errno));
		return -1;
	}
	err = bpf_prog_attach(bpf_program__fd(dskel->progs.discard_verdict),
			      bpf_map__fd(dskel->maps.discard_map), BPF_SK_SKB_STREAM_VERDICT, 0);
	if (err) {
		snprintf(why, len, "attaching the sk_skb stream verdict failed: %s", strerror(errno));
		discard_bpf__destroy(dskel);
		dskel = NULL;
		return -1;
	}
	return 0;
}

#define DISCARD_MAX DISCARD_MAX_SOCKS

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

/* The receivers live in another process: shared (not private) futexes. */
static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

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

/* ---- connections ----------------------------------------------------------*/
static int setopt_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

static int tune_socket(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, env.cc, (socklen_t)strlen(env.cc)))
		return -1;
	setopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	/* abortive close: no TIME_WAIT left to exhaust the ports of later cells */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	return 0;
}

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

static int xread(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int xwrite(int fd, const void *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t r = write(fd, (const char *)buf + put, len - put);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		put += (size_t)r;
	}
	return 0;
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

/*
 * The receiver process of one connection set: accepts the connections,
 * puts the discard sockets in the sockmap, drains and checks the others.
 * Separate from the sender so that each process stays within
 * RLIMIT_NOFILE (10000 targets = 10000 descriptors on each side).
 */
static void __attribute__((noreturn)) rx_child(struct conns *c, int ctl)
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

/* Packets dropped at the per-CPU input backlog (netdev_max_backlog), all
 * CPUs: the second column of /proc/net/softnet_stat. */
uint64_t softnet_drops(void)
{
	FILE *f = fopen("/proc/net/softnet_stat", "r");
	unsigned long long total = 0;
	unsigned processed, dropped;
	char line[512];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%x %x", &processed, &dropped) == 2)
			total += dropped;
	fclose(f);
	return total;
}
