/* SPDX-License-Identifier: MIT */
/*
 * What a process's own account (or its own bugs) can do to its kernel-mode
 * traffic, and what the library must still guarantee (issue 10, items 2
 * and 4): on a load of its own, while this process broadcasts,
 *   - its wvv_ctl entries are deleted, its slots' ports rewritten and the
 *     program detached, again and again: every call still gives writev's
 *     results, each receiver gets exactly those bytes, and the process's
 *     descriptor count stays flat (it grew by three per batch before);
 *   - another thread consumes its status rings: a frame whose record it
 *     lost is an unknown state, reported as EIO with the bytes known
 *     delivered and never resent, so each receiver still gets exactly what
 *     writevv reported (receivers got messages twice before).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

#define SLOTS 4
#define CLIENTS 8
#define MSG_LEN 32
#define CALLS 1500

static char dir[256];

static int load(void **state)
{
	const char *base = getenv("WRITEVV_PIN_DIR");
	char args[512];
	int m = WRITEVV_MODE_KERNEL;

	(void)state;
	snprintf(dir, sizeof(dir), "%s-self", base ? base : WVV_PIN_DIR_DEFAULT);
	snprintf(args, sizeof(args), "unload --pin-dir %s", dir);
	if (run_loader(args))
		return -1;
	snprintf(args, sizeof(args), "load --pin-dir %s --slots %d --targets 1024", dir, SLOTS);
	if (run_loader(args))
		return -1;
	/* Before the library's first look at the pins. */
	setenv("WRITEVV_PIN_DIR", dir, 1);
	return writevv_control(WRITEVV_SETMODE, &m) ? -1 : 0;
}

static int unload(void **state)
{
	char args[512];

	(void)state;
	snprintf(args, sizeof(args), "unload --pin-dir %s", dir);
	return run_loader(args) ? -1 : 0;
}

static int pin(const char *name)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return bpf_obj_get(p);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

struct pair {
	int tx, rx;
	unsigned char want[CALLS * MSG_LEN];
	size_t want_len;
	int dead;
	char unknown[MSG_LEN]; /* the message whose fate was unknown */
	size_t unknown_from;   /* its bytes from here on may have arrived */
};

static struct pair pairs[CLIENTS];
static unsigned seq;
static int checked, unknown_extra;

static void open_pair(struct pair *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	p->tx = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(p->tx, (struct sockaddr *)&a, sizeof(a)), 0);
	p->rx = accept(l, NULL, NULL);
	assert_true(p->rx >= 0);
	close(l);
	setsockopt(p->tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->want_len = 0;
	p->dead = 0;
}

/*
 * The receiver got exactly what writevv reported. A stream that became
 * unknown may hold the rest of the one frame whose fate was unknown, and
 * never anything twice.
 */
static void check_pair(struct pair *p)
{
	static unsigned char buf[CALLS * MSG_LEN + 64];
	size_t got = 0;
	ssize_t r;

	shutdown(p->tx, SHUT_WR);
	while ((r = read(p->rx, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)r;
	assert_true(r == 0);
	assert_true(got >= p->want_len);
	assert_memory_equal(buf, p->want, p->want_len);
	if (got > p->want_len) {
		assert_true(p->dead);
		assert_true(got - p->want_len <= MSG_LEN - p->unknown_from);
		assert_memory_equal(buf + p->want_len, p->unknown + p->unknown_from,
				    got - p->want_len);
		unknown_extra++;
	}
	close(p->tx);
	close(p->rx);
	checked++;
}

static void open_clients(void)
{
	int i;

	seq = 0;
	checked = unknown_extra = 0;
	for (i = 0; i < CLIENTS; i++)
		open_pair(&pairs[i]);
}

static void check_clients(void)
{
	int i;

	for (i = 0; i < CLIENTS; i++)
		check_pair(&pairs[i]);
	fprintf(stderr, "self: %d clients checked, %u calls; %d unknown streams held the rest of their last frame\n",
		checked, seq, unknown_extra);
}

/* One call to every client; returns how many results were EIO. A client
 * whose stream became unknown is checked and replaced by a new one. */
static int broadcast(void)
{
	char msg[MSG_LEN + 1];
	struct iovec iov = { msg, MSG_LEN };
	size_t ret[CLIENTS];
	int fds[CLIENTS], err[CLIENTS], i, eio = 0;

	snprintf(msg, sizeof(msg), "SELF-%026u|", seq++);
	for (i = 0; i < CLIENTS; i++)
		fds[i] = pairs[i].tx;
	assert_true(writevv(fds, CLIENTS, &iov, 1, ret, err) >= 0);
	for (i = 0; i < CLIENTS; i++) {
		struct pair *p = &pairs[i];

		if (err[i] == EIO && ret[i] != (size_t)-1) {
			/* Unknown: ret[i] bytes surely delivered, maybe more. */
			assert_true(ret[i] < MSG_LEN);
			eio++;
		} else {
			assert_int_equal(err[i], 0);
			assert_int_equal(ret[i], MSG_LEN);
		}
		memcpy(p->want + p->want_len, msg, ret[i]);
		p->want_len += ret[i];
		if (err[i]) {
			p->dead = 1;
			memcpy(p->unknown, msg, MSG_LEN);
			p->unknown_from = ret[i];
			check_pair(p);
			open_pair(p);
		}
	}
	return eio;
}

static void test_tamper_own_maps(void **state)
{
	int ctl = pin(WVV_PIN_CTL), st = pin(WVV_PIN_SLOT_STATE), prog = pin(WVV_PIN_PROG);
	struct wvv_slot_state bad = { 0, 0, 0, 1, 1 };
	int fds_first = 0, i;
	__u32 k;

	(void)state;
	assert_true(ctl >= 0 && st >= 0 && prog >= 0);
	open_clients();
	for (i = 0; i < CALLS; i++) {
		assert_int_equal(broadcast(), 0);
		if (i == 2)
			fds_first = count_fds();
		switch (i % 3) {
		case 0: /* its control socket leaves wvv_ctl */
			for (k = 0; k < SLOTS; k++)
				bpf_map_delete_elem(ctl, &k);
			break;
		case 1: /* its slot's ports are rewritten */
			for (k = 0; k < SLOTS; k++)
				bpf_map_update_elem(st, &k, &bad, BPF_ANY);
			break;
		case 2: /* the program is detached, and attached again later */
			if (i % 30 == 2)
				bpf_prog_detach2(prog, ctl, BPF_SK_MSG_VERDICT);
			else if (i % 30 == 17)
				assert_int_equal(bpf_prog_attach(prog, ctl, BPF_SK_MSG_VERDICT, 0), 0);
			break;
		}
	}
	fprintf(stderr, "self: descriptors %d after the first calls, %d after %d calls\n", fds_first,
		count_fds(), CALLS);
	assert_int_equal(count_fds(), fds_first);
	check_clients();
	assert_int_equal(bpf_prog_attach(prog, ctl, BPF_SK_MSG_VERDICT, 0), 0);
	close(ctl);
	close(st);
	close(prog);
}

static atomic_int thief_stop;
static atomic_long thief_records;

static int on_any(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	atomic_fetch_add(&thief_records, 1);
	return 0;
}

static void *thief(void *arg)
{
	struct ring_buffer *rb = NULL;
	char name[32];
	int i, fd;

	(void)arg;
	for (i = 0; i < SLOTS; i++) {
		snprintf(name, sizeof(name), "%s/%d", WVV_PIN_RING_DIR, i);
		fd = pin(name);
		if (fd < 0)
			return NULL;
		if (!rb)
			rb = ring_buffer__new(fd, on_any, NULL, NULL);
		else
			ring_buffer__add(rb, fd, on_any, NULL);
	}
	while (rb && !atomic_load(&thief_stop))
		ring_buffer__consume(rb);
	ring_buffer__free(rb);
	return NULL;
}

static void test_own_rings_consumed(void **state)
{
	pthread_t th;
	int i, eio = 0;

	(void)state;
	open_clients();
	broadcast(); /* the slot is claimed before the thief starts */
	atomic_store(&thief_stop, 0);
	assert_int_equal(pthread_create(&th, NULL, thief, NULL), 0);
	for (i = 1; i < CALLS; i++)
		eio += broadcast();
	atomic_store(&thief_stop, 1);
	pthread_join(th, NULL);
	fprintf(stderr, "self: the thief read %ld records; %d results were EIO (unknown)\n",
		atomic_load(&thief_records), eio);
	check_clients();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tamper_own_maps),
		cmocka_unit_test(test_own_rings_consumed),
	};

	return cmocka_run_group_tests(tests, load, unload);
}
