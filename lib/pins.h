/* SPDX-License-Identifier: MIT */
#ifndef WRITEVV_PINS_H
#define WRITEVV_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include "writevv_frame.h"

struct wvv_pins {
	int ctl_fd;
	int targets_fd;
	int slot_state_fd;
	struct wvv_config cfg;
};

const char *wvv_pin_dir(void);
int wvv_pin_open(const char *dir, const char *name);
/* Open the pinned maps and check the ABI; on failure 'why' says why. */
int wvv_pins_open(struct wvv_pins *p, char *why, size_t whylen);
void wvv_pins_close(struct wvv_pins *p);
/* Do a and b hold the same maps (the pins were not reloaded in between)? */
bool wvv_pins_same(const struct wvv_pins *a, const struct wvv_pins *b);
int wvv_pin_open_ring(unsigned int slot);

#endif
