/* SPDX-License-Identifier: MIT */
/*
 * The EXAMPLE of writevv(3): one two-part message to two TCP
 * connections and a UNIX socket pair.  Build it with
 *   cc doc_example.c $(pkg-config --cflags --libs writevv)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <writevv.h>

/* Connect to the listener lfd (the kernel completes the
 * connection even before accept). */
static int tcp_connect(int lfd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd;

	if (getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, len) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	char head[] = "hello, ", body[] = "fan-out\n";
	struct iovec iov[2] = {
		{ .iov_base = head, .iov_len = sizeof(head) - 1 },
		{ .iov_base = body, .iov_len = sizeof(body) - 1 },
	};
	size_t returns[3];
	int errors[3], fds[3], sv[2], lfd, mode, full, i;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 8) < 0) {
		perror("listen");
		return 1;
	}
	fds[0] = tcp_connect(lfd);
	fds[1] = tcp_connect(lfd);
	if (fds[0] < 0 || fds[1] < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("connect");
		return 1;
	}
	fds[2] = sv[0];

	if (writevv_control(WRITEVV_GETMODE, &mode) == 0)
		printf("engine: %s\n",
		       mode == WRITEVV_MODE_KERNEL   ? "kernel" :
		       mode == WRITEVV_MODE_IOURING  ? "iouring" :
		       mode == WRITEVV_MODE_SENDFILE ? "sendfile" :
		       mode == WRITEVV_MODE_ZEROCOPY ? "zerocopy" : "userland");

	full = writevv(fds, 3, iov, 2, returns, errors);
	if (full < 0) {
		perror("writevv");
		return 1;
	}
	for (i = 0; i < 3; i++) {
		if (errors[i])
			printf("fd %d: error %d\n", fds[i], errors[i]);
		else
			printf("fd %d: %zu bytes\n", fds[i], returns[i]);
	}
	printf("%d of 3 descriptors took all %zu bytes\n", full,
	       iov[0].iov_len + iov[1].iov_len);

	for (i = 0; i < 3; i++)
		close(fds[i]);
	close(sv[1]);
	close(lfd);
	return full == 3 ? 0 : 1;
}
