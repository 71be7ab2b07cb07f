/* SPDX-License-Identifier: MIT */
typedef int wvv_pins_placeholder;
