/* SPDX-License-Identifier: MIT */
typedef int wvv_registry_placeholder;
