/* SPDX-License-Identifier: MIT */
/*
 * What this kernel offers the engines, and which engine each mode really
 * gets here (scripts/vmtest.sh runs it in the guest).
 *
 *   vmtest-probe features  io_uring setup flags and opcodes, SEND_ZC and its
 *                          REPORT_USAGE flag, memfd + sendfile, BTF
 *   vmtest-probe mode      WRITEVV_MODE's engine: GETMODE, SETMODE's answer,
 *                          and one writevv to 3 loopback TCP targets per
 *                          payload size, every byte checked
 * Exit status 1 if a writevv call gave a wrong result or wrong bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mode_names.h"
#include "writevv.h"

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif

/* A connected loopback TCP pair: p[0] sends, p[1] receives. */
static int tcp_pair(int p[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		return -1;
	p[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (p[0] < 0 || connect(p[0], (struct sockaddr *)&a, sizeof(a)))
		return -1;
	p[1] = accept(l, NULL, NULL);
	close(l);
	return p[1] < 0 ? -1 : 0;
}

static const char *setup_flag_name[] = { "SUBMIT_ALL(5.18)", "COOP_TASKRUN(5.19)",
					 "SINGLE_ISSUER(6.0)", "DEFER_TASKRUN(6.1)" };
static const unsigned setup_flag[] = { IORING_SETUP_SUBMIT_ALL, IORING_SETUP_COOP_TASKRUN,
				       IORING_SETUP_SINGLE_ISSUER,
				       IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };

/* One SEND_ZC with zc_flags on a TCP pair: the CQE's result. */
static int send_zc_once(struct io_uring *ring, unsigned zc_flags)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	char buf[64] = "zc";
	int p[2], res;

	if (tcp_pair(p))
		return -errno;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_send_zc(sqe, p[0], buf, sizeof(buf), 0, zc_flags);
	io_uring_submit(ring);
	if (io_uring_wait_cqe(ring, &cqe))
		return -EIO;
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	/* The notification CQE follows a successful send. */
	if (res >= 0 && io_uring_wait_cqe(ring, &cqe) == 0)
		io_uring_cqe_seen(ring, cqe);
	close(p[0]);
	close(p[1]);
	return res;
}

static int features(void)
{
	static const struct { int op; const char *name; } ops[] = {
		{ IORING_OP_SENDMSG, "SENDMSG(5.3)" }, { IORING_OP_SEND, "SEND(5.6)" },
		{ IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL(5.5)" }, { IORING_OP_SEND_ZC, "SEND_ZC(6.0)" },
	};
	struct io_uring_probe *probe;
	struct io_uring ring;
	struct utsname u;
	int i, err, p[2], mfd;

	uname(&u);
	printf("kernel %s\n", u.release);
	printf("BTF /sys/kernel/btf/vmlinux: %s\n",
	       access("/sys/kernel/btf/vmlinux", R_OK) ? strerror(errno) : "present");
	for (i = 0; i < 4; i++) {
		struct io_uring_params prm = { .flags = setup_flag[i] };

		err = io_uring_queue_init_params(8, &ring, &prm);
		printf("io_uring setup %s: %s\n", setup_flag_name[i], err ? strerror(-err) : "yes");
		if (!err)
			io_uring_queue_exit(&ring);
	}
	err = io_uring_queue_init(8, &ring, 0);
	if (err) {
		printf("io_uring: %s\n", strerror(-err));
		return 0;
	}
	probe = io_uring_get_probe_ring(&ring);
	for (i = 0; i < (int)(sizeof(ops) / sizeof(ops[0])); i++)
		printf("io_uring op %s: %s\n", ops[i].name,
		       !probe ? "no probe" : io_uring_opcode_supported(probe, ops[i].op) ? "yes" : "no");
	if (probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC)) {
		err = send_zc_once(&ring, 0);
		printf("SEND_ZC on TCP: %s\n", err < 0 ? strerror(-err) : "yes");
		err = send_zc_once(&ring, IORING_SEND_ZC_REPORT_USAGE);
		printf("SEND_ZC REPORT_USAGE(6.2): %s\n", err < 0 ? strerror(-err) : "yes");
	}
	if (probe)
		io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);

	mfd = memfd_create("vmtest", MFD_CLOEXEC);
	if (mfd < 0 || write(mfd, "sendfile", 8) != 8 || tcp_pair(p)) {
		printf("memfd_create: %s\n", strerror(errno));
	} else {
		off_t off = 0;
		ssize_t n = sendfile(p[0], mfd, &off, 8);

		printf("memfd_create + sendfile to TCP: %s\n", n == 8 ? "yes" : strerror(errno));
	}
	return 0;
}


/* One writevv of len pattern bytes to n fresh TCP targets; 0 if every
 * target took it all and received exactly it. */
static int checked_call(size_t len, int *engine)
{
	enum { N = 3 };
	int tx[N], rx[N], p[2], errs[N], i, ok = 0, fail = 0;
	size_t rets[N];
	unsigned char *buf = malloc(len), *got = malloc(len);
	struct iovec iov[2];

	for (size_t k = 0; k < len; k++)
		buf[k] = (unsigned char)(k * 7 + len);
	for (i = 0; i < N; i++) {
		if (tcp_pair(p))
			return -1;
		tx[i] = p[0];
		rx[i] = p[1];
	}
	iov[0] = (struct iovec){ buf, len / 3 };
	iov[1] = (struct iovec){ buf + len / 3, len - len / 3 };
	writevv_control(WRITEVV_GETMODE, engine);
	ok = writevv(tx, N, iov, 2, rets, errs);
	for (i = 0; i < N; i++) {
		size_t have = 0;

		while (have < len) {
			ssize_t r = recv(rx[i], got + have, len - have, 0);

			if (r <= 0)
				break;
			have += (size_t)r;
		}
		if (rets[i] != len || errs[i] != 0 || have != len || memcmp(got, buf, len))
			fail = 1;
		close(tx[i]);
		close(rx[i]);
	}
	free(buf);
	free(got);
	return ok == N && !fail ? 0 : -1;
}

static int mode(void)
{
	static const size_t sizes[] = { 100, 8192, 65536 };
	const char *env = getenv("WRITEVV_MODE");
	int m = -1, got, eng, i, rc = 0;

	/* the library reads WRITEVV_MODE by the names alone (no alias) */
	if (env && !strcmp(wvv_mode_name(wvv_mode_parse(env)), env))
		m = wvv_mode_parse(env);
	writevv_control(WRITEVV_GETMODE, &got);
	printf("WRITEVV_MODE=%-8s GETMODE=%-8s", env ? env : "", wvv_mode_name(got));
	if (m >= 0) {
		int want = m;

		if (writevv_control(WRITEVV_SETMODE, &want))
			printf(" SETMODE(%s): %s;", wvv_mode_name(m), strerror(errno));
	}
	for (i = 0; i < 3; i++) {
		int r = checked_call(sizes[i], &eng);

		printf(" %zu B: %s %s;", sizes[i], wvv_mode_name(eng), r ? "WRONG" : "ok");
		rc |= r;
	}
	printf(" kernel_status: \"%s\"\n", writevv_kernel_status());
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "features"))
		return features();
	if (argc == 2 && !strcmp(argv[1], "mode"))
		return mode();
	fprintf(stderr, "usage: %s features|mode\n", argv[0]);
	return 2;
}
