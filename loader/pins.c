// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* writevv-loader: environment checks and the pin directory on bpffs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

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

const char *const map_pins[M_NR] = {
	WVV_PIN_CTL, WVV_PIN_TARGETS, WVV_PIN_RINGS,
	WVV_PIN_SLOT_STATE, WVV_PIN_STATS, WVV_PIN_CONFIG,
};

void errmsg(const char *fmt, ...)
{
	va_list ap;

	fputs("writevv-loader: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int join(char *buf, const char *dir, const char *name)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- environment checks ------------------------------------------------ */

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

/* The pin directory's parent must be on bpffs; mount /sys/fs/bpf if needed. */
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
		if (mount("bpf", BPFFS_ROOT, "bpf", 0, NULL)) {
			int err = -errno;

			errmsg("bpffs is not mounted at %s and mounting it failed: %s",
			       BPFFS_ROOT, strerror(-err));
			return err;
		}
		printf("writevv-loader: bpffs was not mounted, mounted it at %s\n", BPFFS_ROOT);
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

/* ---- pin tree helpers -------------------------------------------------- */

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool known_top_entry(const char *name)
{
	size_t i;

	if (!strcmp(name, WVV_PIN_PROG) || !strcmp(name, WVV_PIN_RING_DIR))
		return true;
	for (i = 0; i < ARRAY_SIZE(map_pins); i++)
		if (!strcmp(name, map_pins[i]))
			return true;
	return false;
}

static bool is_dot(const char *n)
{
	return !strcmp(n, ".") || !strcmp(n, "..");
}

/* Fails with -ENOTEMPTY (and names the culprit) if 'dir' holds anything
 * that is not a writevv pin, so unload never removes foreign objects. */
int check_tree(const char *dir, bool rings)
{
	char sub[PATH_MAX];
	struct dirent *e;
	int err = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while (!err && (e = readdir(d))) {
		if (is_dot(e->d_name))
			continue;
		if (rings ? !all_digits(e->d_name) : !known_top_entry(e->d_name)) {
			errmsg("%s/%s is not a writevv pin: refusing to remove %s", dir, e->d_name, dir);
			err = -ENOTEMPTY;
		} else if (!rings && !strcmp(e->d_name, WVV_PIN_RING_DIR)) {
			err = join(sub, dir, e->d_name);
			if (!err)
				err = check_tree(sub, true);
		}
	}
	closedir(d);
	return err;
}

/* Remove a pin directory we own: pins, rings/ and the directory itself. */
int rm_tree(const char *dir, int depth)
{
	char sub[PATH_MAX];
	struct dirent *e;
	int err = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (is_dot(e->d_name))
			continue;
		if (!unlinkat(dirfd(d), e->d_name, 0))
			continue;
		if (errno == EISDIR && depth > 0 && !join(sub, dir, e->d_name)) {
			int r = rm_tree(sub, depth - 1);

			if (r && !err)
				err = r;
		} else if (!err) {
			err = -errno;
		}
	}
	closedir(d);
	if (rmdir(dir) && !err)
		err = -errno;
	return err;
}

/* Remove DIR-tmp-<pid> / DIR-unload-<pid> left by a loader that died. */
void sweep_stale(const char *dir)
{
	char parent[PATH_MAX], path[PATH_MAX], prefix[NAME_MAX + 2];
	const char *base = strrchr(dir, '/') + 1;
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(parent, sizeof(parent), "%.*s", (int)(base - dir), dir);
	d = opendir(parent);
	if (!d)
		return;
	while ((e = readdir(d))) {
		const char *rest, *tails[] = { "tmp-", "unload-" };
		size_t i, n = (size_t)snprintf(prefix, sizeof(prefix), "%s-", base);
		long pid;

		if (n >= sizeof(prefix) || strncmp(e->d_name, prefix, n))
			continue;
		for (i = 0; i < ARRAY_SIZE(tails); i++) {
			rest = e->d_name + n;
			if (strncmp(rest, tails[i], strlen(tails[i])))
				continue;
			rest += strlen(tails[i]);
			if (!all_digits(rest))
				continue;
			pid = strtol(rest, NULL, 10);
			if (pid <= 0 || pid == getpid() || !(kill((pid_t)pid, 0) && errno == ESRCH))
				continue;
			if (snprintf(path, sizeof(path), "%s%s", parent, e->d_name) >= (int)sizeof(path) ||
			    lstat(path, &st) || !S_ISDIR(st.st_mode) ||
			    time(NULL) - st.st_ctime < STALE_AGE_SEC || check_tree(path, false))
				continue;
			if (!rm_tree(path, 1))
				printf("writevv-loader: removed %s, left by a loader that died\n", path);
		}
	}
	closedir(d);
}

/* Open DIR/name; on failure say specifically why. Returns fd or -errno. */
int open_pin(const char *dir, const char *name, bool quiet_enoent)
{
	char path[PATH_MAX];
	int fd, err;

	err = join(path, dir, name);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd >= 0)
		return fd;
	err = -errno;
	if (err == -EACCES || err == -EPERM)
		errmsg("permission denied opening %s: need root, or membership in the group the pins were loaded with (--group)",
		       path);
	else if (err == -ENOENT && !quiet_enoent)
		errmsg("%s is missing: %s is not a complete writevv pin directory (`writevv-loader unload` removes it)",
		       path, dir);
	else if (err != -ENOENT)
		errmsg("cannot open %s: %s", path, strerror(-err));
	return err;
}

/* Read wvv_config[0] whatever its size, so a foreign ABI is still recognised
 * by its first word. Returns 0 or -errno. */
int read_config(int fd, struct wvv_config *cfg)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), zero = 0;
	void *buf;
	int err;

	memset(&info, 0, sizeof(info));
	memset(cfg, 0, sizeof(*cfg));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.key_size != sizeof(__u32) ||
	    info.value_size < sizeof(__u32) || info.value_size > 4096)
		return -EPROTO;
	buf = calloc(1, info.value_size);
	if (!buf)
		return -ENOMEM;
	err = bpf_map_lookup_elem(fd, &zero, buf) ? -errno : 0;
	if (!err)
		memcpy(cfg, buf, info.value_size < sizeof(*cfg) ? info.value_size : sizeof(*cfg));
	free(buf);
	return err;
}

int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

int count_present(int fd, __u32 max)
{
	__u64 val;  /* a socket cookie, or an inner map id */
	__u32 i;
	int n = 0;

	for (i = 0; i < max; i++) {
		if (!bpf_map_lookup_elem(fd, &i, &val))
			n++;
		else if (errno != ENOENT)
			return -errno;
	}
	return n;
}
