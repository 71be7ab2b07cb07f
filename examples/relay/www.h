/* SPDX-License-Identifier: MIT */
/*
 * The relay's pages (/watch/TOPIC, /messages/TOPIC, /dashboard) and the
 * files they load, served from a data directory (--www).  Only the files of
 * a fixed allow-list are ever opened, by names of this module's own: no part
 * of a request path reaches the file system.
 */
#ifndef WRITEVV_RELAY_WWW_H
#define WRITEVV_RELAY_WWW_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* Picks the data directory (dir, or the default when NULL) and logs which
 * of its files are missing. */
void www_init(const char *dir);

struct www_reply {
	char *buf;      /* the whole response, head and body (malloc'd), or NULL: out of memory */
	size_t len;
	int status;
};

/* false: not a path of the pages (the caller answers it).  true: *r holds
 * the response to send. */
bool www_respond(const struct http_req *req, bool head_only, struct www_reply *r);

#endif
