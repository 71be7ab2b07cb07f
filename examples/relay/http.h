/* SPDX-License-Identifier: MIT */
/*
 * The relay's HTTP/1.x request parser and chunked-body decoder.  Pure code:
 * no I/O, no allocation; every input is bounded by the caller's buffer
 * (this module and ws.c are what the fuzz target exercises).
 */
#ifndef WRITEVV_RELAY_HTTP_H
#define WRITEVV_RELAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADER 8192  /* whole request head; more -> 431 */
#define HTTP_MAX_LINE   4096  /* request line; more -> 414 */

struct http_req {
	char method[16];
	char target[HTTP_MAX_LINE];
	char path[HTTP_MAX_LINE];
	int minor;
	/* The header fields the relay acts on (others are only syntax-checked). */
	bool conn_close;          /* Connection: close */
	bool conn_upgrade;        /* Connection: ... upgrade ... */
	bool upgrade_websocket;   /* Upgrade: websocket */
	int ws_version;           /* Sec-WebSocket-Version, -1 if absent */
	char ws_key[64];          /* Sec-WebSocket-Key, "" if absent or too long */
	bool ws_deflate_offer;    /* an acceptable permessage-deflate offer (RFC 7692) */
	int64_t content_length;   /* -1 if absent */
	bool chunked;             /* Transfer-Encoding: chunked */
	bool te_unsupported;      /* another transfer coding -> 501 */
	bool expect_continue;     /* Expect: 100-continue */
	char content_type[128];
	bool has_last_event_id;
	uint64_t last_event_id;
};

size_t http_header_end(const char *buf, size_t len);
size_t http_first_line_len(const char *buf, size_t len);
int http_parse(const char *buf, size_t len, struct http_req *req);
const char *http_reason(int status);
/* Topic names: [A-Za-z0-9._-]{1,128}. */
#define TOPIC_MAX 128
bool http_topic_valid(const char *s, size_t len);

/*
 * Chunked transfer coding (RFC 9112 7.1), incrementally.  Chunk extensions
 * and trailer fields are skipped (each line bounded), sizes are bounded.
 */
struct http_chunked {
	int state;
	uint64_t left;       /* data bytes left in the current chunk */
	unsigned digits;     /* hex digits of the size line */
	size_t line;         /* bytes of the current extension/trailer line */
	size_t trailer;      /* trailer bytes so far */
};

enum { HTTP_CHUNK_MORE = 0, HTTP_CHUNK_DATA = 1, HTTP_CHUNK_END = 2, HTTP_CHUNK_ERROR = -1 };

/*
 * Decode from in[0..len): consumes *used bytes.  Returns HTTP_CHUNK_DATA with
 * in[*data_off .. *data_off + *data_len) being body bytes, HTTP_CHUNK_END at
 * the end of the body (trailers read), HTTP_CHUNK_MORE when all of the input
 * was consumed without data, or HTTP_CHUNK_ERROR on a syntax error.  Call it
 * again with the rest of the input after DATA.
 */
int http_chunked_next(struct http_chunked *c, const unsigned char *in, size_t len,
		      size_t *used, size_t *data_off, size_t *data_len);

#endif
