/* SPDX-License-Identifier: MIT */
/* Opening the objects the loader pinned: the kernel engine's view of them. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "pins.h"

const char *wvv_pin_dir(void)
{
	/* Not from the environment of a set-id or file-capability program. */
	const char *d = secure_getenv("WRITEVV_PIN_DIR");

	return d && *d ? d : WVV_PIN_DIR_DEFAULT;
}

int wvv_pin_open(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
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

int wvv_pins_open(struct wvv_pins *p, char *why, size_t whylen)
{
	const char *dir = wvv_pin_dir();
	__u32 zero = 0;
	int cfg_fd, err;

	p->ctl_fd = p->targets_fd = p->slot_state_fd = -1;
	cfg_fd = wvv_pin_open(dir, WVV_PIN_CONFIG);
	if (cfg_fd < 0) {
		err = cfg_fd;
		if (err == -ENOENT)
			snprintf(why, whylen, "BPF program not loaded (no %s/%s): run `writevv-loader load`",
				 dir, WVV_PIN_CONFIG);
		else
			snprintf(why, whylen, "cannot open %s/%s: %s", dir, WVV_PIN_CONFIG,
				 strerror(-err));
		return err;
	}
	{
		/* The map's value may be larger than this build's struct. */
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		unsigned char buf[4096];

		memset(&info, 0, sizeof(info));
		memset(buf, 0, sizeof(buf));
		err = bpf_obj_get_info_by_fd(cfg_fd, &info, &len) ? -errno : 0;
		if (!err && (info.value_size > sizeof(buf) || info.value_size < sizeof(__u32)))
			err = -EPROTO;
		if (!err)
			err = bpf_map_lookup_elem(cfg_fd, &zero, buf) ? -errno : 0;
		memcpy(&p->cfg, buf, sizeof(p->cfg));
	}
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
