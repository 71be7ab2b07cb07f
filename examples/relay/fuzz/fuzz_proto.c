/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target of the relay's attacker-facing parsers (http.c, ws.c):
 * the request head, the handshake key, chunked bodies and WebSocket client
 * frames, fed in pieces as the network would.  Byte 0 picks the parser
 * (bits 0-1: 0 HTTP, 1 chunked, 2 WebSocket, 3 all three on the same bytes;
 * bit 2: permessage-deflate negotiated), byte 1 the piece size (0: all at
 * once).  Invariants are checked with abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../http.h"
#include "../ws.h"

#define WS_MAX 4096

static void fuzz_http(const uint8_t *d, size_t n)
{
	static struct http_req req;
	char accept[29];
	size_t end, first;

	if (n > HTTP_MAX_HEADER)
		n = HTTP_MAX_HEADER;
	end = http_header_end((const char *)d, n);
	first = http_first_line_len((const char *)d, n);
	if (end > n || first > n)
		abort();
	if (!end)
		return;
	if (http_parse((const char *)d, end, &req) == 0) {
		if (req.path[0] != '/' || strlen(req.path) >= sizeof(req.path) ||
		    strlen(req.ws_key) >= sizeof(req.ws_key))
			abort();
		if (ws_accept_key(req.ws_key, accept) == 0 && strlen(accept) != 28)
			abort();
		(void)http_topic_valid(req.path + 1, strlen(req.path + 1));
	}
}

static void fuzz_chunked(const uint8_t *d, size_t n, size_t piece)
{
	struct http_chunked c;
	size_t off = 0, body = 0;

	memset(&c, 0, sizeof(c));
	while (off < n) {
		size_t len = piece && n - off > piece ? piece : n - off;
		size_t pos = 0;

		while (pos < len) {
			size_t used, doff, dlen;
			int k = http_chunked_next(&c, d + off + pos, len - pos, &used, &doff, &dlen);

			if (used > len - pos || (k == HTTP_CHUNK_DATA && doff + dlen > used))
				abort();
			if (k == HTTP_CHUNK_MORE && used != len - pos)
				abort(); /* MORE means all of it was consumed */
			body += k == HTTP_CHUNK_DATA ? dlen : 0;
			pos += used;
			if (k == HTTP_CHUNK_ERROR || k == HTTP_CHUNK_END)
				return;
			if (k == HTTP_CHUNK_DATA && used == 0 && dlen == 0)
				abort(); /* no progress */
		}
		off += len;
	}
	if (body > n)
		abort();
}

static void fuzz_ws(const uint8_t *d, size_t n, size_t piece, bool deflate)
{
	struct ws_parser p;
	size_t off = 0;

	ws_parser_init(&p, WS_MAX);
	if (deflate && ws_parser_enable_deflate(&p) < 0)
		abort();
	while (off < n) {
		size_t len = piece && n - off > piece ? piece : n - off;
		size_t pos = 0;

		while (pos < len) {
			struct ws_event ev;
			size_t used;

			ws_parse(&p, d + off + pos, len - pos, &used, &ev);
			if (used > len - pos)
				abort();
			pos += used;
			switch (ev.kind) {
			case WS_EV_MORE:
				if (pos != len)
					abort();
				break;
			case WS_EV_TEXT:
				if (!ws_utf8_valid(ev.data, ev.len))
					abort();
				/* fall through */
			case WS_EV_BINARY:
				if (ev.len > WS_MAX)
					abort();
				break;
			case WS_EV_PING:
			case WS_EV_PONG:
				if (ev.len > 125)
					abort();
				break;
			case WS_EV_CLOSE:
			case WS_EV_ERROR:
				if (ev.kind == WS_EV_ERROR && ev.code != WS_CLOSE_PROTOCOL &&
				    ev.code != WS_CLOSE_INVALID_DATA && ev.code != WS_CLOSE_TOO_BIG &&
				    ev.code != WS_CLOSE_INTERNAL)
					abort();
				ws_parser_free(&p);
				return;
			}
			if (ev.kind == WS_EV_MORE)
				break;
		}
		off += len;
	}
	ws_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t piece;
	int which, flags;

	if (size < 2)
		return 0;
	flags = data[0];
	which = flags & 3;
	piece = data[1];
	data += 2;
	size -= 2;
	if (which == 0 || which == 3)
		fuzz_http(data, size);
	if (which == 1 || which == 3)
		fuzz_chunked(data, size, piece);
	if (which == 2 || which == 3)
		fuzz_ws(data, size, piece, (flags & 4) != 0);
	return 0;
}
