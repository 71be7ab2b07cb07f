/* SPDX-License-Identifier: MIT */
/* Built against an installed writevv, through pkg-config and find_package. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <writevv.h>

int main(void)
{
	int sv[2][2], fds[2], errs[2], mode = WRITEVV_MODE_USERLAND, i;
	size_t rets[2];
	char buf[16];
	struct iovec iov = { "installed", 9 };

	for (i = 0; i < 2; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]))
			return 1;
		fds[i] = sv[i][0];
	}
	if (writevv_control(WRITEVV_SETMODE, &mode) || writevv(fds, 2, &iov, 1, rets, errs) != 2)
		return 2;
	for (i = 0; i < 2; i++)
		if (read(sv[i][1], buf, sizeof(buf)) != 9 || memcmp(buf, "installed", 9))
			return 3;
	puts("consumer: ok");
	return 0;
}
