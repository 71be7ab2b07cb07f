/* SPDX-License-Identifier: MIT */
/*
 * The control connection's accepting side. The library listens on a
 * loopback port only for the moment of its own connect, but any local
 * process may connect in that moment: the connection accepted must be ours
 * (its peer address is our socket's local address), others are closed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define INTRUDERS_MAX 64
#define ACCEPT_WAIT_MS 1000

int wvv_accept_peer(int lfd, const struct sockaddr_in *own)
{
	int tries;

	for (tries = 0; tries <= INTRUDERS_MAX; tries++) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		int p;

		p = accept4(lfd, (struct sockaddr *)&from, &len,
			    SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (p < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -errno;
			/* Our connect has returned, so its connection is queued
			 * or about to be: wait for it, within reason. */
			if (poll(&pfd, 1, ACCEPT_WAIT_MS) == 0)
				return -ETIMEDOUT;
			continue;
		}
		if (len >= sizeof(from) && from.sin_family == AF_INET &&
		    from.sin_port == own->sin_port && from.sin_addr.s_addr == own->sin_addr.s_addr)
			return p;
		close(p); /* someone else's connection */
	}
	return -ECONNREFUSED;
}
