/* SPDX-License-Identifier: MIT */
/* writevv-relay: the stream publisher (--ingest connection or --stdin) into the ring, and
 * the further --ingest listeners that feed a topic. */
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


/* ---- publisher ---------------------------------------------------------- */

void flush_chunk(void)
{
	int i;

	if (R.wpos == R.head)
		return;
	/* WebSocket/SSE/stream subscribers of the ingest's topic get the chunk too */
	if (topic_has_subscribers(R.opt.ingest_topic)) {
		struct iovec iov[2];
		int cnt = ring_iov(&R.ring, R.head, R.wpos, iov);

		topic_publish(R.opt.ingest_topic, iov, cnt, MSG_BINARY);
	}
	R.head = R.wpos;
	for (i = 0; i < R.nshards; i++) {
		if (R.threaded)
			shard_post(&R.shards[i], Q_DATA, R.head);
		else
			shard_data(&R.shards[i], R.head);
	}
}

static void pub_end(const char *why)
{
	int i;

	flush_chunk();
	for (i = 0; i < R.nshards; i++) {
		if (R.threaded)
			shard_post(&R.shards[i], Q_EOF, R.head);
		else
			shard_eof(&R.shards[i], R.head);
	}
	logmsg("publisher %s after %llu bytes in this session", why,
	       (unsigned long long)R.session_bytes);
	if (R.pub_fd >= 0) {
		if (!R.pub_polled)
			epoll_ctl(R.epfd, EPOLL_CTL_DEL, R.pub_fd, NULL);
		if (R.pub_fd != STDIN_FILENO)
			close(R.pub_fd);
	}
	R.pub_fd = -1;
	R.pub_connected = false;
	R.pub_blocked = false;
	if (R.opt.use_stdin) {
		R.finishing = true;
		R.finish_deadline = now_ns() + (uint64_t)(R.opt.drain_timeout * 1e9);
		epoll_ctl(R.epfd, EPOLL_CTL_DEL, R.listen_fd, NULL);
		close(R.listen_fd);
		R.listen_fd = -1;
		while (R.conns)
			conn_close(R.conns);
		topics_tick(); /* what was published goes out first */
		topics_going_away((uint64_t)(R.opt.drain_timeout * 1e9));
	} else {
		logmsg("waiting for the next publisher on %s", R.ingest_name);
	}
}

/* Bytes we may read now without overwriting data a shard still needs. */
static size_t ring_room(void)
{
	uint64_t low = R.wpos;
	size_t room, cap;
	int i;

	for (i = 0; i < R.nshards; i++) {
		uint64_t l = atomic_load_explicit(&R.shards[i].low, memory_order_acquire);

		if (l < low)
			low = l;
	}
	if (low > R.head) /* a shard cannot need data it was not given */
		low = R.head;
	room = (size_t)(low + R.ring.size - R.wpos);
	cap = R.chunk_max - (size_t)(R.wpos - R.head);
	return room < cap ? room : cap;
}

void pub_readable(void)
{
	struct iovec iov[2];
	size_t n;
	ssize_t r;
	int cnt;

	n = ring_room();
	if (n == 0) {
		flush_chunk();
		n = ring_room();
		if (n == 0) {
			/* Only a CPU-starved shard thread gets here, never a viewer. */
			if (!R.pub_blocked && !R.pub_polled)
				ep_mod(R.pub_fd, 0, &R.pub_tag);
			R.pub_blocked = true;
			return;
		}
	}
	if (R.pub_blocked) {
		R.pub_blocked = false;
		if (!R.pub_polled)
			ep_mod(R.pub_fd, EPOLLIN, &R.pub_tag);
	}
	cnt = ring_iov(&R.ring, R.wpos, R.wpos + n, iov);
	r = readv(R.pub_fd, iov, cnt);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		pub_end(strerror(errno));
		return;
	}
	if (r == 0) {
		pub_end("ended");
		return;
	}
	if (R.wpos == R.head)
		R.pending_since = now_ns();
	R.wpos += (uint64_t)r;
	R.bytes_in += (uint64_t)r;
	R.session_bytes += (uint64_t)r;
	if (R.opt.max_delay_ms == 0 || R.wpos - R.head >= R.chunk_max)
		flush_chunk();
}

void accept_publisher(void)
{
	char peer[NI_MAXHOST + NI_MAXSERV + 4] = "?";
	int fd;

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char h[NI_MAXHOST], p[NI_MAXSERV];

		fd = accept4(R.ingest_fd, (struct sockaddr *)&ss, &sl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_emfile(errno);
			return;
		}
		if (!getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
				 NI_NUMERICHOST | NI_NUMERICSERV))
			snprintf(peer, sizeof(peer), "%s:%s", h, p);
		if (R.pub_fd >= 0) {
			logmsg("rejecting publisher %s: a publisher is already connected", peer);
			close(fd);
			continue;
		}
		R.pub_fd = fd;
		R.pub_connected = true;
		R.session_bytes = 0;
		R.sessions++;
		ep_add(fd, EPOLLIN, &R.pub_tag);
		logmsg("publisher connected from %s", peer);
	}
}

/* A further --ingest: one publisher at a time feeds its topic. */
void accept_topic_publisher(struct extra_ingest *x)
{
	for (;;) {
		int fd = accept4(x->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_emfile(errno);
			return;
		}
		if (x->busy || R.finishing) {
			logmsg("rejecting a publisher of topic %s: one is already connected", x->topic);
			close(fd);
			continue;
		}
		logmsg("ingest publisher of topic %s connected", x->topic);
		topic_raw_publisher(x->topic, fd, &x->busy);
	}
}
