/* SPDX-License-Identifier: MIT */
/* Unit tests of the relay's parsers: http.c (request head, chunked bodies,
 * topic names) and ws.c (handshake key, frame headers, UTF-8, client frames). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"
#include "ws.h"

static struct http_req req;

static int parse(const char *s)
{
	return http_parse(s, strlen(s), &req);
}

static void test_http_fields(void **state)
{
	(void)state;
	assert_int_equal(parse("GET /ws/a HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
			       "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
			       "Sec-WebSocket-Key:  dGhlIHNhbXBsZSBub25jZQ==  \r\n\r\n"), 0);
	assert_string_equal(req.path, "/ws/a");
	assert_true(req.upgrade_websocket);
	assert_true(req.conn_upgrade);
	assert_false(req.conn_close);
	assert_int_equal(req.ws_version, 13);
	assert_string_equal(req.ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
	assert_int_equal(req.content_length, -1);

	assert_int_equal(parse("POST /pub/t?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n"
			       "Content-Type: text/plain\r\nConnection: close\r\n"
			       "Last-Event-ID: 77\r\n\r\n"), 0);
	assert_string_equal(req.path, "/pub/t");
	assert_int_equal(req.content_length, 12);
	assert_string_equal(req.content_type, "text/plain");
	assert_true(req.conn_close);
	assert_true(req.has_last_event_id);
	assert_int_equal(req.last_event_id, 77);
}

static void test_http_rejects(void **state)
{
	(void)state;
	/* both framings: a smuggling attempt */
	assert_int_equal(parse("POST /pub/t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n"), 400);
	assert_int_equal(parse("POST /pub/t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			       "Content-Length: 4\r\n\r\n"), 400);
	assert_int_equal(parse("POST /pub/t HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400);
	assert_int_equal(parse("POST /pub/t HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"), 400);
	assert_int_equal(parse("POST /pub/t HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n"), 417);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nX: a\001b\r\n\r\n"), 400);
	{
		/* A NUL in the target does not cut the path short (/ws/a\0x is not /ws/a). */
		static const char nul[] = "GET /ws/a\0x HTTP/1.1\r\nHost: x\r\n\r\n";

		assert_int_equal(http_parse(nul, sizeof(nul) - 1, &req), 400);
	}
	assert_int_equal(parse("POST /pub/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), 0);
	assert_true(req.te_unsupported);
}

static void test_topic_names(void **state)
{
	char longname[130];

	(void)state;
	assert_true(http_topic_valid("a", 1));
	assert_true(http_topic_valid("A.b_c-9", 7));
	assert_false(http_topic_valid("", 0));
	assert_false(http_topic_valid("a/b", 3));
	assert_false(http_topic_valid("a%20", 4));
	memset(longname, 'x', sizeof(longname));
	assert_true(http_topic_valid(longname, 128));
	assert_false(http_topic_valid(longname, 129));
}

/* Decode all of s in pieces of 'piece' bytes; returns the body or NULL on error. */
static char *dechunk(const char *s, size_t piece, int *end)
{
	struct http_chunked c;
	static char body[256];
	size_t n = strlen(s), off = 0, bl = 0;

	memset(&c, 0, sizeof(c));
	*end = 0;
	while (off < n) {
		size_t len = n - off < piece ? n - off : piece, pos = 0;

		while (pos < len) {
			size_t used, doff, dlen;
			int k = http_chunked_next(&c, (const unsigned char *)s + off + pos, len - pos,
						  &used, &doff, &dlen);

			if (k == HTTP_CHUNK_ERROR)
				return NULL;
			if (k == HTTP_CHUNK_DATA) {
				memcpy(body + bl, s + off + pos + doff, dlen);
				bl += dlen;
			}
			pos += used;
			if (k == HTTP_CHUNK_END) {
				*end = 1;
				body[bl] = 0;
				return body;
			}
		}
		off += len;
	}
	body[bl] = 0;
	return body;
}

static void test_chunked(void **state)
{
	const char *ok = "5\r\nhello\r\nA;name=val\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
	int end;

	(void)state;
	for (size_t piece = 1; piece < 64; piece++) {
		char *b = dechunk(ok, piece, &end);

		assert_non_null(b);
		assert_string_equal(b, "hello0123456789");
		assert_int_equal(end, 1);
	}
	assert_string_equal(dechunk("3\nabc\n0\n\n", 2, &end), "abc");
	assert_int_equal(end, 1);
	assert_null(dechunk("x\r\n", 5, &end));                 /* not hex */
	assert_null(dechunk("3\r\nabcX", 5, &end));             /* no CRLF after data */
	assert_null(dechunk("1000000000000000\r\n", 64, &end)); /* size too big */
	assert_non_null(dechunk("5\r\nhel", 3, &end));          /* incomplete: no end */
	assert_int_equal(end, 0);
}

static void test_accept_key(void **state)
{
	char out[29];

	(void)state;
	/* the example of RFC 6455 1.3 */
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_accept_key("c2hvcnQ=", out), -1);   /* 5 bytes */
	assert_int_equal(ws_accept_key("", out), -1);
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=!", out), -1);
}

static void test_frame_header(void **state)
{
	unsigned char h[WS_MAX_HEADER];

	(void)state;
	assert_int_equal(ws_frame_header(h, WS_OP_TEXT, true, 125), 2);
	assert_int_equal(h[0], 0x81);
	assert_int_equal(h[1], 125);
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 126), 4);
	assert_int_equal(h[1], 126);
	assert_int_equal(h[2] << 8 | h[3], 126);
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, false, 65536), 10);
	assert_int_equal(h[0], 0x02);
	assert_int_equal(h[1], 127);
	assert_int_equal(h[7], 1);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(ws_utf8_valid((const unsigned char *)"", 0));
	assert_true(ws_utf8_valid((const unsigned char *)"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	assert_false(ws_utf8_valid((const unsigned char *)"\xc0\xaf", 2));     /* overlong */
	assert_false(ws_utf8_valid((const unsigned char *)"\xe0\x80\xaf", 3)); /* overlong */
	assert_false(ws_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3)); /* surrogate */
	assert_false(ws_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(ws_utf8_valid((const unsigned char *)"\xe2\x82", 2));     /* truncated */
	assert_false(ws_utf8_valid((const unsigned char *)"\xff", 1));
}

static size_t mkframe(unsigned char *out, int b0, const char *payload, size_t n)
{
	static const unsigned char key[4] = { 1, 2, 3, 4 };
	size_t h = 0;

	out[h++] = (unsigned char)b0;
	if (n < 126) {
		out[h++] = (unsigned char)(0x80 | n);
	} else {
		out[h++] = 0x80 | 126;
		out[h++] = (unsigned char)(n >> 8);
		out[h++] = (unsigned char)n;
	}
	memcpy(out + h, key, 4);
	h += 4;
	for (size_t i = 0; i < n; i++)
		out[h + i] = (unsigned char)payload[i] ^ key[i & 3];
	return h + n;
}

static void test_ws_parser(void **state)
{
	unsigned char in[512];
	size_t n = 0, off = 0, used;
	struct ws_parser p;
	struct ws_event ev;
	int kinds[8], nk = 0;

	(void)state;
	/* fragmented text with a ping inside, fed one byte at a time */
	n += mkframe(in + n, 0x01, "frag", 4);
	n += mkframe(in + n, 0x89, "pi", 2);
	n += mkframe(in + n, 0x80, "ment", 4);
	n += mkframe(in + n, 0x82, "\0\1", 2);
	n += mkframe(in + n, 0x88, "\x03\xe8" "bye", 5);
	ws_parser_init(&p, 100);
	while (off < n && nk < 8) {
		ws_parse(&p, in + off, 1, &used, &ev);
		off += used;
		if (ev.kind == WS_EV_MORE)
			continue;
		kinds[nk++] = ev.kind;
		if (ev.kind == WS_EV_PING)
			assert_memory_equal(ev.data, "pi", 2);
		if (ev.kind == WS_EV_TEXT) {
			assert_int_equal(ev.len, 8);
			assert_memory_equal(ev.data, "fragment", 8);
		}
		if (ev.kind == WS_EV_CLOSE) {
			assert_int_equal(ev.code, 1000);
			assert_int_equal(ev.len, 3);
		}
	}
	assert_int_equal(nk, 4);
	assert_int_equal(kinds[0], WS_EV_PING);
	assert_int_equal(kinds[1], WS_EV_TEXT);
	assert_int_equal(kinds[2], WS_EV_BINARY);
	assert_int_equal(kinds[3], WS_EV_CLOSE);
	ws_parser_free(&p);

	/* errors and their codes */
	{
		static const struct { int b0; const char *pl; size_t n; unsigned code; } bad[] = {
			{ 0x83, "x", 1, WS_CLOSE_PROTOCOL },      /* reserved opcode */
			{ 0xc1, "x", 1, WS_CLOSE_PROTOCOL },      /* RSV1 */
			{ 0x09, "x", 1, WS_CLOSE_PROTOCOL },      /* fragmented ping */
			{ 0x80, "x", 1, WS_CLOSE_PROTOCOL },      /* stray continuation */
			{ 0x81, "\xff", 1, WS_CLOSE_INVALID_DATA },
			{ 0x88, "\x03", 1, WS_CLOSE_PROTOCOL },   /* 1-byte close */
			{ 0x88, "\x03\xed", 2, WS_CLOSE_PROTOCOL }, /* code 1005 */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			n = mkframe(in, bad[i].b0, bad[i].pl, bad[i].n);
			ws_parser_init(&p, 100);
			ws_parse(&p, in, n, &used, &ev);
			assert_int_equal(ev.kind, WS_EV_ERROR);
			assert_int_equal(ev.code, bad[i].code);
			ws_parser_free(&p);
		}
	}
	/* over max_message: 1009; unmasked: 1002 */
	{
		char big[200];

		memset(big, 'a', sizeof(big));
		n = mkframe(in, 0x82, big, sizeof(big));
		ws_parser_init(&p, 100);
		ws_parse(&p, in, n, &used, &ev);
		assert_int_equal(ev.kind, WS_EV_ERROR);
		assert_int_equal(ev.code, WS_CLOSE_TOO_BIG);
		ws_parser_free(&p);
		in[0] = 0x81;
		in[1] = 1;
		in[2] = 'x';
		ws_parser_init(&p, 100);
		ws_parse(&p, in, 3, &used, &ev);
		assert_int_equal(ev.kind, WS_EV_ERROR);
		assert_int_equal(ev.code, WS_CLOSE_PROTOCOL);
		ws_parser_free(&p);
	}
}

static void test_deflate_roundtrip(void **state)
{
	static unsigned char text[20000], in[30000];
	unsigned char *z;
	struct ws_parser p;
	struct ws_event ev;
	size_t used, n;
	long zl;

	(void)state;
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (unsigned char)('a' + i % 7);
	zl = ws_deflate_message(text, sizeof(text), &z);
	assert_true(zl > 0 && (size_t)zl < sizeof(text) / 10);
	/* as a client would send it: masked, RSV1 */
	n = mkframe(in, 0xc1, (const char *)z, (size_t)zl);
	ws_parser_init(&p, sizeof(text));
	assert_int_equal(ws_parser_enable_deflate(&p), 0);
	ws_parse(&p, in, n, &used, &ev);
	assert_int_equal(ev.kind, WS_EV_TEXT);
	assert_int_equal(ev.len, sizeof(text));
	assert_memory_equal(ev.data, text, sizeof(text));
	/* the same message once more: no context is kept between messages */
	ws_parse(&p, in, n, &used, &ev);
	assert_int_equal(ev.kind, WS_EV_TEXT);
	assert_int_equal(ev.len, sizeof(text));
	ws_parser_free(&p);
	/* one byte under what it inflates to: 1009 */
	ws_parser_init(&p, sizeof(text) - 1);
	assert_int_equal(ws_parser_enable_deflate(&p), 0);
	ws_parse(&p, in, n, &used, &ev);
	assert_int_equal(ev.kind, WS_EV_ERROR);
	assert_int_equal(ev.code, WS_CLOSE_TOO_BIG);
	ws_parser_free(&p);
	/* RSV1 without the extension: 1002 */
	ws_parser_init(&p, sizeof(text));
	ws_parse(&p, in, n, &used, &ev);
	assert_int_equal(ev.kind, WS_EV_ERROR);
	assert_int_equal(ev.code, WS_CLOSE_PROTOCOL);
	ws_parser_free(&p);
	free(z);
	ws_deflate_cleanup();
}

static void test_deflate_offers(void **state)
{
	(void)state;
	assert_int_equal(parse("GET /ws/a HTTP/1.1\r\nHost: x\r\n"
			       "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"), 0);
	assert_true(req.ws_deflate_offer);
	assert_int_equal(parse("GET /ws/a HTTP/1.1\r\nHost: x\r\n"
			       "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10, "
			       "permessage-deflate; server_max_window_bits=\"15\"\r\n\r\n"), 0);
	assert_true(req.ws_deflate_offer); /* the second offer */
	assert_int_equal(parse("GET /ws/a HTTP/1.1\r\nHost: x\r\n"
			       "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n\r\n"), 0);
	assert_false(req.ws_deflate_offer);
	assert_int_equal(parse("GET /ws/a HTTP/1.1\r\nHost: x\r\n"
			       "Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; foo\r\n\r\n"), 0);
	assert_false(req.ws_deflate_offer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_fields),
		cmocka_unit_test(test_http_rejects),
		cmocka_unit_test(test_topic_names),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_accept_key),
		cmocka_unit_test(test_frame_header),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_ws_parser),
		cmocka_unit_test(test_deflate_roundtrip),
		cmocka_unit_test(test_deflate_offers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
