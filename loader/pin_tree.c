// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* writevv-loader: the pin directory on bpffs and the pins in it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <bpf/bpf.h>

#include "loader.h"

const char *const map_pins[M_NR] = {
	WVV_PIN_CTL, WVV_PIN_TARGETS, WVV_PIN_RINGS,
	WVV_PIN_SLOT_STATE, WVV_PIN_STATS, WVV_PIN_CONFIG,
};

/* ---- the pin tree ------------------------------------------------------ */
/*
 * bpffs is often mounted 1777, so other users may create names next to the
 * pins. Everything the loader creates, renames or removes there is reached
 * through descriptors: the parent of the pin directory is opened one
 * component at a time from / without following symlinks, and must be a
 * directory in which nobody else can rename or remove our entries; below
 * it, entries are examined with fstatat(AT_SYMLINK_NOFOLLOW) and removed
 * with unlinkat() relative to the directory they were found in, and only
 * when they are what a loader makes (our euid, an expected name and type).
 * "The pin tree" in doc/DESIGN.md explains the choices.
 */

#ifdef WVV_LOADER_TEST_HOOKS
/* Test builds only (tests/test_loader_attacks.c): shorten the stale age,
 * and stop the sweep between its checks and its removal until the test's
 * attacker has done its swap. */
static long stale_age(void)
{
	const char *s = secure_getenv("WRITEVV_LOADER_TEST_STALE_AGE");

	return s ? strtol(s, NULL, 10) : STALE_AGE_SEC;
}

static void test_pause(const char *name)
{
	const char *dir = secure_getenv("WRITEVV_LOADER_TEST_PAUSE");
	char path[PATH_MAX], c;
	int fd;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/pause", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dprintf(fd, "%s\n", name);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/resume", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		while (read(fd, &c, 1) > 0)
			;
		close(fd);
	}
}
#else
static long stale_age(void)
{
	return STALE_AGE_SEC;
}

static void test_pause(const char *name)
{
	(void)name;
}
#endif

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool is_dot(const char *n)
{
	return !strcmp(n, ".") || !strcmp(n, "..");
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

static const char *kind_of(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symlink" : S_ISREG(m) ? "a pin" : "a special file";
}

/* Nobody but root and us can rename or remove this directory's entries. */
static bool dir_trusted(const struct stat *st)
{
	if (!S_ISDIR(st->st_mode) || (st->st_uid != 0 && st->st_uid != geteuid()))
		return false;
	return !(st->st_mode & (S_IWGRP | S_IWOTH)) || (st->st_mode & S_ISVTX);
}

/* A directory this loader made: ours, and writable by nobody else. */
static bool dir_ours(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* What a loader puts in a pin directory (rings: in its rings/). Only the
 * directories' owner matters: in a directory of ours that nobody else can
 * write, only we made the entries, whoever a pin was then given to (a
 * --group load gives an account's maps to that account). */
static bool expected_entry(const char *name, const struct stat *st, bool rings)
{
	if (rings)
		return all_digits(name) && S_ISREG(st->st_mode);
	if (!strcmp(name, WVV_PIN_RING_DIR))
		return dir_ours(st);
	return known_top_entry(name) && S_ISREG(st->st_mode);
}

/* 64 unpredictable bits, as 16 hex digits. */
static int random_hex(char out[17])
{
	unsigned long long r;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return errno ? -errno : -EIO;
	snprintf(out, 17, "%016llx", r);
	return 0;
}

/* "<pid>" or "<pid>-<16 hex>": the tail of a temporary name. Its pid or -1. */
static long temp_tail_pid(const char *s)
{
	const char *dash = strchr(s, '-');
	char digits[16];
	size_t n = dash ? (size_t)(dash - s) : strlen(s), i;

	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (!all_digits(digits))
		return -1;
	if (dash) {
		if (strlen(dash + 1) != 16)
			return -1;
		for (i = 1; i <= 16; i++)
			if (!strchr("0123456789abcdef", dash[i]))
				return -1;
	}
	return strtol(digits, NULL, 10);
}

static const char *const temp_kinds[] = { "-tmp-", "-unload-" };

/* The pid in name = base + "-tmp-" / "-unload-" + tail, else -1. */
static long temp_pid(const char *name, const char *base)
{
	size_t n = strlen(base), i;

	if (strncmp(name, base, n))
		return -1;
	for (i = 0; i < ARRAY_SIZE(temp_kinds); i++)
		if (!strncmp(name + n, temp_kinds[i], strlen(temp_kinds[i])))
			return temp_tail_pid(name + n + strlen(temp_kinds[i]));
	return -1;
}

/* Would the sweep of a shorter name take 'name' for a leftover? */
static bool looks_temporary(const char *name)
{
	const char *p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(temp_kinds); i++)
		for (p = name; (p = strstr(p, temp_kinds[i])); p++)
			if (temp_tail_pid(p + strlen(temp_kinds[i])) >= 0)
				return true;
	return strstr(name, "-squatted-") != NULL;
}

/* Open the directory that holds 'dir' (fd, or -errno, reported unless
 * quiet); *base = dir's last component. */
static int open_pin_parent(const char *dir, const char **base, bool quiet)
{
	const char *p = dir, *end;
	char comp[NAME_MAX + 1];
	struct stat st;
	int fd, next, err;

	*base = strrchr(dir, '/') + 1;
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (fstat(fd, &st)) {
			err = -errno;
			close(fd);
			return err;
		}
		if (!dir_trusted(&st)) {
			if (!quiet)
				errmsg("refusing %s: %.*s is owned by uid %u with mode %04o, so other users could rename the pins away (it must belong to root and not be writable by others, or be sticky)",
				       dir, p == dir ? 1 : (int)(p - dir), dir, (unsigned int)st.st_uid,
				       (unsigned int)(st.st_mode & 07777));
			close(fd);
			return -EPERM;
		}
		while (*p == '/')
			p++;
		if (p == *base)
			return fd;
		end = strchr(p, '/');
		if ((size_t)(end - p) > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, (size_t)(end - p));
		comp[end - p] = '\0';
		if (!strcmp(comp, "..")) {
			if (!quiet)
				errmsg("refusing %s: '..' in the pin directory", dir);
			close(fd);
			return -EINVAL;
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = -errno;
		close(fd);
		if (next < 0) {
			if (!quiet)
				errmsg("cannot use pin directory %s: %.*s: %s%s", dir, (int)(end - dir), dir,
				       strerror(-err), err == -ELOOP ? " (a symlink: the loader follows none)" : "");
			return err;
		}
		fd = next;
		p = end;
	}
}

/* Open dfd/name as a directory without following a symlink; it must still
 * be the inode fstatat() saw as *seen. */
static int open_subdir(int dfd, const char *name, const struct stat *seen)
{
	struct stat now;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &now) || now.st_dev != seen->st_dev || now.st_ino != seen->st_ino) {
		close(fd);
		return -EAGAIN;
	}
	return fd;
}

/* A stream of dfd's entries that leaves dfd's own offset alone. */
static DIR *dir_stream(int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return d;
}

/* -ENOTEMPTY (reported) if the directory dfd (named path) holds anything
 * that is not a pin this loader made. */
static int check_entries(int dfd, const char *path, bool rings)
{
	char sub[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int err = 0, sfd;
	DIR *d = dir_stream(dfd);

	if (!d)
		return -errno;
	while (!err && (e = readdir(d))) {
		if (is_dot(e->d_name))
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			err = -errno;
		} else if (!expected_entry(e->d_name, &st, rings)) {
			errmsg("%s/%s is not a writevv pin (%s, owner uid %u): refusing to remove %s",
			       path, e->d_name, kind_of(st.st_mode), (unsigned int)st.st_uid, path);
			err = -ENOTEMPTY;
		} else if (S_ISDIR(st.st_mode)) {
			err = join(sub, path, e->d_name);
			sfd = err ? err : open_subdir(dfd, e->d_name, &st);
			if (sfd >= 0) {
				err = check_entries(sfd, sub, true);
				close(sfd);
			} else {
				err = sfd;
			}
		}
	}
	closedir(d);
	return err;
}

/* Unlink the pins of the directory dfd (named path), and rings/ with its
 * pins, relative to the descriptors: never by a path, never through a
 * symlink, never anything check_entries() would refuse. */
static int remove_entries(int dfd, const char *path, bool rings)
{
	char sub[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int err = 0, r, sfd;
	DIR *d = dir_stream(dfd);

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (is_dot(e->d_name))
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			r = errno == ENOENT ? 0 : -errno;
		} else if (!expected_entry(e->d_name, &st, rings)) {
			errmsg("%s/%s is not a writevv pin: left it", path, e->d_name);
			r = -ENOTEMPTY;
		} else if (S_ISDIR(st.st_mode)) {
			r = join(sub, path, e->d_name);
			sfd = r ? r : open_subdir(dfd, e->d_name, &st);
			if (sfd >= 0) {
				r = remove_entries(sfd, sub, true);
				close(sfd);
			} else {
				r = sfd;
			}
			if (!r && unlinkat(dfd, e->d_name, AT_REMOVEDIR))
				r = -errno;
		} else {
			r = unlinkat(dfd, e->d_name, 0) ? -errno : 0;
		}
		if (r && !err)
			err = r;
	}
	closedir(d);
	return err;
}

/* Remove the pin directory pfd/name (named path): only if this loader made
 * it and it holds nothing else. 0, or -errno (reported). */
static int remove_dir_at(int pfd, const char *name, const char *path, bool sweeping)
{
	struct stat st, now;
	int fd, err;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (!dir_ours(&st)) {
		errmsg("%s is %s of uid %u, mode %04o, not a directory this loader made: left it alone",
		       path, kind_of(st.st_mode), (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	fd = open_subdir(pfd, name, &st);
	if (fd < 0) {
		errmsg("cannot open %s: %s", path, strerror(-fd));
		return fd;
	}
	err = check_entries(fd, path, false);
	if (!err) {
		if (sweeping)
			test_pause(name);
		err = remove_entries(fd, path, false);
	}
	if (!err) {
		/* The name is ours in a parent others cannot rename in; still,
		 * remove it only if it is the directory just emptied. */
		if (fstatat(pfd, name, &now, AT_SYMLINK_NOFOLLOW) || now.st_dev != st.st_dev ||
		    now.st_ino != st.st_ino) {
			errmsg("%s was replaced while its pins were removed: left the new entry alone", path);
			err = -EAGAIN;
		} else if (unlinkat(pfd, name, AT_REMOVEDIR)) {
			err = -errno;
		}
	}
	close(fd);
	return err;
}

int prepare_pin_dir(const char *dir)
{
	const char *base;
	struct stat st;
	int pfd, err = ensure_bpffs(dir);

	if (err)
		return err;
	base = strrchr(dir, '/') + 1;
	if (looks_temporary(base)) {
		errmsg("'%s' looks like one of the loader's temporary names (-tmp-N, -unload-N, -squatted-): choose another pin directory",
		       base);
		return -EINVAL;
	}
	pfd = open_pin_parent(dir, &base, false);
	if (pfd < 0)
		return pfd;
	if (!fstat(pfd, &st) && (st.st_mode & S_IWOTH))
		printf("writevv-loader: note: the directory of %s is mode %04o: other users can create names there, which the loader never uses, follows or deletes (mode 0755 keeps them out)\n",
		       dir, (unsigned int)(st.st_mode & 07777));
	close(pfd);
	return 0;
}

int pin_dir_state(const char *dir)
{
	const char *base;
	struct stat st;
	int pfd = open_pin_parent(dir, &base, false), err;

	if (pfd < 0)
		return pfd;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW)) {
		err = errno == ENOENT ? 0 : -errno;
		if (err)
			errmsg("cannot access %s: %s", dir, strerror(-err));
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		printf("writevv-loader: note: %s is %s made by uid %u, not by a loader: not a pin directory\n",
		       dir, kind_of(st.st_mode), (unsigned int)st.st_uid);
		err = 0;
	} else if (!S_ISDIR(st.st_mode)) {
		errmsg("%s exists and is not a directory: refusing to touch it", dir);
		err = -EEXIST;
	} else if (!dir_ours(&st)) {
		errmsg("%s is mode %04o, owner uid %u: not a directory this loader made (0700 or 0750): refusing to use it",
		       dir, (unsigned int)(st.st_mode & 07777), (unsigned int)st.st_uid);
		err = -EPERM;
	} else {
		err = 1;
	}
	close(pfd);
	return err;
}

int check_tree(const char *dir)
{
	const char *base;
	struct stat st;
	int pfd = open_pin_parent(dir, &base, false), fd, err;

	if (pfd < 0)
		return pfd;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW))
		err = -errno;
	else if (!dir_ours(&st))
		err = -EPERM;
	else if ((fd = open_subdir(pfd, base, &st)) < 0)
		err = fd;
	else {
		err = check_entries(fd, dir, false);
		close(fd);
	}
	close(pfd);
	return err;
}

int make_temp_dir(const char *dir, char *path)
{
	char name[NAME_MAX + 1], hex[17];
	const char *base;
	int pfd = open_pin_parent(dir, &base, false), err = -EEXIST, i;

	if (pfd < 0)
		return pfd;
	/* Unpredictable, so nobody can make the name first; a clash is retried. */
	for (i = 0; i < 16 && err == -EEXIST; i++) {
		err = random_hex(hex);
		if (!err && snprintf(name, sizeof(name), "%s-tmp-%ld-%s", base, (long)getpid(), hex) >=
				    (int)sizeof(name))
			err = -ENAMETOOLONG;
		if (!err)
			err = mkdirat(pfd, name, 0700) ? -errno : 0;
	}
	if (!err && snprintf(path, PATH_MAX, "%.*s%s", (int)(base - dir), dir, name) >= PATH_MAX)
		err = -ENAMETOOLONG;  /* (cannot be: set_dir leaves room) */
	if (err)
		errmsg("cannot create a temporary directory next to %s: %s", dir, strerror(-err));
	close(pfd);
	return err;
}

int pin_dir_publish(const char *tmp, const char *dir)
{
	char aside[NAME_MAX + 1], hex[17];
	const char *base, *tmp_base = strrchr(tmp, '/') + 1;
	struct stat st;
	int pfd = open_pin_parent(dir, &base, false), err = -EAGAIN, tries;

	if (pfd < 0)
		return pfd;
	/* If something is there, exchange it for ours atomically and look at
	 * it: another loader's directory is put back and wins (-EEXIST); an
	 * entry made by another user (a squatter) is kept, untouched, under a
	 * new name. A squatter's entry that comes and goes is tried again. */
	for (tries = 0; tries < 1000 && err == -EAGAIN; tries++) {
		if (!renameat2(pfd, tmp_base, pfd, base, RENAME_NOREPLACE)) {
			err = 0;
			break;
		}
		err = -errno;
		if (err != -EEXIST && err != -ENOTEMPTY)
			break;
		if (renameat2(pfd, tmp_base, pfd, base, RENAME_EXCHANGE)) {
			err = errno == ENOENT ? -EAGAIN : -errno;
			continue;
		}
		if (fstatat(pfd, tmp_base, &st, AT_SYMLINK_NOFOLLOW) || st.st_uid == geteuid() ||
		    st.st_uid == 0) {
			err = renameat2(pfd, tmp_base, pfd, base, RENAME_EXCHANGE) ? -errno : -EEXIST;
			break;
		}
		err = random_hex(hex);
		if (!err && snprintf(aside, sizeof(aside), "%s-squatted-%s", base, hex) >= (int)sizeof(aside))
			err = -ENAMETOOLONG;
		if (!err && renameat2(pfd, tmp_base, pfd, aside, RENAME_NOREPLACE))
			err = -errno;
		if (err)
			errmsg("warning: %s was %s made by uid %u, not by a loader; it is now at %s (untouched)",
			       dir, kind_of(st.st_mode), (unsigned int)st.st_uid, tmp);
		else
			errmsg("warning: %s was %s made by uid %u, not by a loader: moved it aside to %.*s%s (untouched)",
			       dir, kind_of(st.st_mode), (unsigned int)st.st_uid, (int)(base - dir), dir, aside);
		err = 0;
	}
	close(pfd);
	return err;
}

int pin_dir_remove(const char *dir, bool *renamed)
{
	char name[NAME_MAX + 1], path[PATH_MAX], hex[17];
	const char *base;
	int pfd = open_pin_parent(dir, &base, false), err;

	*renamed = false;
	if (pfd < 0)
		return pfd;
	/* Aside first, so new library instances stop finding it at once. */
	err = random_hex(hex);
	if (!err && snprintf(name, sizeof(name), "%s-unload-%ld-%s", base, (long)getpid(), hex) >=
			    (int)sizeof(name))
		err = -ENAMETOOLONG;
	if (!err && renameat2(pfd, base, pfd, name, RENAME_NOREPLACE))
		err = -errno;
	if (err) {
		errmsg("cannot rename %s aside: %s", dir, strerror(-err));
		goto out;
	}
	*renamed = true;
	snprintf(path, sizeof(path), "%.*s%s", (int)(base - dir), dir, name);
	err = remove_dir_at(pfd, name, path, false);
	if (err)
		errmsg("%s is gone, but removing its pins from %s failed: %s", dir, path, strerror(-err));
out:
	close(pfd);
	return err;
}

int rm_tree(const char *dir)
{
	const char *base;
	int pfd = open_pin_parent(dir, &base, false), err;

	if (pfd < 0)
		return pfd;
	err = remove_dir_at(pfd, base, dir, false);
	close(pfd);
	return err;
}

void sweep_stale(const char *dir)
{
	char path[PATH_MAX];
	const char *base;
	struct dirent *e;
	struct stat st;
	long pid;
	int pfd = open_pin_parent(dir, &base, true);
	DIR *d;

	if (pfd < 0)
		return;
	d = dir_stream(pfd);
	while (d && (e = readdir(d))) {
		pid = temp_pid(e->d_name, base);
		if (pid <= 0 || pid == getpid() || !(kill((pid_t)pid, 0) && errno == ESRCH))
			continue;
		if (fstatat(pfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
			continue;
		if (snprintf(path, sizeof(path), "%.*s%s", (int)(base - dir), dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (!dir_ours(&st)) {
			printf("writevv-loader: note: %s looks like a dead loader's leftover but is not one (owner uid %u, mode %04o): left it alone\n",
			       path, (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
			continue;
		}
		if (time(NULL) - st.st_ctime < stale_age())
			continue;
		if (!remove_dir_at(pfd, e->d_name, path, true))
			printf("writevv-loader: removed %s, left by a loader that died\n", path);
	}
	if (d)
		closedir(d);
	close(pfd);
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
