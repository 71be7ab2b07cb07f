/* SPDX-License-Identifier: MIT */
/*
 * Opening the objects the loader pinned: the kernel engine's view of them.
 *
 * A `writevv-loader load --group G` gives every account of G its own
 * program and maps under DIR/u/<uid>/, usable by that account alone; a
 * process uses the tree of its effective uid when there is one, else DIR
 * itself (root's, or an owner-only load's). See DESIGN.md, "Isolation".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "pins.h"
#include "pinned_maps.h"

/* Callers hold the engine lock (probe and slot setup), so one buffer does. */
static char pin_dir_buf[PATH_MAX];

/* The load's directory (WRITEVV_PIN_DIR or the default). */
static const char *pin_base(void)
{
	/* secure_getenv: a set-id program must not be pointed at other pins. */
	const char *d = secure_getenv("WRITEVV_PIN_DIR");

	return d && *d ? d : WVV_PIN_DIR_DEFAULT;
}

const char *wvv_pin_dir(void)
{
	const char *d = pin_base();
	struct stat st;

	if (snprintf(pin_dir_buf, sizeof(pin_dir_buf), "%s/%s/%u", d, WVV_PIN_ACCOUNT_DIR,
		     (unsigned int)geteuid()) < (int)sizeof(pin_dir_buf) &&
	    lstat(pin_dir_buf, &st) == 0 && S_ISDIR(st.st_mode))
		return pin_dir_buf;
	snprintf(pin_dir_buf, sizeof(pin_dir_buf), "%s", d);
	return pin_dir_buf;
}

/*
 * Is dir a directory the loader made: no symlink, owned by root or by us,
 * writable by nobody else? Anybody may create names in a 1777 bpffs root;
 * a squatter's directory or symlink there is not a load (0, or -EPERM with
 * the reason in why).
 */
static int pin_dir_trusted(const char *dir, char *why, size_t whylen)
{
	struct stat st;

	if (lstat(dir, &st))
		return errno == ENOENT ? 0 : -errno; /* not loaded: said below */
	if (!S_ISDIR(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & S_IWOTH)) {
		snprintf(why, whylen,
			 "%s is not a writevv pin directory (a %s owned by uid %u, mode %04o): refused",
			 dir, S_ISLNK(st.st_mode) ? "symlink" : S_ISDIR(st.st_mode) ? "directory" : "file",
			 (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int pin_open_flags(const char *dir, const char *name, __u32 file_flags)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = file_flags);
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = bpf_obj_get_opts(path, &opts);
	return fd < 0 ? -errno : fd;
}

int wvv_pin_open(const char *dir, const char *name)
{
	return pin_open_flags(dir, name, 0);
}

void wvv_pins_close(struct wvv_pins *p)
{
	int *fds[] = { &p->ctl_fd, &p->targets_fd, &p->slot_state_fd };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static __u32 map_id(int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	return fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

bool wvv_pins_same(const struct wvv_pins *a, const struct wvv_pins *b)
{
	__u32 id = map_id(a->ctl_fd);

	return id && id == map_id(b->ctl_fd) && map_id(a->targets_fd) == map_id(b->targets_fd) &&
	       map_id(a->slot_state_fd) == map_id(b->slot_state_fd);
}

int wvv_pins_open(struct wvv_pins *p, char *why, size_t whylen)
{
	const char *dir = wvv_pin_dir();
	int cfg_fd, err;

	p->ctl_fd = p->targets_fd = p->slot_state_fd = -1;
	/* the load's directory, and the account's tree in it if that is used */
	err = pin_dir_trusted(pin_base(), why, whylen);
	if (!err && strcmp(dir, pin_base()))
		err = pin_dir_trusted(dir, why, whylen);
	if (err)
		return err;
	/* Read-only: in an account's tree only root may change wvv_config. */
	cfg_fd = pin_open_flags(dir, WVV_PIN_CONFIG, BPF_F_RDONLY);
	if (cfg_fd < 0) {
		err = cfg_fd;
		if (err == -ENOENT)
			snprintf(why, whylen, "BPF program not loaded (no %s/%s): run `writevv-loader load`",
				 dir, WVV_PIN_CONFIG);
		else if (err == -EACCES)
			snprintf(why, whylen, "cannot open %s/%s: %s (no pins for uid %u: `writevv-loader load --group G` makes them for each account of G)",
				 dir, WVV_PIN_CONFIG, strerror(-err), (unsigned int)geteuid());
		else
			snprintf(why, whylen, "cannot open %s/%s: %s", dir, WVV_PIN_CONFIG,
				 strerror(-err));
		return err;
	}
	/* The map's value may be larger than this build's struct. */
	err = wvv_read_config(cfg_fd, &p->cfg);
	close(cfg_fd);
	if (err) {
		snprintf(why, whylen, "cannot read %s/%s: %s", dir, WVV_PIN_CONFIG, strerror(-err));
		return err;
	}
	if (p->cfg.abi_version != WVV_ABI_VERSION) {
		snprintf(why, whylen, "pins at %s are writevv ABI v%u, this library speaks v%u: reload with a matching writevv-loader",
			 dir, p->cfg.abi_version, WVV_ABI_VERSION);
		return -EPROTO;
	}
	p->ctl_fd = wvv_pin_open(dir, WVV_PIN_CTL);
	p->targets_fd = wvv_pin_open(dir, WVV_PIN_TARGETS);
	p->slot_state_fd = wvv_pin_open(dir, WVV_PIN_SLOT_STATE);
	if (p->ctl_fd < 0 || p->targets_fd < 0 || p->slot_state_fd < 0) {
		err = p->ctl_fd < 0 ? p->ctl_fd : p->targets_fd < 0 ? p->targets_fd : p->slot_state_fd;
		snprintf(why, whylen, "incomplete pins at %s: %s", dir, strerror(-err));
		wvv_pins_close(p);
		return err;
	}
	why[0] = '\0';
	return 0;
}

int wvv_pin_open_ring(unsigned int slot)
{
	char name[64];

	snprintf(name, sizeof(name), "%s/%u", WVV_PIN_RING_DIR, slot);
	return wvv_pin_open(wvv_pin_dir(), name);
}
