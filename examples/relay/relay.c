/* SPDX-License-Identifier: MIT */
/*
 * writevv-relay: a live-stream fan-out server on the public writevv API.
 *
 * One publisher (a TCP connection on --ingest, or standard input) feeds a
 * byte stream (typically MPEG-TS from ffmpeg); every HTTP viewer on --listen
 * gets the live bytes from the moment it joined.  Each chunk read from the
 * publisher goes to all ready viewers with one writevv() call (per shard).
 *
 * The stream lives in one ring buffer of max-backlog + 2 chunks; a viewer is
 * an offset into it, so a viewer's backlog costs no memory of its own and
 * the relay's memory does not grow with slow viewers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <writevv.h>

#include "http.h"
#include "redis.h"
#include "nofile.h"
#include "relay.h"
#include "relay_state.h"
#include "topic.h"
#include "ws.h"
#include "www.h"


struct relay R;

/* ---- main loop ---------------------------------------------------------- */

static int poll_timeout_ms(uint64_t now)
{
	uint64_t deadline = R.next_sweep;

	if (R.next_stats && R.next_stats < deadline)
		deadline = R.next_stats;
	if (R.wpos != R.head) {
		uint64_t d = R.pending_since + (uint64_t)R.opt.max_delay_ms * 1000000ULL;

		if (d < deadline)
			deadline = d;
	}
	if (R.pub_blocked || R.pub_polled)
		return R.pub_blocked ? 1 : 0;
	if (R.finishing)
		return 50;
	if (deadline <= now)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

static void check_engine(void)
{
	int e = current_engine();

	if (e != R.engine) {
		logmsg("writevv engine now in use: %s%s%s", wvv_mode_name(e),
		       e == WRITEVV_MODE_USERLAND && R.opt.mode == WRITEVV_MODE_KERNEL
			       ? " -- kernel engine: " : "",
		       e == WRITEVV_MODE_USERLAND && R.opt.mode == WRITEVV_MODE_KERNEL
			       ? writevv_kernel_status() : "");
		R.engine = e;
	}
}

static void run(void)
{
	struct epoll_event evs[256];
	int n, i;

	while (!R.stop) {
		uint64_t now = now_ns();

		n = epoll_wait(R.epfd, evs, 256, poll_timeout_ms(now));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logmsg("epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct tag *t = evs[i].data.ptr;

			switch (t->kind) {
			case TAG_LISTEN:
				if (R.listen_fd >= 0)
					accept_viewers();
				break;
			case TAG_INGEST:
				accept_publisher();
				break;
			case TAG_PUB:
				if (R.pub_fd >= 0)
					pub_readable();
				break;
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(R.sig_fd, &si, sizeof(si)) == sizeof(si)) {
					logmsg("%s: shutting down", strsignal((int)si.ssi_signo));
					R.stop = true;
				}
				break;
			}
			case TAG_HTTP:
				conn_event((struct hconn *)t, evs[i].events);
				break;
			case TAG_VIEWER:
				shard_viewer_event(&R.shards[0], (struct viewer *)t, evs[i].events);
				break;
			case TAG_SHARDEV:
				break;
			case TAG_SUB:
			case TAG_PUBCONN:
				topics_event(t, evs[i].events);
				break;
			case TAG_REDIS:
				redis_event(t, evs[i].events);
				break;
			case TAG_INGEST_TOPIC:
				accept_topic_publisher((struct extra_ingest *)t);
				break;
			}
		}
		if (R.pub_polled && R.pub_fd >= 0)
			pub_readable();
		else if (R.pub_blocked && R.pub_fd >= 0)
			pub_readable();
		now = now_ns();
		if (R.wpos != R.head &&
		    now >= R.pending_since + (uint64_t)R.opt.max_delay_ms * 1000000ULL)
			flush_chunk();
		run_ready_conns();
		topics_tick();
		if (!R.threaded)
			shard_reap(&R.shards[0]);
		reap_conns();
		topics_reap();
		if (now >= R.next_sweep) {
			sweep_conns(now);
			topics_sweep(now);
			redis_tick(now);
			reap_conns();
			topics_reap();
			check_engine();
			R.next_sweep = now + 500000000ULL;
		}
		if (R.next_stats && now >= R.next_stats) {
			print_stats_line();
			R.next_stats = now + (uint64_t)(R.opt.stats_interval * 1e9);
		}
		if (R.finishing) {
			struct totals t;

			totals(&t);
			if ((t.viewers == 0 && !topics_busy()) || now >= R.finish_deadline) {
				if (t.viewers)
					logmsg("drain timeout: closing %llu viewers still behind",
					       (unsigned long long)t.viewers);
				logmsg("stdin ended and the viewers are served: exiting");
				break;
			}
		}
	}
}

/* ---- setup -------------------------------------------------------------- */

static int setup_mode(void)
{
	int m;

	if (R.opt.mode >= 0) {
		m = R.opt.mode;
		if (writevv_control(WRITEVV_SETMODE, &m) < 0) {
			int e = errno;

			if (R.opt.mode == WRITEVV_MODE_KERNEL) {
				const char *why = writevv_kernel_status();

				if (e == ENOENT)
					logmsg("--mode kernel: the writevv BPF program is not loaded "
					       "(%s)%s; or use --mode default to fall back to the "
					       "userland engine", why && *why ? why : "not loaded",
					       why && strstr(why, "writevv-loader") ? "" :
					       "; load it as root with `writevv-loader load`");
				else if (e == EACCES)
					logmsg("--mode kernel: the pinned writevv BPF objects are not "
					       "accessible (%s); run as root or fix the bpffs "
					       "permissions", why);
				else if (e == EPROTO)
					logmsg("--mode kernel: the loaded writevv BPF program belongs "
					       "to another writevv version (%s); reload it with this "
					       "version's `writevv-loader`", why);
				else
					logmsg("--mode kernel: %s (%s)", strerror(e), why);
			} else {
				logmsg("cannot select mode %s: %s", wvv_mode_name(R.opt.mode),
				       strerror(e));
			}
			return -1;
		}
	}
	R.engine = current_engine();
	if (R.engine == WRITEVV_MODE_USERLAND && R.opt.mode == WRITEVV_MODE_KERNEL)
		logmsg("kernel engine unavailable (%s): falling back to the userland engine",
		       writevv_kernel_status());
	else if (R.engine == WRITEVV_MODE_USERLAND && R.opt.mode != WRITEVV_MODE_USERLAND)
		logmsg("writevv engine: userland (the faster engines do not work here)");
	else
		logmsg("writevv engine: %s", wvv_mode_name(R.engine));
	return 0;
}

int main(int argc, char **argv)
{
	sigset_t mask;
	int i, rc = 0;

	parse_args(argc, argv, &R.opt);
	R.start_ns = now_ns();
	R.listen_fd = R.ingest_fd = R.pub_fd = R.sig_fd = -1;
	R.listen_tag.kind = TAG_LISTEN;
	R.ingest_tag.kind = TAG_INGEST;
	R.pub_tag.kind = TAG_PUB;
	R.sig_tag.kind = TAG_SIGNAL;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL); /* threads inherit the mask */

	raise_nofile();
	if (setup_mode() < 0)
		return 1;

	R.chunk_max = CHUNK_MAX < R.opt.max_backlog ? CHUNK_MAX : R.opt.max_backlog;
	R.ring.size = R.opt.max_backlog + 2 * R.chunk_max;
	R.ring.buf = malloc(R.ring.size);
	if (!R.ring.buf) {
		logmsg("cannot allocate the %zu-byte stream ring", R.ring.size);
		return 1;
	}

	R.epfd = epoll_create1(EPOLL_CLOEXEC);
	R.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	R.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (R.epfd < 0 || R.sig_fd < 0) {
		logmsg("epoll/signalfd: %s", strerror(errno));
		return 1;
	}
	ep_add(R.sig_fd, EPOLLIN, &R.sig_tag);

	R.listen_fd = listen_on(R.opt.listen, "viewers");
	if (R.listen_fd < 0)
		return 1;
	sockname(R.listen_fd, R.listen_name, sizeof(R.listen_name));
	ep_add(R.listen_fd, EPOLLIN, &R.listen_tag);
	if (R.opt.use_stdin) {
		struct stat st;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &R.pub_tag };

		R.pub_fd = STDIN_FILENO;
		if (fstat(STDIN_FILENO, &st) < 0) {
			logmsg("standard input: %s", strerror(errno));
			return 1;
		}
		if (epoll_ctl(R.epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) {
			if (errno != EPERM) {
				logmsg("standard input: %s", strerror(errno));
				return 1;
			}
			R.pub_polled = true; /* a regular file: always readable */
		}
		R.pub_connected = true;
		R.sessions = 1;
		snprintf(R.ingest_name, sizeof(R.ingest_name), "stdin");
	} else {
		R.ingest_fd = listen_on(R.opt.ingest, "the publisher");
		if (R.ingest_fd < 0)
			return 1;
		sockname(R.ingest_fd, R.ingest_name, sizeof(R.ingest_name));
		ep_add(R.ingest_fd, EPOLLIN, &R.ingest_tag);
	}

	{
		struct topic_opts to = {
			.max_backlog = R.opt.max_backlog, .max_message = R.opt.max_message,
			.history = R.opt.history, .max_topics = R.opt.max_topics,
			.client_publish = R.opt.client_publish, .sndbuf = R.opt.sndbuf,
			.ws_deflate = R.opt.ws_deflate,
		};

		topics_init(R.epfd, &to);
		www_init(R.opt.www);
		if (R.opt.redis &&
		    redis_init(R.opt.redis, R.epfd, R.opt.max_message, R.opt.history) < 0) {
			logmsg("bad --redis '%s': expected HOST:PORT", R.opt.redis);
			return 1;
		}
		if (R.opt.redis)
			logmsg("redis %s: topics are shared with the other nodes", R.opt.redis);
	}
	for (i = 0; i < R.opt.n_extra; i++) {
		struct extra_ingest *x = &R.extra[i];
		char name[NI_MAXHOST + 40];

		x->tag.kind = TAG_INGEST_TOPIC;
		x->topic = R.opt.extra[i].topic;
		x->fd = listen_on(R.opt.extra[i].addr, "the publisher");
		if (x->fd < 0)
			return 1;
		sockname(x->fd, name, sizeof(name));
		ep_add(x->fd, EPOLLIN, &x->tag);
		logmsg("publisher of topic %s on tcp://%s", x->topic, name);
	}
	R.threaded = R.opt.threads > 1;
	R.nshards = R.opt.threads;
	R.shards = calloc((size_t)R.nshards, sizeof(*R.shards));
	if (!R.shards)
		return 1;
	for (i = 0; i < R.nshards; i++) {
		if (shard_init(&R.shards[i], i, R.epfd, R.threaded, &R.opt, &R.ring, 0) < 0 ||
		    (R.threaded && shard_start(&R.shards[i]) < 0)) {
			logmsg("cannot start shard %d: %s", i, strerror(errno));
			return 1;
		}
	}

	logmsg("viewers on http://%s/ (GET /stats for JSON)", R.listen_name);
	logmsg("topics: GET /stream/T, /sse/T, /ws/T (WebSocket), POST /pub/T; %s feeds '%s'",
	       R.opt.use_stdin ? "stdin" : "the ingest", R.opt.ingest_topic);
	if (R.opt.use_stdin)
		logmsg("publisher: standard input");
	else
		logmsg("publisher on tcp://%s", R.ingest_name);
	logmsg("max backlog %zu bytes, max delay %d ms, %d sender thread%s%s",
	       R.opt.max_backlog, R.opt.max_delay_ms, R.opt.threads,
	       R.opt.threads > 1 ? "s" : "", R.opt.ts_align ? ", TS-aligned joins" : "");

	R.next_sweep = now_ns() + 500000000ULL;
	if (R.opt.stats_interval > 0)
		R.next_stats = now_ns() + (uint64_t)(R.opt.stats_interval * 1e9);
	run();

	if (R.opt.stats_interval > 0)
		print_stats_line();
	for (i = 0; i < R.nshards; i++) {
		if (R.threaded)
			shard_join(&R.shards[i]);
		shard_destroy(&R.shards[i]);
	}
	while (R.conns)
		conn_close(R.conns);
	reap_conns();
	topics_destroy();
	redis_destroy();
	if (R.listen_fd >= 0)
		close(R.listen_fd);
	if (R.ingest_fd >= 0)
		close(R.ingest_fd);
	for (i = 0; i < R.opt.n_extra; i++)
		if (R.extra[i].fd >= 0)
			close(R.extra[i].fd);
	if (R.pub_fd > STDIN_FILENO)
		close(R.pub_fd);
	if (R.spare_fd >= 0)
		close(R.spare_fd);
	close(R.sig_fd);
	close(R.epfd);
	free(R.shards);
	free(R.ring.buf);
	logmsg("stopped");
	return rc;
}
