/* SPDX-License-Identifier: MIT */
/*
 * No process may make its data reach a socket it does not hold. A second
 * process that knows another's socket cookie and fd number forges a frame
 * on its own control socket: the program must refuse it (STALE_FD), and the
 * victim's receiver must see nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

static int pin(const char *name)
{
	const char *dir = getenv("WRITEVV_PIN_DIR");
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : WVV_PIN_DIR_DEFAULT, name);
	return bpf_obj_get(path);
}

static int got_verdict = -1;

static int on_rec(void *ctx, void *data, size_t size)
{
	const struct wvv_record *r = data;

	(void)ctx;
	if (size >= sizeof(*r))
		got_verdict = (int)r->verdict;
	return 0;
}

/* The attacker: its own control connection and slot, a forged frame. */
static int forge(uint64_t cookie, int fdnum)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct wvv_slot_state st;
	struct wvv_frame_hdr h;
	struct ring_buffer *rb;
	char payload[] = "EVIL!", ringname[64];
	struct iovec iov[2] = { { &h, sizeof(h) }, { payload, 5 } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	int l, c, p, ctl = pin(WVV_PIN_CTL), state = pin(WVV_PIN_SLOT_STATE), ring;
	uint32_t slot;
	uint64_t v;

	if (ctl < 0 || state < 0)
		return 10;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		return 11;
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&a, sizeof(a)))
		return 12;
	p = accept(l, NULL, NULL);
	memset(&st, 0, sizeof(st));
	st.remote_port = ntohs(a.sin_port);
	alen = sizeof(a);
	getsockname(c, (struct sockaddr *)&a, &alen);
	st.local_port = ntohs(a.sin_port);
	v = (uint64_t)c;
	for (slot = 0; slot < 4096; slot++)
		if (bpf_map_update_elem(ctl, &slot, &v, BPF_NOEXIST) == 0)
			break;
	if (slot == 4096 || bpf_map_update_elem(state, &slot, &st, BPF_ANY))
		return 13;
	snprintf(ringname, sizeof(ringname), "%s/%u", WVV_PIN_RING_DIR, slot);
	ring = pin(ringname);
	rb = ring_buffer__new(ring, on_rec, NULL, NULL);
	if (!rb)
		return 14;
	ring_buffer__consume(rb);
	got_verdict = -1;

	memset(&h, 0, sizeof(h));
	h.magic = WVV_FRAME_MAGIC;
	h.slot = slot;
	h.call_id = 1;
	h.cookie = cookie;
	h.fd = (uint32_t)fdnum;
	h.len = 5;
	if (sendmsg(c, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return 15;
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	(void)p;
	return got_verdict == WVV_V_STALE_FD ? 0 : 20 + got_verdict;
}

static void test_forged_frame_refused(void **state)
{
	struct tcp_fleet f;
	static const size_t len = 100;
	uint64_t cookie = 0;
	socklen_t cl = sizeof(cookie);
	int idx = 0, st, victim_fd;
	pid_t pid;

	(void)state;
	must_set_mode(WRITEVV_MODE_KERNEL);
	fleet_open(&f, 1, 1);
	fanout_check(&f, &idx, 1, &len, 1, 3); /* registers the victim */
	victim_fd = f.tx[0];
	assert_int_equal(getsockopt(victim_fd, SOL_SOCKET, SO_COOKIE, &cookie, &cl), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int other;

		/* Drop the victim, and put some other socket at its number. */
		close(f.rx[0]);
		close(victim_fd);
		other = socket(AF_INET, SOCK_STREAM, 0);
		if (other != victim_fd && dup2(other, victim_fd) < 0)
			_exit(2);
		_exit(forge(cookie, victim_fd));
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	usleep(100000);
	assert_int_equal(f.got_len[0], len); /* nothing but its own data */
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forged_frame_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
