/* SPDX-License-Identifier: MIT */
/* RFC 6455 server-side framing for the relay (see ws.h). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ws.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_accept_key(const char *key, char out[29])
{
	unsigned char raw[18], digest[SHA_DIGEST_LENGTH];
	unsigned char buf[64 + sizeof(ws_guid)];
	size_t kl = strlen(key);

	/* 16 bytes in base64 are 24 characters ending in "==" */
	if (kl != 24 || key[22] != '=' || key[23] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
		return -1;
	memcpy(buf, key, kl);
	memcpy(buf + kl, ws_guid, sizeof(ws_guid) - 1);
	SHA1(buf, kl + sizeof(ws_guid) - 1, digest);
	if (EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH) != 28)
		return -1;
	out[28] = 0;
	return 0;
}

size_t ws_frame_header(unsigned char out[WS_MAX_HEADER], int opcode, bool fin, uint64_t len)
{
	out[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}

/* UTF-8 as RFC 3629 defines it: no overlongs, no surrogates, <= U+10FFFF. */
bool ws_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += n + 1;
	}
	return true;
}

bool ws_close_code_valid(unsigned code)
{
	if (code >= 3000 && code <= 4999)
		return true;
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
}

void ws_parser_init(struct ws_parser *p, size_t max_message)
{
	memset(p, 0, sizeof(*p));
	p->max_message = max_message;
}

int ws_parser_enable_deflate(struct ws_parser *p)
{
	z_stream *z = calloc(1, sizeof(*z));

	if (!z)
		return -1;
	if (inflateInit2(z, -15) != Z_OK) {
		free(z);
		return -1;
	}
	p->inflater = z;
	return 0;
}

void ws_parser_free(struct ws_parser *p)
{
	free(p->msg);
	p->msg = NULL;
	p->msg_cap = p->msg_len = 0;
	if (p->inflater) {
		inflateEnd(p->inflater);
		free(p->inflater);
		p->inflater = NULL;
	}
	free(p->plain);
	p->plain = NULL;
	p->plain_cap = 0;
}

/*
 * Inflate the message in p->msg (with the 00 00 ff ff the sender removed)
 * into p->plain, never beyond max_message.  Returns its length, or -1 when
 * too big, -2 when not valid deflate data.
 */
static long inflate_message(struct ws_parser *p)
{
	static const unsigned char tail[4] = { 0, 0, 0xff, 0xff };
	z_stream *z = p->inflater;
	size_t produced;

	if (!p->plain) {
		p->plain_cap = p->max_message + 1; /* one more: "over the bound" */
		p->plain = malloc(p->plain_cap);
		if (!p->plain)
			return -1;
	}
	inflateReset(z); /* client_no_context_takeover */
	z->next_out = p->plain;
	z->avail_out = (uInt)p->plain_cap;
	for (int part = 0; part < 2; part++) {
		z->next_in = part ? (unsigned char *)tail : p->msg;
		z->avail_in = part ? 4 : (uInt)p->msg_len;
		while (z->avail_in) {
			int rc;

			if (z->avail_out == 0)
				return -1;
			rc = inflate(z, Z_SYNC_FLUSH);
			if (rc == Z_STREAM_END)
				goto done; /* a final block: what follows is not data */
			if (rc != Z_OK)
				return -2; /* bad data, or no progress possible */
		}
	}
done:
	produced = p->plain_cap - z->avail_out;
	return produced > p->max_message ? -1 : (long)produced;
}

static z_stream deflater;   /* one for the process, reset for each message */
static bool deflater_ready;

void ws_deflate_cleanup(void)
{
	if (deflater_ready)
		deflateEnd(&deflater);
	deflater_ready = false;
}

long ws_deflate_message(const unsigned char *in, size_t len, unsigned char **out)
{
	z_stream *zs = &deflater;
	unsigned char *buf;
	size_t cap;

	if (!deflater_ready) {
		if (deflateInit2(zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		deflater_ready = true;
	}
	deflateReset(zs); /* server_no_context_takeover: every message alone */
	cap = deflateBound(zs, (uLong)len) + 16;
	buf = malloc(cap);
	if (!buf)
		return -1;
	zs->next_in = (unsigned char *)in;
	zs->avail_in = (uInt)len;
	zs->next_out = buf;
	zs->avail_out = (uInt)cap;
	if (deflate(zs, Z_SYNC_FLUSH) != Z_OK || zs->avail_in != 0 || cap - zs->avail_out < 4) {
		free(buf);
		return -1;
	}
	*out = buf;
	return (long)(cap - zs->avail_out - 4); /* without 00 00 ff ff */
}

static void fail(struct ws_parser *p, struct ws_event *ev, unsigned code)
{
	p->failed = true;
	ev->kind = WS_EV_ERROR;
	ev->code = code;
}

/* Room for 'more' message bytes, growing by doubling up to max_message. */
static int msg_reserve(struct ws_parser *p, uint64_t more)
{
	size_t need, cap;
	unsigned char *m;

	if (more > p->max_message - p->msg_len)
		return -1;
	need = p->msg_len + (size_t)more;
	if (need <= p->msg_cap)
		return 0;
	cap = p->msg_cap ? p->msg_cap : (p->max_message < 4096 ? p->max_message : 4096);
	while (cap < need)
		cap = cap > p->max_message / 2 ? p->max_message : cap * 2;
	m = realloc(p->msg, cap);
	if (!m)
		return -2;
	p->msg = m;
	p->msg_cap = cap;
	return 0;
}

/* The header in p->hdr is complete: check it. Returns 0 or a close code. */
static unsigned header_done(struct ws_parser *p)
{
	unsigned char b0 = p->hdr[0], b1 = p->hdr[1];
	unsigned plen = b1 & 0x7f, off = 2;

	p->fin = b0 & 0x80;
	p->opcode = b0 & 0x0f;
	/* RSV2/3: no extension uses them; RSV1 only on the first frame of a
	 * data message with permessage-deflate */
	if ((b0 & 0x30) || ((b0 & 0x40) && (!p->inflater ||
					      (p->opcode != WS_OP_TEXT && p->opcode != WS_OP_BINARY))))
		return WS_CLOSE_PROTOCOL;
	if (!(b1 & 0x80))
		return WS_CLOSE_PROTOCOL; /* a client frame must be masked */
	if (plen == 126) {
		p->payload_len = (uint64_t)p->hdr[2] << 8 | p->hdr[3];
		off = 4;
	} else if (plen == 127) {
		p->payload_len = 0;
		for (int i = 0; i < 8; i++)
			p->payload_len = p->payload_len << 8 | p->hdr[2 + i];
		if (p->payload_len >> 63)
			return WS_CLOSE_PROTOCOL;
		off = 10;
	} else {
		p->payload_len = plen;
	}
	memcpy(p->mask, p->hdr + off, 4);
	p->payload_done = 0;
	switch (p->opcode) {
	case WS_OP_CLOSE: case WS_OP_PING: case WS_OP_PONG:
		if (!p->fin || p->payload_len > 125)
			return WS_CLOSE_PROTOCOL;
		return 0;
	case WS_OP_TEXT: case WS_OP_BINARY:
		if (p->msg_opcode)
			return WS_CLOSE_PROTOCOL; /* a new message inside a fragmented one */
		p->msg_opcode = p->opcode;
		p->msg_compressed = (b0 & 0x40) != 0;
		p->msg_len = 0;
		break;
	case WS_OP_CONT:
		if (!p->msg_opcode)
			return WS_CLOSE_PROTOCOL;
		break;
	default:
		return WS_CLOSE_PROTOCOL; /* reserved opcode */
	}
	if (p->payload_len > p->max_message - p->msg_len)
		return WS_CLOSE_TOO_BIG;
	if (msg_reserve(p, p->payload_len) < 0)
		return WS_CLOSE_INTERNAL;
	return 0;
}

static unsigned header_size(const unsigned char *hdr, unsigned have)
{
	unsigned plen;

	if (have < 2)
		return 2;
	plen = hdr[1] & 0x7f;
	return 2 + (plen == 126 ? 2 : plen == 127 ? 8 : 0) + ((hdr[1] & 0x80) ? 4 : 0);
}

/* A whole frame's payload is in: produce its event, if it makes one. */
static bool frame_done(struct ws_parser *p, struct ws_event *ev)
{
	p->in_payload = false;
	p->hdr_len = 0;
	switch (p->opcode) {
	case WS_OP_PING:
	case WS_OP_PONG:
		ev->kind = p->opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
		ev->data = p->ctl;
		ev->len = (size_t)p->payload_len;
		return true;
	case WS_OP_CLOSE:
		if (p->payload_len == 1) {
			fail(p, ev, WS_CLOSE_PROTOCOL);
			return true;
		}
		ev->kind = WS_EV_CLOSE;
		ev->code = WS_CLOSE_NO_STATUS;
		ev->data = p->ctl + 2;
		ev->len = 0;
		if (p->payload_len >= 2) {
			ev->code = (unsigned)p->ctl[0] << 8 | p->ctl[1];
			ev->len = (size_t)p->payload_len - 2;
			if (!ws_close_code_valid(ev->code)) {
				fail(p, ev, WS_CLOSE_PROTOCOL);
				return true;
			}
			if (!ws_utf8_valid(ev->data, ev->len)) {
				fail(p, ev, WS_CLOSE_INVALID_DATA);
				return true;
			}
		}
		p->failed = true; /* nothing may follow a close */
		return true;
	default: {
		const unsigned char *data = p->msg;
		size_t len = p->msg_len;

		if (!p->fin)
			return false;
		if (p->msg_compressed) {
			long n = inflate_message(p);

			if (n < 0) {
				fail(p, ev, n == -1 ? WS_CLOSE_TOO_BIG : WS_CLOSE_INVALID_DATA);
				return true;
			}
			data = p->plain;
			len = (size_t)n;
		}
		if (p->msg_opcode == WS_OP_TEXT && !ws_utf8_valid(data, len)) {
			fail(p, ev, WS_CLOSE_INVALID_DATA);
			return true;
		}
		ev->kind = p->msg_opcode == WS_OP_TEXT ? WS_EV_TEXT : WS_EV_BINARY;
		ev->data = data;
		ev->len = len;
		p->msg_opcode = 0;
		return true;
	}
	}
}

void ws_parse(struct ws_parser *p, const unsigned char *in, size_t len, size_t *used,
	      struct ws_event *ev)
{
	size_t i = 0;

	memset(ev, 0, sizeof(*ev));
	ev->kind = WS_EV_MORE;
	if (p->failed) {
		*used = len;
		fail(p, ev, WS_CLOSE_PROTOCOL);
		return;
	}
	while (i < len) {
		if (!p->in_payload) {
			unsigned need = header_size(p->hdr, p->hdr_len);
			unsigned code;

			while (p->hdr_len < need && i < len) {
				p->hdr[p->hdr_len++] = in[i++];
				need = header_size(p->hdr, p->hdr_len);
			}
			if (p->hdr_len < need)
				break;
			code = header_done(p);
			if (code) {
				fail(p, ev, code);
				*used = i;
				return;
			}
			p->in_payload = true;
		}
		if (p->payload_done < p->payload_len && i < len) {
			size_t n = len - i;
			unsigned char *dst;

			if (n > p->payload_len - p->payload_done)
				n = (size_t)(p->payload_len - p->payload_done);
			dst = p->opcode >= WS_OP_CLOSE ? p->ctl + p->payload_done
						       : p->msg + p->msg_len;
			for (size_t k = 0; k < n; k++)
				dst[k] = in[i + k] ^ p->mask[(p->payload_done + k) & 3];
			p->payload_done += n;
			if (p->opcode < WS_OP_CLOSE)
				p->msg_len += n;
			i += n;
		}
		if (p->payload_done == p->payload_len && frame_done(p, ev)) {
			*used = i;
			return;
		}
	}
	*used = i;
}
