/* SPDX-License-Identifier: MIT */
#ifndef WRITEVV_RELAY_HTTP_H
#define WRITEVV_RELAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADER 8192  /* whole request head; more -> 431 */
#define HTTP_MAX_LINE   4096  /* request line; more -> 414 */

struct http_req {
	char method[16];
	char target[HTTP_MAX_LINE];
	char path[HTTP_MAX_LINE];
	int minor;
};

size_t http_header_end(const char *buf, size_t len);
size_t http_first_line_len(const char *buf, size_t len);
int http_parse(const char *buf, size_t len, struct http_req *req);
const char *http_reason(int status);

#endif
