// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* writevv-loader: what the machine must give a load (capabilities, bpffs). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/magic.h>

#include "loader.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

bool has_privileges(bool need_perfmon)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	bool sys_admin, bpf, perfmon, net_admin;

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &hdr, d))
		return geteuid() == 0;
#define HAVE(c) ((d[(c) / 32].effective >> ((c) % 32)) & 1u)
	sys_admin = HAVE(CAP_SYS_ADMIN);
	bpf = HAVE(CAP_BPF) || sys_admin;
	perfmon = HAVE(CAP_PERFMON) || sys_admin;
	net_admin = HAVE(CAP_NET_ADMIN);
#undef HAVE
	return bpf && net_admin && (perfmon || !need_perfmon);
}

static long fs_magic(const char *path)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return (long)(uint32_t)st.f_type;
}

/* The pin directory's parent must be on bpffs; mount /sys/fs/bpf if needed,
 * mode 0755 so that no other user can create names in it. */
int ensure_bpffs(const char *dir)
{
	char parent[PATH_MAX];
	char *slash;
	long magic;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';

	if (fs_magic(parent) == BPF_FS_MAGIC)
		return 0;
	if (fs_magic(BPFFS_ROOT) != BPF_FS_MAGIC) {
		if (mount("bpf", BPFFS_ROOT, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755")) {
			int err = -errno;

			errmsg("bpffs is not mounted at %s and mounting it failed: %s",
			       BPFFS_ROOT, strerror(-err));
			return err;
		}
		printf("writevv-loader: bpffs was not mounted, mounted it at %s (mode 0755)\n", BPFFS_ROOT);
	}
	magic = fs_magic(parent);
	if (magic == BPF_FS_MAGIC)
		return 0;
	if (magic < 0) {
		errmsg("cannot use pin directory %s: parent %s: %s", dir, parent, strerror((int)-magic));
		return (int)magic;
	}
	errmsg("cannot use pin directory %s: %s is not on a bpf filesystem (pins only live on bpffs)",
	       dir, parent);
	return -EXDEV;
}
