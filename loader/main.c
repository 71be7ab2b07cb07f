// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * writevv-loader: loads the writevv SK_MSG program, sizes and fills its maps,
 * attaches it to the control sockmap and pins everything under one bpffs
 * directory (WVV_PIN_DIR_DEFAULT or $WRITEVV_PIN_DIR), where libwritevv finds
 * it. The directory is built under a temporary sibling name and renamed into
 * place, so it appears complete or not at all. See writevv-loader(8).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "pinned_maps.h"
#include "writevv.skel.h"

#define SLOTS_MAX 4096u           /* 4096 x 256 KiB = 1 GiB of status rings */
#define TARGETS_MAX (1u << 24)

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct opts {
	const char *cmd;
	char dir[PATH_MAX];
	const char *group;
	unsigned int slots, targets;
	bool slots_set, targets_set, json, verbose;
};

static bool verbose;

static int libbpf_print_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* ---- load -------------------------------------------------------------- */

/* 1: already loaded with our ABI, 0: absent, <0: error (reported). */
/* Which build of the program this loader carries (FNV-1a of the object). */
static __u64 object_hash(void)
{
	size_t sz = 0, i;
	const unsigned char *p = writevv_bpf__elf_bytes(&sz);
	__u64 h = 0xcbf29ce484222325ull;

	for (i = 0; i < sz; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static int check_existing(const struct opts *o, const char *dir)
{
	struct wvv_config cfg;
	struct bpf_map_info info;
	int fd, err;

	err = pin_dir_state(dir);
	if (err <= 0)
		return err;
	fd = open_pin(dir, WVV_PIN_CONFIG, false);
	if (fd < 0)
		return fd;
	err = wvv_read_config(fd, &cfg);
	close(fd);
	if (err) {
		errmsg("cannot read %s/%s: %s", dir, WVV_PIN_CONFIG, strerror(-err));
		return err;
	}
	if (cfg.abi_version != WVV_ABI_VERSION) {
		errmsg("pins at %s belong to writevv ABI v%u, this loader is v%u: run `writevv-loader unload` first",
		       dir, cfg.abi_version, WVV_ABI_VERSION);
		return -EPROTO;
	}
	if (cfg.object_hash != object_hash()) {
		errmsg("pins at %s hold another build of the writevv program (ABI v%u, object %016llx, this loader's %016llx): run `writevv-loader unload` first",
		       dir, cfg.abi_version, (unsigned long long)cfg.object_hash,
		       (unsigned long long)object_hash());
		return -EEXIST;
	}
	printf("writevv: already loaded at %s\n", dir);
	if (o->slots_set && o->slots != cfg.slots)
		printf("writevv-loader: note: loaded with %u slots, --slots %u ignored (unload first to resize)\n",
		       cfg.slots, o->slots);
	if (o->targets_set && (fd = open_pin(dir, WVV_PIN_TARGETS, true)) >= 0) {
		if (!map_info(fd, &info) && info.max_entries != o->targets)
			printf("writevv-loader: note: loaded with %u targets, --targets %u ignored (unload first to resize)\n",
			       info.max_entries, o->targets);
		close(fd);
	}
	return 1;
}

/*
 * Who owns what. An owner-only load (no --group): root, dirs 0700, pins
 * 0600. With --group G, DIR itself is root's (pins 0600) and G may only
 * traverse DIR and DIR/u (0750 root:G); each account of G gets DIR/u/<uid>
 * (dirs 0711 root), where the maps its library writes (wvv_ctl,
 * wvv_targets, wvv_slot_state, rings/<n>) are the account's, 0600, its
 * counters (wvv_stats) the account's read-only, wvv_config root's and
 * read-only (0444), and the program and wvv_rings root's alone (0600): an
 * account cannot open another's maps, nor detach or re-point its own.
 */
struct perms {
	bool account;  /* a tree of one account under u/ */
	uid_t uid;     /* that account */
	bool group;    /* DIR and u/ are traversable by group gid */
	gid_t gid;
};

static int chown_chmod(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	int err;

	if (chown(path, uid, gid)) {
		err = -errno;
		errmsg("cannot chown %s to %u:%u: %s", path, (unsigned int)uid, (unsigned int)gid,
		       strerror(-err));
		return err;
	}
	if (chmod(path, mode)) {
		err = -errno;
		errmsg("cannot chmod %s: %s", path, strerror(-err));
		return err;
	}
	return 0;
}

/* A tree's own directory and its rings/ directory. */
static int set_dir_perms(const char *path, bool top, const struct perms *p)
{
	if (p->account)
		return chown_chmod(path, 0, 0, 0711);
	if (top && p->group)
		return chown_chmod(path, 0, p->gid, 0750);
	return chown_chmod(path, 0, 0, 0700);
}

/* A pin of the tree (name relative to the tree, rings/<n> for rings). */
static int set_pin_perms(const char *path, const char *name, const struct perms *p)
{
	if (!p->account)
		return chown_chmod(path, 0, 0, 0600);
	if (!strcmp(name, WVV_PIN_PROG) || !strcmp(name, WVV_PIN_RINGS))
		return chown_chmod(path, 0, 0, 0600);
	if (!strcmp(name, WVV_PIN_CONFIG))
		return chown_chmod(path, 0, 0, 0444);
	if (!strcmp(name, WVV_PIN_STATS))
		return chown_chmod(path, p->uid, 0, 0400);
	return chown_chmod(path, p->uid, 0, 0600);
}

static int make_dir(const char *path, bool top, const struct perms *p)
{
	if (mkdir(path, 0700)) {
		int err = -errno;

		errmsg("cannot create %s: %s", path, strerror(-err));
		return err;
	}
	return set_dir_perms(path, top, p);
}

/* Pin fd at dir/name; 'as' is its name within the tree (for its perms). */
static int pin_fd(int fd, const char *dir, const char *name, const char *as,
		  const struct perms *p)
{
	char path[PATH_MAX];
	int err = join(path, dir, name);

	if (!err && bpf_obj_pin(fd, path))
		err = -errno;
	if (err) {
		errmsg("cannot pin %s/%s: %s", dir, name, strerror(-err));
		return err;
	}
	return set_pin_perms(path, as, p);
}

/* Warn when group members could not even reach the pin directory. */
static void check_reachable(const char *dir, gid_t gid, const char *group)
{
	char path[PATH_MAX];
	struct stat st;
	char *slash;

	snprintf(path, sizeof(path), "%s", dir);
	while ((slash = strrchr(path, '/')) && slash != path) {
		*slash = '\0';
		if (stat(path, &st))
			return;
		if (!(st.st_mode & S_IXOTH) && !(st.st_gid == gid && (st.st_mode & S_IXGRP)))
			printf("writevv-loader: warning: %s is mode %04o: members of group %s cannot reach %s\n",
			       path, (unsigned int)(st.st_mode & 07777), group, dir);
	}
}

/*
 * Load one tree at 'dir': its own program instance attached to its own
 * wvv_ctl, its maps and rings, built under a temporary sibling name and
 * renamed into place. 0, 1 if it was there already, or -errno (reported).
 */
static int load_tree(const struct opts *o, const char *dir, const struct perms *perms,
		     bool report)
{
	struct writevv_bpf *skel = NULL;
	char tmp[PATH_MAX], rings[PATH_MAX], name[32], ringpin[48];
	struct bpf_prog_info pinfo;
	struct bpf_map_info minfo;
	__u32 len = sizeof(pinfo), zero = 0, i;
	struct wvv_config cfg = {
		.abi_version = WVV_ABI_VERSION,
		.slots = o->slots,
		.ring_bytes = WVV_RING_BYTES,
		.frame_bytes_max = WVV_FRAME_BYTES_MAX,
		.object_hash = object_hash(),
	};
	struct bpf_map *maps[M_NR];
	bool tmp_made = false;
	int err, prog_fd, ctl_fd, ring_fd = -1;

	sweep_stale(dir);
	err = check_existing(o, dir);
	if (err)
		return err;

	skel = writevv_bpf__open();
	if (!skel) {
		err = -errno;
		errmsg("cannot open the BPF object: %s", strerror(-err));
		return err;
	}
	if ((err = bpf_map__set_max_entries(skel->maps.wvv_ctl, o->slots)) ||
	    (err = bpf_map__set_max_entries(skel->maps.wvv_rings, o->slots)) ||
	    (err = bpf_map__set_max_entries(skel->maps.wvv_slot_state, o->slots)) ||
	    (err = bpf_map__set_max_entries(skel->maps.wvv_targets, o->targets))) {
		errmsg("cannot size the maps: %s", strerror(-err));
		goto cleanup;
	}
	err = writevv_bpf__load(skel);
	if (err) {
		errmsg("cannot load the BPF program: %s%s", strerror(-err),
		       verbose ? "" : " (--verbose shows libbpf's details)");
		goto cleanup;
	}
	prog_fd = bpf_program__fd(skel->progs.writevv_fanout);
	ctl_fd = bpf_map__fd(skel->maps.wvv_ctl);

	if (bpf_map_update_elem(bpf_map__fd(skel->maps.wvv_config), &zero, &cfg, BPF_ANY)) {
		err = -errno;
		errmsg("cannot write wvv_config: %s", strerror(-err));
		goto cleanup;
	}
	if (bpf_prog_attach(prog_fd, ctl_fd, BPF_SK_MSG_VERDICT, 0)) {
		err = -errno;
		errmsg("cannot attach the program to wvv_ctl: %s", strerror(-err));
		goto cleanup;
	}

	err = make_temp_dir(dir, tmp);
	if (err)
		goto cleanup;
	tmp_made = true;
	err = set_dir_perms(tmp, true, perms);
	if (!err)
		err = join(rings, tmp, WVV_PIN_RING_DIR);
	if (err)
		goto cleanup;
	maps[M_CTL] = skel->maps.wvv_ctl;
	maps[M_TARGETS] = skel->maps.wvv_targets;
	maps[M_RINGS] = skel->maps.wvv_rings;
	maps[M_SLOT_STATE] = skel->maps.wvv_slot_state;
	maps[M_STATS] = skel->maps.wvv_stats;
	maps[M_CONFIG] = skel->maps.wvv_config;
	err = pin_fd(prog_fd, tmp, WVV_PIN_PROG, WVV_PIN_PROG, perms);
	for (i = 0; !err && i < ARRAY_SIZE(maps); i++)
		err = pin_fd(bpf_map__fd(maps[i]), tmp, map_pins[i], map_pins[i], perms);
	if (!err)
		err = make_dir(rings, false, perms);
	if (err)
		goto cleanup;

	for (i = 0; i < o->slots; i++) {
		ring_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "wvv_ring", 0, 0, WVV_RING_BYTES, NULL);
		if (ring_fd < 0) {
			err = -errno;
			errmsg("cannot create status ring %u of %u: %s", i, o->slots, strerror(-err));
			goto cleanup;
		}
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.wvv_rings), &i, &ring_fd, BPF_ANY)) {
			err = -errno;
			errmsg("cannot store status ring %u in wvv_rings: %s", i, strerror(-err));
			goto cleanup;
		}
		snprintf(name, sizeof(name), "%u", i);
		snprintf(ringpin, sizeof(ringpin), "%s/%u", WVV_PIN_RING_DIR, i);
		err = pin_fd(ring_fd, rings, name, ringpin, perms);
		if (err)
			goto cleanup;
		close(ring_fd);
		ring_fd = -1;
	}

	/* Publish: the directory appears complete or not at all. */
	err = pin_dir_publish(tmp, dir);
	if (err) {
		if (err == -EEXIST || err == -ENOTEMPTY) {
			/* Another loader won the race: judge its pins instead. */
			rm_tree(tmp);
			tmp_made = false;
			err = check_existing(o, dir);
			err = err > 0 ? 1 : err ? err : -EAGAIN;
			if (err == -EAGAIN)
				errmsg("%s appeared and vanished while loading: try again", dir);
		} else {
			errmsg("cannot rename %s to %s: %s", tmp, dir, strerror(-err));
		}
		goto cleanup;
	}
	tmp_made = false;

	if (report) {
		memset(&pinfo, 0, sizeof(pinfo));
		bpf_obj_get_info_by_fd(prog_fd, &pinfo, &len);
		printf("writevv: loaded at %s (ABI v%u)\n", dir, WVV_ABI_VERSION);
		printf("  prog   %s id %u, attached to %s\n", pinfo.name, pinfo.id, WVV_PIN_CTL);
		printf("  maps  ");
		for (i = 0; i < ARRAY_SIZE(maps); i++)
			if (!map_info(bpf_map__fd(maps[i]), &minfo))
				printf(" %s id %u%s", map_pins[i], minfo.id, i + 1 < M_NR ? "," : "");
		printf("\n");
		printf("  sizes  %u slots with %u KiB status rings, %u targets\n",
		       o->slots, WVV_RING_BYTES / 1024, o->targets);
	}

cleanup:
	if (ring_fd >= 0)
		close(ring_fd);
	if (tmp_made && rm_tree(tmp))
		errmsg("could not remove %s: remove it by hand", tmp);
	writevv_bpf__destroy(skel);
	return err;
}

/* The accounts of group gid: its listed members and the users whose
 * primary group it is; root is left out (it uses DIR itself). */
static int group_accounts(const struct group *g, uid_t **out)
{
	size_t n = 0, cap = 0, i;
	uid_t *v = NULL;
	struct passwd *pw;
	char **m;

#define ADD_UID(u)                                                      \
	do {                                                            \
		uid_t u_ = (u);                                         \
		for (i = 0; i < n && v[i] != u_; i++)                  \
			;                                               \
		if (u_ != 0 && i == n) {                                \
			if (n == cap) {                                 \
				void *p_ = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v)); \
				if (!p_) {                              \
					free(v);                        \
					return -ENOMEM;                 \
				}                                       \
				v = p_;                                 \
			}                                               \
			v[n++] = u_;                                    \
		}                                                       \
	} while (0)
	for (m = g->gr_mem; m && *m; m++) {
		pw = getpwnam(*m);
		if (pw)
			ADD_UID(pw->pw_uid);
		else
			printf("writevv-loader: warning: member %s of group %s is not a known user: no pins for it\n",
			       *m, g->gr_name);
	}
	setpwent();
	while ((pw = getpwent()))
		if (pw->pw_gid == g->gr_gid)
			ADD_UID(pw->pw_uid);
	endpwent();
#undef ADD_UID
	*out = v;
	return (int)n;
}

/* DIR/u and a tree for each account of the group; existing ones stay. */
static int load_accounts(const struct opts *o, const struct group *g)
{
	struct perms perms = { .account = true, .group = true, .gid = g->gr_gid };
	char udir[PATH_MAX], adir[PATH_MAX], num[16];
	struct stat st;
	uid_t *uids = NULL;
	int n, i, err = 0, made = 0, had = 0;

	if (join(udir, o->dir, WVV_PIN_ACCOUNT_DIR))
		return -ENAMETOOLONG;
	if (lstat(udir, &st)) {
		if (errno != ENOENT) {
			err = -errno;
			errmsg("cannot access %s: %s", udir, strerror(-err));
			return err;
		}
		if (mkdir(udir, 0700)) {
			err = -errno;
			errmsg("cannot create %s: %s", udir, strerror(-err));
			return err;
		}
	} else if (!S_ISDIR(st.st_mode) || st.st_uid != 0) {
		errmsg("%s is not a directory of root's: refusing to use it", udir);
		return -EEXIST;
	}
	err = chown_chmod(udir, 0, g->gr_gid, 0750);
	if (err)
		return err;
	n = group_accounts(g, &uids);
	if (n < 0) {
		errmsg("cannot list the accounts of group %s: %s", g->gr_name, strerror(-n));
		return n;
	}
	if (n == 0)
		printf("writevv-loader: warning: group %s has no accounts but root: no one else gets kernel mode\n",
		       g->gr_name);
	for (i = 0; i < n && err >= 0; i++) {
		snprintf(num, sizeof(num), "%u", (unsigned int)uids[i]);
		if (join(adir, udir, num)) {
			err = -ENAMETOOLONG;
			break;
		}
		perms.uid = uids[i];
		err = load_tree(o, adir, &perms, false);
		if (err == 1) {
			had++;
			err = 0;
		} else if (err == 0) {
			made++;
		}
	}
	if (err >= 0)
		printf("  accounts  %d of group %s, each with its own program and maps under %s/<uid> (%d new, %d there already; %u slots, %u targets, %llu MiB of status rings each)\n",
		       n, g->gr_name, udir, made, had, o->slots, o->targets,
		       (unsigned long long)o->slots * WVV_RING_BYTES >> 20);
	free(uids);
	return err < 0 ? err : 0;
}

static int cmd_load(const struct opts *o)
{
	struct perms perms = { false, 0, false, 0 };
	struct group *g = NULL;
	int err;

	if (!has_privileges(true)) {
		errmsg("load needs root or CAP_BPF+CAP_NET_ADMIN+CAP_PERFMON");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		errmsg("this kernel has no BTF (/sys/kernel/btf/vmlinux missing): it needs CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, NULL) <= 0) {
		errmsg("this kernel cannot run BPF_PROG_TYPE_SK_MSG programs (needs CONFIG_BPF_STREAM_PARSER=y)");
		return -ENOTSUP;
	}
	if (o->group) {
		g = getgrnam(o->group);
		if (!g) {
			errmsg("unknown group '%s'", o->group);
			return -ENOENT;
		}
		perms.group = true;
		perms.gid = g->gr_gid;
	}
	err = prepare_pin_dir(o->dir);
	if (err)
		return err;
	err = load_tree(o, o->dir, &perms, true);
	if (err < 0)
		return err;
	if (!g) {
		if (err == 0)
			printf("  access owner only (dirs 0700, pins 0600)\n");
		return 0;
	}
	/* An earlier load without --group: let the group traverse DIR. */
	err = set_dir_perms(o->dir, true, &perms);
	if (!err)
		err = load_accounts(o, g);
	if (!err) {
		printf("  access %s: root's (pins 0600); %s/%s/<uid>: that account's alone\n",
		       o->dir, o->dir, WVV_PIN_ACCOUNT_DIR);
		check_reachable(o->dir, g->gr_gid, o->group);
	}
	return err;
}

/* ---- unload ------------------------------------------------------------ */

static int unload_tree(const char *dir)
{
	struct bpf_map_info minfo;
	struct bpf_prog_info pinfo;
	__u32 len = sizeof(pinfo), i, evicted = 0;
	bool renamed;
	int err, derr = 0, prog_fd = -1, ctl_fd = -1;

	sweep_stale(dir);
	err = pin_dir_state(dir);
	if (err <= 0) {
		if (!err)
			printf("writevv: not loaded at %s\n", dir);
		return err;
	}
	err = check_tree(dir);
	if (err) {
		if (err != -ENOTEMPTY)
			errmsg("cannot read %s: %s", dir, strerror(-err));
		return err;
	}
	/* Take the program and control map before the pins go. */
	prog_fd = open_pin(dir, WVV_PIN_PROG, true);
	ctl_fd = open_pin(dir, WVV_PIN_CTL, true);
	if (prog_fd == -EACCES || prog_fd == -EPERM || ctl_fd == -EACCES || ctl_fd == -EPERM) {
		err = -EACCES;
		goto cleanup;
	}
	if (ctl_fd >= 0 && map_info(ctl_fd, &minfo))
		minfo.max_entries = 0;

	err = pin_dir_remove(dir, &renamed);
	if (!renamed)
		goto cleanup;
	if (!err)
		printf("writevv: removed the pins at %s\n", dir);

	if (prog_fd < 0 || ctl_fd < 0) {
		printf("writevv-loader: %s was incomplete (no %s), nothing to detach\n", dir,
		       prog_fd < 0 ? WVV_PIN_PROG : WVV_PIN_CTL);
		goto cleanup;
	}
	memset(&pinfo, 0, sizeof(pinfo));
	bpf_obj_get_info_by_fd(prog_fd, &pinfo, &len);
	if (!bpf_prog_detach2(prog_fd, ctl_fd, BPF_SK_MSG_VERDICT)) {
		printf("writevv: detached prog %s id %u from %s\n", pinfo.name, pinfo.id, WVV_PIN_CTL);
	} else if (errno == ENOENT) {
		printf("writevv-loader: prog %s id %u was not attached to %s\n", pinfo.name, pinfo.id,
		       WVV_PIN_CTL);
	} else {
		derr = -errno;
		errmsg("cannot detach the program from %s: %s", WVV_PIN_CTL, strerror(-derr));
		err = err ? err : derr;
	}
	/* A socket already in the sockmap keeps the program it was linked
	 * with: only taking it out of the map stops the program for it. */
	for (derr = 0, i = 0; i < minfo.max_entries; i++) {
		__u64 cookie;

		if (bpf_map_lookup_elem(ctl_fd, &i, &cookie))
			continue;
		if (!bpf_map_delete_elem(ctl_fd, &i))
			evicted++;
		else if (errno != ENOENT && errno != EINVAL && !derr)  /* EINVAL: slot empty */
			derr = -errno;
	}
	if (evicted)
		printf("writevv: took %u control socket%s out of %s: their applications fall back to the userland engine\n",
		       evicted, evicted == 1 ? "" : "s", WVV_PIN_CTL);
	if (derr) {
		errmsg("cannot empty %s: %s", WVV_PIN_CTL, strerror(-derr));
		err = err ? err : derr;
	}

cleanup:
	if (prog_fd >= 0)
		close(prog_fd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	return err;
}

/* Unload every account's tree under DIR/u, then DIR/u itself. */
static int unload_accounts(const char *dir)
{
	char udir[PATH_MAX], adir[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int err = 0, r;
	DIR *d;

	if (join(udir, dir, WVV_PIN_ACCOUNT_DIR))
		return -ENAMETOOLONG;
	if (lstat(udir, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode)) {
		errmsg("%s is not a directory: refusing to touch %s", udir, dir);
		return -ENOTDIR;
	}
	d = opendir(udir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		const char *c = e->d_name;

		while (*c >= '0' && *c <= '9')
			c++;
		if (c == e->d_name || *c)
			continue; /* not <uid>: temporary names are swept by unload_tree */
		if (join(adir, udir, e->d_name)) {
			err = -ENAMETOOLONG;
			continue;
		}
		r = unload_tree(adir);
		if (r && !err)
			err = r;
	}
	closedir(d);
	if (!err && rmdir(udir)) {
		err = -errno;
		errmsg("cannot remove %s: %s", udir, strerror(-err));
	}
	return err;
}

static int cmd_unload(const struct opts *o)
{
	int err;

	if (!has_privileges(false)) {
		errmsg("unload needs root or CAP_BPF+CAP_NET_ADMIN");
		return -EPERM;
	}
	err = unload_accounts(o->dir);
	return err ? err : unload_tree(o->dir);
}

/* ---- command line ------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: writevv-loader load   [--pin-dir DIR] [--group NAME] [--slots N] [--targets N]\n"
		"       writevv-loader unload [--pin-dir DIR]\n"
		"       writevv-loader status [--pin-dir DIR] [--json]\n"
		"\n"
		"Loads, removes or describes the writevv BPF program and its pinned maps\n"
		"(writevv ABI v%u).\n"
		"\n"
		"  --pin-dir DIR  bpffs directory of the pins (default $WRITEVV_PIN_DIR,\n"
		"                 else %s)\n"
		"  --group NAME   load: let group NAME open the pins (dirs 0750, pins 0660);\n"
		"                 default: owner only (0700, 0600)\n"
		"  --slots N      load: concurrent control sockets (default %u, max %u)\n"
		"  --targets N    load: registered target sockets (default %u, max %u)\n"
		"  --json         status: print one JSON object\n"
		"  -v, --verbose  show libbpf's debug output\n"
		"  -h, --help     show this help\n"
		"\n"
		"Exit status: 0 success (status: loaded or not), 1 failure, 2 usage error.\n",
		WVV_ABI_VERSION, WVV_PIN_DIR_DEFAULT, WVV_SLOTS_DEFAULT, SLOTS_MAX,
		WVV_TARGETS_DEFAULT, TARGETS_MAX);
}

static int parse_uint(const char *opt, const char *s, unsigned int max, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || *s == '-' || *s == '+' || errno || v < 1 || v > max) {
		errmsg("%s wants a number from 1 to %u, not '%s'", opt, max, s);
		return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

static int set_dir(struct opts *o, const char *d)
{
	size_t n = strlen(d);
	const char *base;

	while (n > 1 && d[n - 1] == '/')
		n--;
	if (d[0] != '/' || n <= 1) {
		errmsg("the pin directory must be an absolute path below /, not '%s'", d);
		return -EINVAL;
	}
	base = (const char *)memrchr(d, '/', n) + 1;
	if (memchr(base, '.', n - (size_t)(base - d))) {
		errmsg("bpffs does not allow '.' in names: '%.*s'", (int)n, d);
		return -EINVAL;
	}
	if (n + 64 >= sizeof(o->dir)) {  /* room for temporary names */
		errmsg("the pin directory name is too long");
		return -ENAMETOOLONG;
	}
	memcpy(o->dir, d, n);
	o->dir[n] = '\0';
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "group", required_argument, NULL, 'g' },
		{ "slots", required_argument, NULL, 's' },
		{ "targets", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env = secure_getenv("WRITEVV_PIN_DIR");
	const char *dir = env && *env ? env : WVV_PIN_DIR_DEFAULT;
	bool is_load, is_status;
	int c;

	o->slots = WVV_SLOTS_DEFAULT;
	o->targets = WVV_TARGETS_DEFAULT;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'g': o->group = optarg; break;
		case 's':
			if (parse_uint("--slots", optarg, SLOTS_MAX, &o->slots))
				return -EINVAL;
			o->slots_set = true;
			break;
		case 't':
			if (parse_uint("--targets", optarg, TARGETS_MAX, &o->targets))
				return -EINVAL;
			o->targets_set = true;
			break;
		case 'j': o->json = true; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: fputs("Try 'writevv-loader --help'.\n", stderr); return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		errmsg(optind == argc ? "which command: load, unload or status? (--help explains)"
				      : "one command at a time");
		return -EINVAL;
	}
	o->cmd = argv[optind];
	is_load = !strcmp(o->cmd, "load");
	is_status = !strcmp(o->cmd, "status");
	if (!is_load && !is_status && strcmp(o->cmd, "unload")) {
		errmsg("unknown command '%s': load, unload or status", o->cmd);
		return -EINVAL;
	}
	if (!is_load && (o->group || o->slots_set || o->targets_set)) {
		errmsg("--group, --slots and --targets only apply to load");
		return -EINVAL;
	}
	if (!is_status && o->json) {
		errmsg("--json only applies to status");
		return -EINVAL;
	}
	return set_dir(o, dir);
}

int main(int argc, char **argv)
{
	static struct opts o;
	sigset_t block;
	int err;

	if (parse_args(argc, argv, &o))
		return EXIT_USAGE;
	verbose = o.verbose;
	libbpf_set_print(libbpf_print_fn);

	/* Let a load or unload finish its directory work rather than leave
	 * half of it behind; a signal that came meanwhile acts once it is done. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	if (strcmp(o.cmd, "status"))
		sigprocmask(SIG_BLOCK, &block, NULL);

	if (!strcmp(o.cmd, "load"))
		err = cmd_load(&o);
	else if (!strcmp(o.cmd, "unload"))
		err = cmd_unload(&o);
	else
		err = cmd_status(o.dir, o.json);
	fflush(stdout);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	return err ? EXIT_FAIL : EXIT_OK;
}
