/* SPDX-License-Identifier: MIT */
/* writevv-relay-loadgen ws: the WebSocket broadcast load client (wsload.c). */
#ifndef WRITEVV_RELAY_WSLOAD_H
#define WRITEVV_RELAY_WSLOAD_H

int wsload_main(int argc, char **argv);

#endif
