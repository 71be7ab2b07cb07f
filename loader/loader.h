/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* writevv-loader internals shared by main.c (the commands), env_checks.c,
 * pin_tree.c and status.c; loader.c has the helpers.
 * Functions returning int return 0 (or an fd or count) or -errno; the ones
 * that fail in a way the user must hear about print it themselves. */
#ifndef WRITEVV_LOADER_H
#define WRITEVV_LOADER_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/types.h>

#include "writevv_frame.h"

#define BPFFS_ROOT "/sys/fs/bpf"
#define STALE_AGE_SEC 60   /* leftovers of a dead loader older than this go */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Indexes into map_pins[]. */
enum { M_CTL, M_TARGETS, M_RINGS, M_SLOT_STATE, M_STATS, M_CONFIG, M_NR };
extern const char *const map_pins[M_NR];

void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* buf (PATH_MAX bytes) = dir/name, or -ENAMETOOLONG. */
int join(char *buf, const char *dir, const char *name);

/* Effective CAP_BPF (or CAP_SYS_ADMIN) + CAP_NET_ADMIN [+ CAP_PERFMON]. */
bool has_privileges(bool need_perfmon);
/* dir's parent is on bpffs, mounting /sys/fs/bpf (mode 0755) if it is not. */
int ensure_bpffs(const char *dir);
/* The pin tree (pin_tree.c): every step through descriptors, never following a
 * symlink, touching only what a loader made. All report their failures. */
/* dir's parent is on bpffs (mounting /sys/fs/bpf mode 0755 if needed), can
 * be reached without symlinks and nobody else can rename entries in it. */
int prepare_pin_dir(const char *dir);
/* 0 nothing at dir (or an entry another user made, reported), 1 a directory
 * this loader made, <0 refused. */
int pin_dir_state(const char *dir);
/* -ENOTEMPTY if dir holds anything but the pins a loader makes. */
int check_tree(const char *dir);
/* mkdir dir-tmp-<pid>-<random> (0700); path gets its name (PATH_MAX). */
int make_temp_dir(const char *dir, char *path);
/* Rename tmp to dir. -EEXIST: a loader's directory is there already; an
 * entry another user made is swapped out and kept under a new name. */
int pin_dir_publish(const char *tmp, const char *dir);
/* Rename dir aside (*renamed) and remove its pins and itself. */
int pin_dir_remove(const char *dir, bool *renamed);
/* Remove a directory this loader made and the pins in it. */
int rm_tree(const char *dir);
/* Remove dir-tmp-<pid>[-<random>] / dir-unload-... left by a dead loader. */
void sweep_stale(const char *dir);

/* bpf_obj_get(dir/name), reporting permission and other errors. */
int open_pin(const char *dir, const char *name, bool quiet_enoent);
/* The map's info, or -errno. */
int map_info(int fd, struct bpf_map_info *info);
/* Occupied slots of a sockmap or map-in-map array of max entries. */
int count_present(int fd, __u32 max);

/* status command: 0, or -errno once reported. */
int cmd_status(const char *dir, bool json);

#endif
