/* SPDX-License-Identifier: MIT */
/* writevv-relay: listening sockets, accepting, epoll registration, the open files limit. */
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


/* ---- sockets ------------------------------------------------------------ */

static int split_hostport(const char *spec, char *host, size_t hostsz, char *port,
			  size_t portsz)
{
	const char *colon;
	size_t hl;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - spec - 1);
		if (hl >= hostsz)
			return -1;
		memcpy(host, spec + 1, hl);
		host[hl] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - spec);
		if (hl >= hostsz)
			return -1;
		memcpy(host, spec, hl);
		host[hl] = 0;
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= portsz)
		return -1;
	strcpy(port, colon + 1);
	return 0;
}

void sockname(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[NI_MAXHOST], p[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, outsz, "?");
		return;
	}
	if (ss.ss_family == AF_INET6)
		snprintf(out, outsz, "[%s]:%s", h, p);
	else
		snprintf(out, outsz, "%s:%s", h, p);
}

int listen_on(const char *spec, const char *what)
{
	char host[256], port[32];
	struct addrinfo hints, *res, *ai;
	int fd = -1, err = 0, one = 1, rc;

	if (split_hostport(spec, host, sizeof(host), port, sizeof(port)) < 0) {
		logmsg("bad %s address '%s': expected ADDR:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)",
		       what, spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc) {
		logmsg("cannot resolve %s address '%s': %s", what, spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (err == EADDRINUSE)
			logmsg("cannot listen for %s on %s: address already in use -- another "
			       "process (maybe another writevv-relay) holds that port; stop it or "
			       "choose another port with %s ADDR:PORT (port 0 picks a free one)",
			       what, spec, strcmp(what, "viewers") ? "--ingest" : "--listen");
		else if (err == EACCES)
			logmsg("cannot listen for %s on %s: permission denied (ports below 1024 "
			       "need root or CAP_NET_BIND_SERVICE)", what, spec);
		else if (err == EADDRNOTAVAIL)
			logmsg("cannot listen for %s on %s: no such local address", what, spec);
		else
			logmsg("cannot listen for %s on %s: %s", what, spec, strerror(err));
	}
	return fd;
}

void ep_add(int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(R.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		logmsg("epoll_ctl(ADD %d): %s", fd, strerror(errno));
}

void ep_mod(int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(R.epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		logmsg("epoll_ctl(MOD %d): %s", fd, strerror(errno));
}

void raise_nofile(void)
{
	rlim_t old = 0, cur = nofile_raise_to_hard(&old);

	if (cur > old)
		vlogmsg("open files limit raised from %llu to %llu",
			(unsigned long long)old, (unsigned long long)cur);
	if (cur && cur < 4096)
		logmsg("note: the open files limit is %llu, so at most about %llu viewers "
		       "fit; raise the hard limit (as root: `ulimit -Hn 65536`, or "
		       "LimitNOFILE= in a systemd unit) for more",
		       (unsigned long long)cur, (unsigned long long)cur - 16);
}

void log_emfile(int err)
{
	uint64_t now = now_ns();
	struct rlimit rl = { 0, 0 };

	if (R.emfile_logged && now - R.emfile_logged < 10ULL * 1000000000ULL)
		return;
	R.emfile_logged = now;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (err == EMFILE)
		logmsg("too many open files: the limit of %llu descriptors is reached (hard "
		       "limit %llu), new connections are refused; raise it with `ulimit -n` "
		       "before starting (as root `ulimit -Hn 1048576`, or LimitNOFILE= in a "
		       "systemd unit)",
		       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	else
		logmsg("too many open files in the system (ENFILE): raise fs.file-max "
		       "(sysctl -w fs.file-max=...); new connections are refused");
}

/* accept4() that survives EMFILE: refuse the connection instead of spinning.
 * TCP_NODELAY: the relay writes each answer, and each tick's frames for a
 * subscriber, in one call already; Nagle would only hold a small write (the
 * next pipelined answer, a small frame) until the client's delayed ACK. */
int accept_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

	if (fd >= 0) {
		/* the listeners are TCP (IPv4 or IPv6); best effort all the same */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return fd;
	}
	if (errno != EMFILE && errno != ENFILE)
		return fd;
	log_emfile(errno);
	if (R.spare_fd >= 0) {
		close(R.spare_fd);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
						  "Content-Length: 0\r\nConnection: close\r\n\r\n";

			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* best effort */
			}
			close(fd);
		}
		R.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	errno = EAGAIN;
	return -1;
}
