/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench engines: ways to write one buffer to N sockets.
 *
 * Every engine has writev semantics towards the benchmark: when call()
 * returns, each target has taken the whole payload (or the error is
 * reported in rets/errs) and the caller may overwrite the payload buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "bench.h"
#include "writevv.h"

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

struct zc_usage zc_usage;
uint64_t uring_resubmits; /* short writes and -EAGAIN/-EINTR completions resubmitted */
bool zc_report_usage = true;
int uring_op_send;
unsigned uring_setup_flags;
const char *uring_setup_desc = "none";

static int max_n;
static struct io_uring ring_u, ring_z;
static bool ring_u_ok, ring_z_ok;
static bool fixed_u, fixed_z; /* the targets are registered files (index = target) */
static char ring_u_why[200], ring_z_why[200];
static int memfd = -1;
static char memfd_why[200];

/* per-target state for the io_uring engines */
static size_t *t_done;
static struct iovec *t_iov;     /* [max_n * MAX_IOV] remaining slices */
static struct msghdr *t_mh;
static int *t_retry;            /* queue of targets to (re)submit */

/* ---- helpers ---------------------------------------------------------------*/
static void set_result(size_t *rets, int *errs, int i, size_t done, int err)
{
	if (err && done == 0) {
		rets[i] = (size_t)-1;
		errs[i] = err;
	} else {
		rets[i] = done;
		errs[i] = 0;
	}
}

/* iov from byte 'off' on, into out[0..MAX_IOV); returns the count */
static int iov_rest(const struct iovec *iov, int iovcnt, size_t off, struct iovec *out)
{
	int i, k = 0;

	for (i = 0; i < iovcnt && k < MAX_IOV; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		out[k].iov_base = (char *)iov[i].iov_base + off;
		out[k].iov_len = iov[i].iov_len - off;
		off = 0;
		k++;
	}
	return k;
}

static int ring_init(struct io_uring *r, unsigned entries, char *why, size_t len)
{
	static const char *const desc[] = {
		"SUBMIT_ALL|COOP_TASKRUN|SINGLE_ISSUER|DEFER_TASKRUN|CQSIZE",
		"SUBMIT_ALL|COOP_TASKRUN|CQSIZE",
		"CQSIZE",
	};
	static const unsigned tries[] = {
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	size_t i;
	int err = 0;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		err = io_uring_queue_init_params(entries, r, &p);
		if (!err) {
			uring_setup_flags = tries[i];
			uring_setup_desc = desc[i];
			return 0;
		}
	}
	snprintf(why, len, "io_uring_queue_init: %s", strerror(-err));
	return -1;
}

int engines_init(int max_targets, char *why, size_t len)
{
	unsigned entries = 8;
	struct io_uring_probe *probe;
	struct iovec reg;
	int err;

	(void)why;
	(void)len;
	max_n = max_targets;
	while (entries < (unsigned)max_targets && entries < 32768)
		entries <<= 1;
	t_done = calloc((size_t)max_n, sizeof(*t_done));
	t_iov = calloc((size_t)max_n * MAX_IOV, sizeof(*t_iov));
	t_mh = calloc((size_t)max_n, sizeof(*t_mh));
	t_retry = calloc((size_t)max_n, sizeof(*t_retry));
	if (!t_done || !t_iov || !t_mh || !t_retry)
		abort();

	ring_u_ok = ring_init(&ring_u, entries, ring_u_why, sizeof(ring_u_why)) == 0;
	if (ring_init(&ring_z, entries, ring_z_why, sizeof(ring_z_why)) == 0) {
		probe = io_uring_get_probe_ring(&ring_z);
		if (!probe || !io_uring_opcode_supported(probe, IORING_OP_SEND_ZC)) {
			snprintf(ring_z_why, sizeof(ring_z_why),
				 "IORING_OP_SEND_ZC not supported by this kernel");
		} else {
			reg.iov_base = pat_table;
			reg.iov_len = pat_len;
			err = io_uring_register_buffers(&ring_z, &reg, 1);
			if (err)
				snprintf(ring_z_why, sizeof(ring_z_why),
					 "io_uring_register_buffers: %s", strerror(-err));
			else
				ring_z_ok = true;
		}
		if (probe)
			io_uring_free_probe(probe);
	}
	memfd = memfd_create("writevv-bench", MFD_CLOEXEC);
	if (memfd < 0)
		snprintf(memfd_why, sizeof(memfd_why), "memfd_create: %s", strerror(errno));
	return 0;
}

/* ---- (1) the writev loop ----------------------------------------------------*/
static int avail_yes(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static int prepare_none(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static int loop_call(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t total,
		     size_t *rets, int *errs)
{
	int i, full = 0;

	for (i = 0; i < n; i++) {
		ssize_t r = writev(fds[i], iov, iovcnt);

		if (r < 0) {
			rets[i] = (size_t)-1;
			errs[i] = errno;
		} else {
			rets[i] = (size_t)r;
			errs[i] = 0;
			full += (size_t)r == total;
		}
	}
	return full;
}

/* ---- (2) io_uring WRITEV/SEND and (4) SEND_ZC from a registered buffer ----*/
static void prep_target(struct io_uring_sqe *sqe, bool zc, int fd, int i, const struct iovec *iov,
			int iovcnt, size_t total)
{
	size_t off = t_done[i];
	bool fixed = zc ? fixed_z : fixed_u;

	if (fixed)
		fd = i;
	if (zc) {
		/* the payload is contiguous inside the registered pattern table */
		io_uring_prep_send_zc_fixed(sqe, fd, (const char *)iov[0].iov_base + off, total - off,
					    MSG_NOSIGNAL | MSG_WAITALL,
					    zc_report_usage ? IORING_SEND_ZC_REPORT_USAGE : 0, 0);
	} else if (uring_op_send && iovcnt == 1) {
		io_uring_prep_send(sqe, fd, (const char *)iov[0].iov_base + off, total - off,
				   MSG_NOSIGNAL | MSG_WAITALL);
	} else {
		const struct iovec *v = iov;
		int cnt = iovcnt;

		if (off) {
			cnt = iov_rest(iov, iovcnt, off, &t_iov[(size_t)i * MAX_IOV]);
			v = &t_iov[(size_t)i * MAX_IOV];
		}
		if (uring_op_send) {
			memset(&t_mh[i], 0, sizeof(t_mh[i]));
			t_mh[i].msg_iov = (struct iovec *)v;
			t_mh[i].msg_iovlen = (size_t)cnt;
			io_uring_prep_sendmsg(sqe, fd, &t_mh[i], MSG_NOSIGNAL | MSG_WAITALL);
		} else {
			io_uring_prep_writev(sqe, fd, v, (unsigned)cnt, 0);
		}
	}
	if (fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, (__u64)i);
}

/* Register a connection set's sender descriptors with the ring of the
 * engine that uses it (set 0: sendzc, set 1: uring). 0 if registered. */
int engines_attach(int set, const int *fds, int n)
{
	struct io_uring *r = set == 0 ? &ring_z : &ring_u;
	bool ok = set == 0 ? ring_z_ok : ring_u_ok;
	int err;

	if (!ok)
		return -1;
	err = io_uring_register_files(r, fds, (unsigned)n);
	if (err) {
		fprintf(stderr, "writevv-bench: io_uring_register_files(%d): %s; plain descriptors used\n",
			n, strerror(-err));
		return -1;
	}
	if (set == 0)
		fixed_z = true;
	else
		fixed_u = true;
	return 0;
}

void engines_detach(int set)
{
	if (set == 0 && fixed_z) {
		io_uring_unregister_files(&ring_z);
		fixed_z = false;
	} else if (set == 1 && fixed_u) {
		io_uring_unregister_files(&ring_u);
		fixed_u = false;
	}
}

static int uring_run(struct io_uring *r, bool zc, const int *fds, int n, const struct iovec *iov,
		     int iovcnt, size_t total, size_t *rets, int *errs)
{
	int i, full = 0, nretry = 0, next = 0;
	unsigned inflight = 0, notifs = 0;
	struct io_uring_cqe *cqes[512];

	if (zc) {
		for (i = 1; i < iovcnt; i++)
			if ((const char *)iov[i - 1].iov_base + iov[i - 1].iov_len != iov[i].iov_base)
				abort(); /* the benchmark always lays the pieces out contiguously */
	}
	for (i = 0; i < n; i++)
		t_done[i] = 0;

	while (next < n || nretry || inflight || notifs) {
		unsigned got, k;
		int ret;

		/* queue new targets, then resubmissions of short writes */
		while (nretry) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(r);

			if (!sqe)
				break;
			i = t_retry[--nretry];
			prep_target(sqe, zc, fds[i], i, iov, iovcnt, total);
			inflight++;
		}
		while (next < n) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(r);

			if (!sqe)
				break;
			prep_target(sqe, zc, fds[next], next, iov, iovcnt, total);
			next++;
			inflight++;
		}
		/* one io_uring_enter: submit everything queued, wait for all that
		 * is known to be outstanding */
		ret = io_uring_submit_and_wait(r, inflight + notifs);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			fprintf(stderr, "writevv-bench: io_uring_submit_and_wait: %s\n", strerror(-ret));
			exit(1);
		}
		while ((got = io_uring_peek_batch_cqe(r, cqes, 512)) > 0) {
			for (k = 0; k < got; k++) {
				struct io_uring_cqe *cqe = cqes[k];
				int res = cqe->res;

				i = (int)io_uring_cqe_get_data64(cqe);
				if (cqe->flags & IORING_CQE_F_NOTIF) {
					notifs--;
					zc_usage.notifs++;
					if (zc_report_usage && ((unsigned)res & IORING_NOTIF_USAGE_ZC_COPIED))
						zc_usage.copied++;
					continue;
				}
				inflight--;
				if (cqe->flags & IORING_CQE_F_MORE)
					notifs++;
				if (res == -EINVAL && zc && zc_report_usage && t_done[i] == 0) {
					/* kernel without IORING_SEND_ZC_REPORT_USAGE */
					zc_report_usage = false;
					t_retry[nretry++] = i;
					continue;
				}
				if (res == -EAGAIN || res == -EINTR) {
					t_retry[nretry++] = i;
					uring_resubmits++;
					continue;
				}
				if (res < 0) {
					set_result(rets, errs, i, t_done[i], -res);
					continue;
				}
				t_done[i] += (size_t)res;
				if (t_done[i] < total && res > 0) {
					t_retry[nretry++] = i; /* short write: the rest */
					uring_resubmits++;
					continue;
				}
				set_result(rets, errs, i, t_done[i], 0);
				full += t_done[i] == total;
			}
			io_uring_cq_advance(r, got);
		}
	}
	return full;
}

static int uring_avail(char *why, size_t len)
{
	if (ring_u_ok)
		return 0;
	snprintf(why, len, "%s", ring_u_why);
	return -1;
}

static int uring_call(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t total,
		      size_t *rets, int *errs)
{
	return uring_run(&ring_u, false, fds, n, iov, iovcnt, total, rets, errs);
}

static int sendzc_avail(char *why, size_t len)
{
	if (ring_z_ok)
		return 0;
	snprintf(why, len, "%s", ring_z_why);
	return -1;
}

static int sendzc_call(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t total,
		       size_t *rets, int *errs)
{
	return uring_run(&ring_z, true, fds, n, iov, iovcnt, total, rets, errs);
}

/* ---- (3) copy once into a memfd, sendfile to each target -------------------*/
static int memfd_avail(char *why, size_t len)
{
	if (memfd >= 0)
		return 0;
	snprintf(why, len, "%s", memfd_why);
	return -1;
}

static int memfd_call(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t total,
		      size_t *rets, int *errs)
{
	size_t put = 0;
	int i, full = 0;

	/* sendfile() lends the page-cache pages to the sockets, so the previous
	 * call's pages may still sit in socket queues: truncate (they stay
	 * referenced) and write into fresh pages rather than over them. */
	if (ftruncate(memfd, 0)) {
		perror("ftruncate(memfd)");
		exit(1);
	}
	while (put < total) {
		struct iovec rest[MAX_IOV];
		int cnt = iov_rest(iov, iovcnt, put, rest);
		ssize_t w = pwritev(memfd, rest, cnt, (off_t)put);

		if (w <= 0) {
			perror("pwritev(memfd)");
			exit(1);
		}
		put += (size_t)w;
	}
	for (i = 0; i < n; i++) {
		off_t off = 0;
		size_t done = 0;
		int err = 0;

		while (done < total) {
			ssize_t r = sendfile(fds[i], memfd, &off, total - done);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				err = r < 0 ? errno : EIO;
				break;
			}
			done += (size_t)r;
		}
		set_result(rets, errs, i, done, err);
		full += done == total;
	}
	return full;
}

/* ---- (5)(6)(7) writevv ------------------------------------------------------*/
static int wvv_set(int mode, char *why, size_t len)
{
	int m = mode;

	if (writevv_control(WRITEVV_SETMODE, &m)) {
		int e = errno;
		const char *st = writevv_kernel_status();

		snprintf(why, len, "%s%s%s", st && *st ? st : strerror(e), st && *st ? "; " : "",
			 st && *st ? strerror(e) : "");
		return -1;
	}
	return 0;
}

int wvv_effective_mode(void)
{
	int m = -1;

	if (writevv_control(WRITEVV_GETMODE, &m))
		return -1;
	return m;
}

static int wvv_kernel_avail(char *why, size_t len)
{
	return wvv_set(WRITEVV_MODE_KERNEL, why, len);
}

/* Select a writevv mode and check that GETMODE reports its engine. */
static int wvv_prepare_engine(int mode, const char *engine, char *why, size_t len)
{
	if (wvv_set(mode, why, len))
		return -1;
	if (wvv_effective_mode() != mode) {
		snprintf(why, len, "WRITEVV_GETMODE does not report the %s engine", engine);
		return -1;
	}
	return 0;
}

static int wvv_kernel_prepare(char *why, size_t len)
{
	return wvv_prepare_engine(WRITEVV_MODE_KERNEL, "kernel", why, len);
}

static int wvv_user_prepare(char *why, size_t len)
{
	return wvv_set(WRITEVV_MODE_USERLAND, why, len);
}

static int wvv_uring_avail(char *why, size_t len)
{
	return wvv_set(WRITEVV_MODE_IOURING, why, len);
}

static int wvv_uring_prepare(char *why, size_t len)
{
	return wvv_prepare_engine(WRITEVV_MODE_IOURING, "io_uring", why, len);
}

static int wvv_sendfile_avail(char *why, size_t len)
{
	return wvv_set(WRITEVV_MODE_SENDFILE, why, len);
}

static int wvv_sendfile_prepare(char *why, size_t len)
{
	return wvv_prepare_engine(WRITEVV_MODE_SENDFILE, "sendfile", why, len);
}

static int wvv_zerocopy_avail(char *why, size_t len)
{
	return wvv_set(WRITEVV_MODE_ZEROCOPY, why, len);
}

static int wvv_zerocopy_prepare(char *why, size_t len)
{
	return wvv_prepare_engine(WRITEVV_MODE_ZEROCOPY, "zero-copy", why, len);
}

static int wvv_default_prepare(char *why, size_t len)
{
	return wvv_set(WRITEVV_MODE_DEFAULT, why, len);
}

static int wvv_call(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t total,
		    size_t *rets, int *errs)
{
	(void)total;
	return writevv(fds, n, iov, iovcnt, rets, errs);
}

struct engine engines[N_ENGINES] = {
	[ENG_LOOP] = { "loop", 1, "writev() on each socket in turn", avail_yes, prepare_none, loop_call },
	[ENG_URING] = { "uring", 1, "io_uring: one submit of N WRITEV (or SEND) SQEs", uring_avail,
			prepare_none, uring_call },
	[ENG_MEMFD] = { "memfd", 1, "copy once into a memfd, sendfile() to each socket", memfd_avail,
			prepare_none, memfd_call },
	[ENG_SENDZC] = { "sendzc", 0, "io_uring SEND_ZC from a registered buffer, waits for notifs",
			 sendzc_avail, prepare_none, sendzc_call },
	[ENG_WVV_KERNEL] = { "wvv-kernel", 1, "writevv() in WRITEVV_MODE_KERNEL", wvv_kernel_avail,
			     wvv_kernel_prepare, wvv_call },
	[ENG_WVV_USER] = { "wvv-user", 1, "writevv() in WRITEVV_MODE_USERLAND", avail_yes,
			   wvv_user_prepare, wvv_call },
	[ENG_WVV_URING] = { "wvv-uring", 1, "writevv() in WRITEVV_MODE_IOURING", wvv_uring_avail,
			    wvv_uring_prepare, wvv_call },
	[ENG_WVV_SENDFILE] = { "wvv-sendfile", 1, "writevv() in WRITEVV_MODE_SENDFILE",
			       wvv_sendfile_avail, wvv_sendfile_prepare, wvv_call },
	[ENG_WVV_ZEROCOPY] = { "wvv-zerocopy", 0, "writevv() in WRITEVV_MODE_ZEROCOPY",
			       wvv_zerocopy_avail, wvv_zerocopy_prepare, wvv_call },
	[ENG_WVV_DEFAULT] = { "wvv-default", 0, "writevv() in WRITEVV_MODE_DEFAULT", avail_yes,
			      wvv_default_prepare, wvv_call },
};

int engine_index(const char *name)
{
	int i;

	for (i = 0; i < N_ENGINES; i++)
		if (!strcmp(engines[i].name, name))
			return i;
	return -1;
}
