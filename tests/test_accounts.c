/* SPDX-License-Identifier: MIT */
/*
 * Isolation between service accounts, tried as an attacker would (issue 10).
 *
 * The test (root) makes a group G and two accounts in it, a victim and an
 * attacker, and loads writevv with `--group G` into a pin directory of its
 * own. The victim service broadcasts "VICTIM-SECRET-<seq>" in kernel mode
 * to clients of its own; meanwhile the attacker, with all that membership
 * of G gives it, attacks every pin tree it can reach but its own:
 *   steal      re-point the victim's wvv_targets keys at its own socket
 *   duplicate  consume the victim's status rings while it sends
 *   fdleak     delete wvv_ctl entries, rewrite slot ports, detach the program
 *   tamper     rewrite wvv_config, zero wvv_stats, re-point wvv_rings, put a
 *              socket of its own in the victim's wvv_ctl (to spoof a slot)
 *   exhaust    take every free slot, fill wvv_targets with keys of one socket
 * test_outsider does all of it from an account outside G; test_late_member
 * checks that an account joining G later gets a tree of its own only at the
 * next `load --group G`.
 * Each test asserts that the attacker reaches nothing and gets nothing, that
 * each client of the victim gets exactly the bytes writevv reported (no
 * loss, no duplicate, in sequence), that every frame went through the
 * program (the victim's own counters), and that the victim's descriptor
 * count stays flat.
 *
 * Where the kernel refuses bpf() to unprivileged users (6.1 with
 * kernel.unprivileged_bpf_disabled), both accounts get CAP_BPF, as a
 * service needs it there to use kernel mode at all (writevv-loader(8)).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef WVV_PIN_ACCOUNT_DIR /* (so that the same attacks can be run on older builds) */
#define WVV_PIN_ACCOUNT_DIR "u"
#endif

#define CLIENTS 4
#define MSG_A 20    /* before the attack: clients 0 and 1 */
#define MSG_B 600   /* during it: all clients (2 and 3 register now) */
#define MSG_LEN 24
#define SLOTS 8
#define TARGETS 256

static struct {
	char group[32], victim[32], attacker[32], outsider[32];
	uid_t vuid, auid, ouid;
	gid_t gid, ogid;
	int outside; /* the attacker of this test is the outsider (not in G) */
	char dir[256];
	int need_cap;
	int made_group, made_victim, made_attacker, made_outsider;
	char late[40]; /* the late member, while it exists */
} ac_cfg;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Become 'uid' (group G only), optionally keeping CAP_BPF. */
static void drop_to(uid_t uid)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	gid_t gid = uid == ac_cfg.ouid ? ac_cfg.ogid : ac_cfg.gid;

	if (setgroups(1, &gid) || setresgid(gid, gid, gid))
		_exit(90);
	if (ac_cfg.need_cap && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		_exit(91);
	if (setresuid(uid, uid, uid))
		_exit(92);
	if (ac_cfg.need_cap) {
		memset(d, 0, sizeof(d));
		d[CAP_BPF / 32].effective = d[CAP_BPF / 32].permitted = 1u << (CAP_BPF % 32);
		if (syscall(SYS_capset, &h, d))
			_exit(93);
	}
}

static int obj_get(const char *path, __u32 flags)
{
	LIBBPF_OPTS(bpf_obj_get_opts, o, .file_flags = flags);

	return bpf_obj_get_opts(path, &o);
}

/* The tree the library of 'uid' uses. */
static void tree_of(uid_t uid, char *out, size_t len)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s/%u", ac_cfg.dir, WVV_PIN_ACCOUNT_DIR, (unsigned)uid);
	if (access(p, X_OK) == 0)
		snprintf(out, len, "%s", p);
	else
		snprintf(out, len, "%s", ac_cfg.dir);
}

/* Can an unprivileged victim open its own pins? (No on 6.1 with
 * unprivileged_bpf_disabled.) Decides whether the accounts get CAP_BPF. */
static int probe_need_cap(void)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		char tree[512], path[600];
		int fd;

		ac_cfg.need_cap = 0;
		drop_to(ac_cfg.vuid);
		tree_of(ac_cfg.vuid, tree, sizeof(tree));
		snprintf(path, sizeof(path), "%s/%s", tree, WVV_PIN_CONFIG);
		fd = obj_get(path, BPF_F_RDONLY);
		_exit(fd >= 0 ? 0 : errno == EPERM ? 1 : 2);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Each attack gets a fresh load: no attack profits from an earlier one. */
static int load(void **state)
{
	(void)state;
	if (sh("%s unload --pin-dir %s >/dev/null", loader_path(), ac_cfg.dir) ||
	    sh("%s load --pin-dir %s --group %s --slots %d --targets %d >/dev/null", loader_path(),
	       ac_cfg.dir, ac_cfg.group, SLOTS, TARGETS))
		return -1;
	return 0;
}

static int teardown(void **state);

static int make_accounts(void)
{
	const char *base = getenv("WRITEVV_PIN_DIR");
	struct passwd *pw;
	struct group *g;
	int pid = (int)getpid();

	if (geteuid() != 0) {
		fprintf(stderr, "test_accounts makes accounts: it must run as root\n");
		return -1;
	}
	snprintf(ac_cfg.group, sizeof(ac_cfg.group), "wvvt%dg", pid);
	snprintf(ac_cfg.victim, sizeof(ac_cfg.victim), "wvvt%dv", pid);
	snprintf(ac_cfg.attacker, sizeof(ac_cfg.attacker), "wvvt%da", pid);
	snprintf(ac_cfg.dir, sizeof(ac_cfg.dir), "%s-acct", base ? base : WVV_PIN_DIR_DEFAULT);
	if (sh("groupadd %s", ac_cfg.group))
		return -1;
	ac_cfg.made_group = 1;
	if (sh("useradd -M -N -g %s -d /nonexistent -s /usr/sbin/nologin %s", ac_cfg.group, ac_cfg.victim))
		return -1;
	ac_cfg.made_victim = 1;
	if (sh("useradd -M -N -g %s -d /nonexistent -s /usr/sbin/nologin %s", ac_cfg.group, ac_cfg.attacker))
		return -1;
	ac_cfg.made_attacker = 1;
	snprintf(ac_cfg.outsider, sizeof(ac_cfg.outsider), "wvvt%do", pid);
	if (sh("useradd -M -N -g nogroup -d /nonexistent -s /usr/sbin/nologin %s", ac_cfg.outsider))
		return -1;
	ac_cfg.made_outsider = 1;
	pw = getpwnam(ac_cfg.outsider);
	if (!pw)
		return -1;
	ac_cfg.ouid = pw->pw_uid;
	ac_cfg.ogid = pw->pw_gid;
	g = getgrnam(ac_cfg.group);
	if (!g)
		return -1;
	ac_cfg.gid = g->gr_gid;
	pw = getpwnam(ac_cfg.victim);
	if (!pw)
		return -1;
	ac_cfg.vuid = pw->pw_uid;
	pw = getpwnam(ac_cfg.attacker);
	if (!pw)
		return -1;
	ac_cfg.auid = pw->pw_uid;
	if (load(NULL))
		return -1;
	ac_cfg.need_cap = probe_need_cap();
	if (ac_cfg.need_cap < 0 || ac_cfg.need_cap > 1) {
		fprintf(stderr, "the victim cannot open its own pins\n");
		return -1;
	}
	fprintf(stderr, "accounts: victim %u, attacker %u, group %u; %s\n", (unsigned)ac_cfg.vuid,
		(unsigned)ac_cfg.auid, (unsigned)ac_cfg.gid,
		ac_cfg.need_cap ? "bpf() needs CAP_BPF here: both accounts get it"
			      : "unprivileged accounts, no capabilities");
	return 0;
}

/* (A failed setup removes what it made: cmocka skips the teardown then.) */
static int setup(void **state)
{
	if (make_accounts() == 0)
		return 0;
	teardown(state);
	return -1;
}

static int teardown(void **state)
{
	(void)state;
	sh("%s unload --pin-dir %s >/dev/null", loader_path(), ac_cfg.dir);
	if (ac_cfg.late[0])
		sh("userdel %s", ac_cfg.late);
	if (ac_cfg.made_outsider)
		sh("userdel %s", ac_cfg.outsider);
	if (ac_cfg.made_attacker)
		sh("userdel %s", ac_cfg.attacker);
	if (ac_cfg.made_victim)
		sh("userdel %s", ac_cfg.victim);
	if (ac_cfg.made_group)
		sh("groupdel %s", ac_cfg.group);
	return 0;
}

/* ---- the victim -------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Sum of the per-CPU frame counts of the victim's own tree (read-only). */
static long long frames_counted(void)
{
	char tree[512], path[600];
	int ncpu = libbpf_num_possible_cpus(), fd, i;
	struct wvv_stats *v;
	long long sum = 0;
	__u32 zero = 0;

	tree_of(geteuid(), tree, sizeof(tree));
	snprintf(path, sizeof(path), "%s/%s", tree, WVV_PIN_STATS);
	fd = obj_get(path, BPF_F_RDONLY);
	if (fd < 0 || ncpu <= 0)
		return -1;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v || bpf_map_lookup_elem(fd, &zero, v))
		sum = -1;
	for (i = 0; sum >= 0 && i < ncpu; i++)
		sum += (long long)v[i].frames;
	free(v);
	close(fd);
	return sum;
}

static int tcp_pair(int *tx, int *rx, const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_aton(ip, &a.sin_addr);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		return -1;
	*tx = socket(AF_INET, SOCK_STREAM, 0);
	if (*tx < 0 || connect(*tx, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	*rx = accept(l, NULL, NULL);
	close(l);
	setsockopt(*tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return *rx < 0 ? -1 : 0;
}

struct victim {
	int tx[CLIENTS], rx[CLIENTS];
	unsigned char *want[CLIENTS]; /* exactly what writevv reported, in order */
	size_t want_len[CLIENTS];
	int dead[CLIENTS];
	unsigned seq;
	int failures;
};

/* One writevv call of message 'seq' to clients [0, n). */
static void broadcast(struct victim *v, int n)
{
	char msg[MSG_LEN + 1];
	struct iovec iov = { msg, MSG_LEN };
	size_t ret[CLIENTS];
	int fds[CLIENTS], err[CLIENTS], idx[CLIENTS], k = 0, i;

	snprintf(msg, sizeof(msg), "VICTIM-SECRET-%09u|", v->seq++);
	for (i = 0; i < n; i++)
		if (!v->dead[i]) {
			idx[k] = i;
			fds[k++] = v->tx[i];
		}
	if (writevv(fds, k, &iov, 1, ret, err) < 0) {
		fprintf(stderr, "victim: writevv: %s\n", strerror(errno));
		v->failures++;
		return;
	}
	for (i = 0; i < k; i++) {
		int c = idx[i];

		if (ret[i] != (size_t)-1 && ret[i] <= MSG_LEN) {
			memcpy(v->want[c] + v->want_len[c], msg, ret[i]);
			v->want_len[c] += ret[i];
		}
		if (err[i] || ret[i] != MSG_LEN) {
			/* Reported as such; never written to again. */
			fprintf(stderr, "victim: client %d: message %u: %zd bytes, %s\n", c, v->seq - 1,
				(ssize_t)ret[i], strerror(err[i]));
			v->dead[c] = 1;
			v->failures++;
		}
	}
}

static int mode_now(void)
{
	int m = -1;

	writevv_control(WRITEVV_GETMODE, &m);
	return m;
}

struct phase_b {
	struct victim *v;
	int fds_first, fds_last, mode;
	long long frames_before, frames_after;
};

/* The attack phase runs on a thread of its own: it needs a slot. */
static void *phase_b(void *arg)
{
	struct phase_b *b = arg;
	int i;

	b->frames_before = frames_counted();
	broadcast(b->v, CLIENTS);
	b->fds_first = count_fds();
	for (i = 1; i < MSG_B; i++)
		broadcast(b->v, CLIENTS);
	b->fds_last = count_fds();
	b->mode = mode_now();
	b->frames_after = frames_counted();
	return NULL;
}

static int read_all(int fd, unsigned char *buf, size_t cap, size_t *len)
{
	ssize_t r;

	*len = 0;
	while ((r = read(fd, buf + *len, cap - *len)) > 0)
		*len += (size_t)r;
	return r < 0 ? -1 : 0;
}

/* Exit status: 0, or what went wrong (printed). */
static int victim_main(int status_w, int cmd_r)
{
	static struct victim v;
	struct phase_b b = { &v, 0, 0, 0, 0, 0 };
	size_t cap = (MSG_A + MSG_B) * MSG_LEN + 64, got;
	unsigned char *buf = malloc(cap);
	pthread_t th;
	int i, m = WRITEVV_MODE_KERNEL, bad = 0;
	char c;

	drop_to(ac_cfg.vuid);
	setenv("WRITEVV_PIN_DIR", ac_cfg.dir, 1);
	if (writevv_control(WRITEVV_SETMODE, &m))
		return 2;
	for (i = 0; i < CLIENTS; i++) {
		v.want[i] = malloc(cap);
		if (!v.want[i] || tcp_pair(&v.tx[i], &v.rx[i], "127.0.0.1"))
			return 3;
	}
	for (i = 0; i < MSG_A; i++)
		broadcast(&v, 2);
	if (mode_now() != WRITEVV_MODE_KERNEL) {
		fprintf(stderr, "victim: not in kernel mode before the attack (%s)\n",
			writevv_kernel_status());
		return 4;
	}
	if (write(status_w, "R", 1) != 1 || read(cmd_r, &c, 1) != 1)
		return 5;
	if (pthread_create(&th, NULL, phase_b, &b) || pthread_join(th, NULL))
		return 6;
	if (write(status_w, "D", 1) != 1)
		return 5;

	for (i = 0; i < CLIENTS; i++) {
		shutdown(v.tx[i], SHUT_WR);
		if (read_all(v.rx[i], buf, cap, &got))
			return 7;
		if (got != v.want_len[i] || memcmp(buf, v.want[i], got)) {
			size_t k = 0;

			while (k < got && k < v.want_len[i] && buf[k] == v.want[i][k])
				k++;
			fprintf(stderr, "victim: client %d got %zu bytes, writevv reported %zu; first difference at byte %zu ('%.*s')\n",
				i, got, v.want_len[i], k, (int)(k < got ? (got - k < 40 ? got - k : 40) : 0),
				buf + k);
			bad = 1;
		}
	}
	fprintf(stderr, "victim: %u messages; descriptors %d then %d during the attack; mode %d; frames counted %lld\n",
		v.seq, b.fds_first, b.fds_last, b.mode, b.frames_after - b.frames_before);
	if (bad)
		return 10;
	if (v.failures)
		return 11; /* an error reported for a client: the attack had an effect */
	if (b.fds_last != b.fds_first)
		return 12;
	if (b.mode != WRITEVV_MODE_KERNEL)
		return 13;
	if (b.frames_before < 0 || b.frames_after - b.frames_before < (long long)MSG_B * CLIENTS)
		return 14; /* some frames did not go through the program */
	return 0;
}

/* ---- the attacker ------------------------------------------------------ */

enum attack { STEAL, DUPLICATE, FDLEAK, TAMPER, EXHAUST };

static uid_t attacker_uid(void)
{
	return ac_cfg.outside ? ac_cfg.ouid : ac_cfg.auid;
}

/* Every pin tree the attacker can see, but its own. */
static int trees(char out[][512], int max)
{
	char udir[512], own[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(out[n++], 512, "%s", ac_cfg.dir);
	snprintf(udir, sizeof(udir), "%s/%s", ac_cfg.dir, WVV_PIN_ACCOUNT_DIR);
	snprintf(own, sizeof(own), "%u", (unsigned)attacker_uid());
	d = opendir(udir);
	if (!d)
		return n;
	while ((e = readdir(d)) && n < max)
		if (e->d_name[0] != '.' && strcmp(e->d_name, own))
			n += snprintf(out[n], 512, "%s/%s", udir, e->d_name) < 512;
	closedir(d);
	/* Also the victim's, listed or not. */
	if (n < max)
		n += snprintf(out[n], 512, "%s/%u", udir, (unsigned)ac_cfg.vuid) < 512;
	return n;
}

static int pin_in(const char *tree, const char *name)
{
	char p[700];

	if (snprintf(p, sizeof(p), "%s/%s", tree, name) >= (int)sizeof(p))
		return -1;
	return obj_get(p, 0);
}

static int stop_requested(int cmd_r)
{
	struct pollfd p = { .fd = cmd_r, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

static int on_any(void *ctx, void *data, size_t size)
{
	(void)data;
	(void)size;
	(*(long *)ctx)++;
	return 0;
}

/*
 * Exit status: 0 if the attacker reached nothing of another account's and
 * got none of its data, 1 if it did (printed).
 */
static int attacker_main(enum attack what, int status_w, int cmd_r)
{
	static char tr[16][512];
	int nt, t, reached = 0, tx, rx, fd, i;
	long records = 0, ops = 0;
	struct ring_buffer *rb = NULL;
	__u32 id = 0;
	char c;

	drop_to(attacker_uid());
	nt = trees(tr, 16);
	if (tcp_pair(&tx, &rx, "127.0.0.1"))
		return 3;
	/* Walking every map of the system needs CAP_SYS_ADMIN. */
	if (bpf_map_get_next_id(0, &id) == 0) {
		fprintf(stderr, "attacker: can enumerate map ids\n");
		reached++;
	}
	for (t = 0; t < nt; t++) {
		if (what == STEAL && (fd = pin_in(tr[t], WVV_PIN_TARGETS)) >= 0) {
			__u64 key, next, val = (__u64)tx;
			void *prev = NULL;

			while (bpf_map_get_next_key(fd, prev, &next) == 0) {
				if (bpf_map_update_elem(fd, &next, &val, BPF_EXIST) == 0)
					ops++;
				key = next;
				prev = &key;
			}
			reached++;
		}
		if (what == DUPLICATE) {
			for (i = 0; i < 4096; i++) {
				char name[32];

				snprintf(name, sizeof(name), "%s/%d", WVV_PIN_RING_DIR, i);
				fd = pin_in(tr[t], name);
				if (fd < 0)
					break;
				reached++;
				if (!rb)
					rb = ring_buffer__new(fd, on_any, &records, NULL);
				else
					ring_buffer__add(rb, fd, on_any, &records);
			}
		}
		if (what == TAMPER) {
			struct wvv_config cfg;
			__u32 zero = 0;
			int own_ring;
			char ownring[600];

			memset(&cfg, 0, sizeof(cfg));
			if ((fd = pin_in(tr[t], WVV_PIN_CONFIG)) >= 0 &&
			    bpf_map_update_elem(fd, &zero, &cfg, BPF_ANY) == 0)
				reached++;
			if ((fd = pin_in(tr[t], WVV_PIN_STATS)) >= 0) {
				void *z = calloc((size_t)libbpf_num_possible_cpus(), sizeof(struct wvv_stats));

				if (bpf_map_update_elem(fd, &zero, z, BPF_ANY) == 0)
					reached++;
				free(z);
			}
			snprintf(ownring, sizeof(ownring), "%s/%s/%u/%s/0", ac_cfg.dir,
				 WVV_PIN_ACCOUNT_DIR, (unsigned)attacker_uid(), WVV_PIN_RING_DIR);
			own_ring = obj_get(ownring, 0);
			if (own_ring < 0)
				own_ring = pin_in(tr[t], WVV_PIN_RING_DIR "/0");
			if ((fd = pin_in(tr[t], WVV_PIN_RINGS)) >= 0 && own_ring >= 0)
				for (i = 0; i < SLOTS; i++)
					if (bpf_map_update_elem(fd, &i, &own_ring, BPF_ANY) == 0)
						reached++;
			if ((fd = pin_in(tr[t], WVV_PIN_CTL)) >= 0) {
				__u64 v = (__u64)tx;

				for (i = 0; i < SLOTS; i++)
					if (bpf_map_update_elem(fd, &i, &v, BPF_NOEXIST) == 0) {
						reached++;
						break;
					}
			}
		}
		if (what == EXHAUST) {
			if ((fd = pin_in(tr[t], WVV_PIN_CTL)) >= 0) {
				for (i = 0; i < SLOTS; i++) {
					int a, b;
					__u64 v;

					if (tcp_pair(&a, &b, "127.0.0.1"))
						break;
					v = (__u64)a;
					if (bpf_map_update_elem(fd, &i, &v, BPF_NOEXIST) == 0)
						ops++;
				}
				reached++;
			}
			if ((fd = pin_in(tr[t], WVV_PIN_TARGETS)) >= 0) {
				__u64 key, v = (__u64)tx;

				for (key = 1; key <= TARGETS; key++)
					if (bpf_map_update_elem(fd, &key, &v, BPF_ANY) == 0)
						ops++;
				reached++;
			}
		}
	}
	if (write(status_w, "R", 1) != 1)
		return 5;

	/* The attacks that run while the victim sends. */
	while (!stop_requested(cmd_r)) {
		if (what == DUPLICATE && rb) {
			ring_buffer__consume(rb);
			continue;
		}
		if (what != FDLEAK)
			break;
		for (t = 0; t < nt; t++) {
			int ctl = pin_in(tr[t], WVV_PIN_CTL), st = pin_in(tr[t], WVV_PIN_SLOT_STATE);
			int prog = pin_in(tr[t], WVV_PIN_PROG);
			struct wvv_slot_state s = { 0, 0, 0, 1, 1 };
			__u32 k;

			reached += ctl >= 0 || st >= 0 || prog >= 0;
			for (k = 0; k < SLOTS; k++) {
				if (ctl >= 0 && bpf_map_delete_elem(ctl, &k) == 0)
					ops++;
				if (st >= 0 && bpf_map_update_elem(st, &k, &s, BPF_ANY) == 0)
					ops++;
			}
			if (prog >= 0 && ctl >= 0 && bpf_prog_detach2(prog, ctl, BPF_SK_MSG_VERDICT) == 0)
				ops++;
			if (ctl >= 0)
				close(ctl);
			if (st >= 0)
				close(st);
			if (prog >= 0)
				close(prog);
		}
		if (!reached)
			break;
	}
	if (read(cmd_r, &c, 1) != 1)
		return 5;
	if (what == DUPLICATE && rb)
		ring_buffer__consume(rb);
	{
		/* Whatever reached the attacker's own socket. */
		char buf[65536];
		ssize_t r;
		long got = 0, secret = 0;

		shutdown(tx, SHUT_WR);
		while ((r = recv(rx, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
			buf[r] = '\0';
			got += r;
			secret += memmem(buf, (size_t)r, "VICTIM-SECRET", 13) != NULL;
		}
		fprintf(stderr, "attacker: reached %d objects of other accounts (%ld operations done), %ld status records read, %ld bytes received%s\n",
			reached, ops, records, got, secret ? " with the victim's secret" : "");
		return reached || records || got ? 1 : 0;
	}
}

/* ---- one attack -------------------------------------------------------- */

static pid_t spawn(int (*fn)(enum attack, int, int), enum attack what, int *status_r,
		   int *cmd_w)
{
	int s[2], c[2];
	pid_t pid;

	assert_int_equal(pipe(s), 0);
	assert_int_equal(pipe(c), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(s[0]);
		close(c[1]);
		_exit(fn(what, s[1], c[0]));
	}
	close(s[1]);
	close(c[0]);
	*status_r = s[0];
	*cmd_w = c[1];
	return pid;
}

static int victim_entry(enum attack what, int status_w, int cmd_r)
{
	(void)what;
	return victim_main(status_w, cmd_r);
}

static void expect(int fd, char want)
{
	char c = 0;

	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(c, want);
}

static void run_attack(enum attack what)
{
	int vs, vc, as, ac, vst, ast;
	pid_t v, a;

	v = spawn(victim_entry, what, &vs, &vc);
	expect(vs, 'R');               /* the victim is sending in kernel mode */
	a = spawn(attacker_main, what, &as, &ac);
	expect(as, 'R');               /* the attack is set up (or running) */
	assert_int_equal(write(vc, "G", 1), 1);
	expect(vs, 'D');               /* the victim sent everything */
	assert_int_equal(write(ac, "S", 1), 1);
	assert_int_equal(waitpid(a, &ast, 0), a);
	assert_int_equal(waitpid(v, &vst, 0), v);
	close(vs);
	close(vc);
	close(as);
	close(ac);
	assert_true(WIFEXITED(ast));
	assert_true(WIFEXITED(vst));
	assert_int_equal(WEXITSTATUS(ast), 0);
	assert_int_equal(WEXITSTATUS(vst), 0);
}

static void test_steal(void **state)
{
	(void)state;
	run_attack(STEAL);
}

/*
 * An account that joins G after the load has no tree, so no kernel mode
 * (and no access to anyone else's); `load --group G` again gives it one
 * and leaves the victim's alone.
 */
static int late_member_mode(uid_t uid)
{
	int st, m = WRITEVV_MODE_KERNEL;
	pid_t pid = fork();

	if (pid == 0) {
		drop_to(uid);
		setenv("WRITEVV_PIN_DIR", ac_cfg.dir, 1);
		writevv_control(WRITEVV_SETMODE, &m);
		/* GETMODE: the engine a call would use now. */
		m = -1;
		writevv_control(WRITEVV_GETMODE, &m);
		if (m != WRITEVV_MODE_KERNEL)
			fprintf(stderr, "late member: %s\n", writevv_kernel_status());
		_exit(m == WRITEVV_MODE_KERNEL ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_late_member(void **state)
{
	char *name = ac_cfg.late, path[512];
	struct passwd *pw;
	uid_t uid;

	(void)state;
	snprintf(name, sizeof(ac_cfg.late), "wvvt%dl", (int)getpid());
	if (sh("useradd -M -N -g %s -d /nonexistent -s /usr/sbin/nologin %s", ac_cfg.group, name)) {
		name[0] = '\0';
		fail();
	}
	pw = getpwnam(name);
	assert_non_null(pw);
	uid = pw->pw_uid;
	ac_cfg.ouid = uid; /* drop_to: its own gid is G, like the members' */
	ac_cfg.ogid = ac_cfg.gid;
	snprintf(path, sizeof(path), "%s/%s/%u", ac_cfg.dir, WVV_PIN_ACCOUNT_DIR, (unsigned)uid);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(late_member_mode(uid), 1);
	assert_int_equal(sh("%s load --pin-dir %s --group %s --slots %d --targets %d >/dev/null",
			    loader_path(), ac_cfg.dir, ac_cfg.group, SLOTS, TARGETS), 0);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(late_member_mode(uid), 0);
	/* The victim's tree was kept, and it still works. */
	run_attack(STEAL);
	pw = getpwnam(ac_cfg.outsider);
	assert_non_null(pw);
	ac_cfg.ouid = pw->pw_uid;
	ac_cfg.ogid = pw->pw_gid;
	sh("userdel %s", name);
	name[0] = '\0';
}

/* An account outside G: every attack at once, from further away. */
static void test_outsider(void **state)
{
	enum attack a;

	(void)state;
	ac_cfg.outside = 1;
	for (a = STEAL; a <= EXHAUST; a++)
		run_attack(a);
	ac_cfg.outside = 0;
}

static void test_duplicate(void **state)
{
	(void)state;
	run_attack(DUPLICATE);
}

static void test_fdleak(void **state)
{
	(void)state;
	run_attack(FDLEAK);
}

static void test_tamper(void **state)
{
	(void)state;
	run_attack(TAMPER);
}

static void test_exhaust(void **state)
{
	(void)state;
	run_attack(EXHAUST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_steal, load),
		cmocka_unit_test_setup(test_duplicate, load),
		cmocka_unit_test_setup(test_fdleak, load),
		cmocka_unit_test_setup(test_tamper, load),
		cmocka_unit_test_setup(test_exhaust, load),
		cmocka_unit_test_setup(test_outsider, load),
		cmocka_unit_test_setup(test_late_member, load),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
