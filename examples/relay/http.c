/* SPDX-License-Identifier: MIT */
/* A deliberately small HTTP/1.x request parser for the relay. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>

#include "http.h"

static bool is_tchar(int c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool name_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

/* Does the comma-separated list v[0..len) hold the token 'tok'? */
static bool list_has(const char *v, size_t len, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (i < len) {
		size_t s, e;

		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return true;
	}
	return false;
}

static int parse_u64(const char *v, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (len == 0 || len > 19)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > max)
		return -1;
	*out = x;
	return 0;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

/*
 * Is one permessage-deflate offer (its parameters after the name) one we can
 * take?  We compress with a 32 KiB window and never keep a context, so only
 * a server window below 15 bits is refused.
 */
static bool deflate_offer_ok(const char *p, const char *end)
{
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p)), *pe, *eq, *k, *ke;

		pe = semi ? semi : end;
		k = p;
		ke = pe;
		eq = memchr(k, '=', (size_t)(ke - k));
		if (eq)
			ke = eq;
		trim(&k, &ke);
		if (ke - k == 26 && !strncasecmp(k, "server_no_context_takeover", 26)) {
		} else if (ke - k == 26 && !strncasecmp(k, "client_no_context_takeover", 26)) {
		} else if (ke - k == 22 && !strncasecmp(k, "client_max_window_bits", 22)) {
		} else if (ke - k == 22 && !strncasecmp(k, "server_max_window_bits", 22)) {
			const char *v = eq ? eq + 1 : pe, *ve = pe;

			trim(&v, &ve);
			if (ve - v >= 2 && *v == '"' && ve[-1] == '"')
				v++, ve--;
			if (ve - v != 2 || strncmp(v, "15", 2) != 0)
				return false;
		} else if (ke > k) {
			return false; /* a parameter we do not know */
		}
		p = semi ? semi + 1 : end;
	}
	return true;
}

static void ws_extensions(struct http_req *req, const char *v, const char *end)
{
	while (v < end && !req->ws_deflate_offer) {
		const char *comma = memchr(v, ',', (size_t)(end - v)), *e = comma ? comma : end;
		const char *semi = memchr(v, ';', (size_t)(e - v)), *n = v, *ne = semi ? semi : e;

		trim(&n, &ne);
		if (ne - n == 18 && !strncasecmp(n, "permessage-deflate", 18) &&
		    deflate_offer_ok(semi ? semi + 1 : e, e))
			req->ws_deflate_offer = true;
		v = comma ? comma + 1 : end;
	}
}

/* One header field name: value (value with its whitespace trimmed here). */
static int header_field(struct http_req *req, const char *name, size_t nlen,
			const char *v, const char *vend)
{
	size_t vlen;
	uint64_t x;

	while (v < vend && (*v == ' ' || *v == '\t'))
		v++;
	while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
		vend--;
	vlen = (size_t)(vend - v);
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
			return 400; /* no CR, NUL or other controls inside a value */
	if (name_is(name, nlen, "connection")) {
		if (list_has(v, vlen, "close"))
			req->conn_close = true;
		if (list_has(v, vlen, "upgrade"))
			req->conn_upgrade = true;
	} else if (name_is(name, nlen, "upgrade")) {
		if (list_has(v, vlen, "websocket"))
			req->upgrade_websocket = true;
	} else if (name_is(name, nlen, "sec-websocket-version")) {
		if (parse_u64(v, vlen, 255, &x) < 0 || req->ws_version >= 0)
			req->ws_version = 0; /* unusable, answered 426 */
		else
			req->ws_version = (int)x;
	} else if (name_is(name, nlen, "sec-websocket-key")) {
		if (req->ws_key[0] || vlen >= sizeof(req->ws_key))
			req->ws_key[0] = 0, req->ws_key[1] = 1; /* duplicate/too long: bad */
		else
			memcpy(req->ws_key, v, vlen), req->ws_key[vlen] = 0;
	} else if (name_is(name, nlen, "sec-websocket-extensions")) {
		ws_extensions(req, v, v + vlen);
	} else if (name_is(name, nlen, "content-length")) {
		if (parse_u64(v, vlen, (uint64_t)INT64_MAX, &x) < 0)
			return 400;
		if (req->content_length >= 0 && (uint64_t)req->content_length != x)
			return 400;
		req->content_length = (int64_t)x;
	} else if (name_is(name, nlen, "transfer-encoding")) {
		if (vlen == 7 && strncasecmp(v, "chunked", 7) == 0 && !req->chunked)
			req->chunked = true;
		else
			req->te_unsupported = true;
	} else if (name_is(name, nlen, "expect")) {
		if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
			req->expect_continue = true;
		else
			return 417;
	} else if (name_is(name, nlen, "content-type")) {
		if (vlen < sizeof(req->content_type)) {
			memcpy(req->content_type, v, vlen);
			req->content_type[vlen] = 0;
		}
	} else if (name_is(name, nlen, "last-event-id")) {
		if (parse_u64(v, vlen, UINT64_MAX / 10, &x) == 0) {
			req->has_last_event_id = true;
			req->last_event_id = x;
		}
	}
	return 0;
}

/* Find the end of the header section; returns its length or 0. */
size_t http_header_end(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Length of the first line (without its terminator), or len if none yet. */
size_t http_first_line_len(const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);

	return nl ? (size_t)(nl - buf) : len;
}

/*
 * Parse a complete header section buf[0..len).  Fills req and returns 0, or
 * returns the HTTP status code to answer with.
 */
int http_parse(const char *buf, size_t len, struct http_req *req)
{
	const char *p = buf, *end = buf + len, *eol, *sp1, *sp2, *t;
	size_t mlen, tlen, vlen;
	bool host = false;
	int st;

	memset(req, 0, sizeof(*req));
	req->ws_version = -1;
	req->content_length = -1;
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		return 400;
	t = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
	/* method SP target SP version */
	sp1 = memchr(p, ' ', (size_t)(t - p));
	if (!sp1)
		return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(t - sp1 - 1));
	if (!sp2 || memchr(sp2 + 1, ' ', (size_t)(t - sp2 - 1)))
		return 400;
	mlen = (size_t)(sp1 - p);
	tlen = (size_t)(sp2 - sp1 - 1);
	vlen = (size_t)(t - sp2 - 1);
	if (mlen == 0 || mlen >= sizeof(req->method) || tlen == 0 ||
	    tlen >= sizeof(req->target))
		return mlen >= sizeof(req->method) ? 400 : (tlen == 0 ? 400 : 414);
	for (t = p; t < sp1; t++)
		if (!is_tchar((unsigned char)*t))
			return 400;
	memcpy(req->method, p, mlen);
	memcpy(req->target, sp1 + 1, tlen);
	/* Every byte of it: a NUL would otherwise end the path early. */
	for (t = req->target; t < req->target + tlen; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return 400;
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return (vlen >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0) ? 505 : 400;
	if (sp2[8] == '1')
		req->minor = 1;
	else if (sp2[8] == '0')
		req->minor = 0;
	else
		return 400;

	/* origin-form, or absolute-form http://host/path */
	t = req->target;
	if (strncasecmp(t, "http://", 7) == 0) {
		t = strchr(t + 7, '/');
		if (!t)
			t = "/";
	} else if (*t != '/') {
		return 400;
	}
	tlen = strcspn(t, "?#");
	if (tlen >= sizeof(req->path))
		return 414;
	memcpy(req->path, t, tlen);
	req->path[tlen] = 0;

	/* header fields: name ":" value; no obsolete line folding */
	for (p = eol + 1; p < end; p = eol + 1) {
		const char *colon;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			return 400;
		t = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		if (t == p)
			break; /* the empty line */
		if (*p == ' ' || *p == '\t')
			return 400;
		colon = memchr(p, ':', (size_t)(t - p));
		if (!colon || colon == p)
			return 400;
		for (const char *c = p; c < colon; c++)
			if (!is_tchar((unsigned char)*c))
				return 400;
		if (colon - p == 4 && strncasecmp(p, "host", 4) == 0) {
			if (host)
				return 400;
			host = true;
		}
		st = header_field(req, p, (size_t)(colon - p), colon + 1, t);
		if (st)
			return st;
	}
	if (req->chunked && req->content_length >= 0)
		return 400; /* RFC 9112 6.3: a request smuggling attempt */
	if (req->minor == 1 && !host)
		return 400;
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 101: return "Switching Protocols";
	case 204: return "No Content";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 426: return "Upgrade Required";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

bool http_topic_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TOPIC_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

enum { CS_SIZE, CS_EXT, CS_SIZE_LF, CS_DATA, CS_DATA_CR, CS_DATA_LF, CS_TRAILER,
       CS_TRAILER_LF, CS_DONE };

#define CHUNK_LINE_MAX 1024    /* a chunk extension or trailer line */
#define CHUNK_TRAILER_MAX 8192 /* all trailer fields */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void size_line_done(struct http_chunked *c)
{
	c->digits = 0;
	c->line = 0;
	c->state = c->left == 0 ? CS_TRAILER : CS_DATA;
}

int http_chunked_next(struct http_chunked *c, const unsigned char *in, size_t len,
		      size_t *used, size_t *data_off, size_t *data_len)
{
	size_t i = 0;

	*data_off = *data_len = 0;
	while (i < len) {
		unsigned char b = in[i];
		int h;

		switch (c->state) {
		case CS_SIZE:
			i++;
			h = hexval(b);
			if (h >= 0) {
				if (c->digits >= 15)
					goto bad; /* sizes beyond 2^60 are not bodies */
				c->left = c->left * 16 + (uint64_t)h;
				c->digits++;
			} else if (c->digits && (b == ';' || b == ' ' || b == '\t')) {
				c->state = CS_EXT;
				c->line = 0;
			} else if (c->digits && b == '\r') {
				c->state = CS_SIZE_LF;
			} else if (c->digits && b == '\n') {
				size_line_done(c);
			} else {
				goto bad;
			}
			break;
		case CS_EXT:
			i++;
			if (b == '\r')
				c->state = CS_SIZE_LF;
			else if (b == '\n')
				size_line_done(c);
			else if (++c->line > CHUNK_LINE_MAX || (b < 0x20 && b != '\t'))
				goto bad;
			break;
		case CS_SIZE_LF:
			i++;
			if (b != '\n')
				goto bad;
			size_line_done(c);
			break;
		case CS_DATA: {
			size_t n = len - i;

			if (n > c->left)
				n = (size_t)c->left;
			*data_off = i;
			*data_len = n;
			c->left -= n;
			i += n;
			if (c->left == 0)
				c->state = CS_DATA_CR;
			*used = i;
			return HTTP_CHUNK_DATA;
		}
		case CS_DATA_CR:
			i++;
			if (b == '\r')
				c->state = CS_DATA_LF;
			else if (b == '\n')
				c->state = CS_SIZE;
			else
				goto bad;
			break;
		case CS_DATA_LF:
			i++;
			if (b != '\n')
				goto bad;
			c->state = CS_SIZE;
			break;
		case CS_TRAILER:
			i++;
			if (++c->trailer > CHUNK_TRAILER_MAX)
				goto bad;
			if (b == '\r') {
				c->state = CS_TRAILER_LF;
			} else if (b == '\n') {
				if (c->line == 0)
					goto done;
				c->line = 0;
			} else if (++c->line > CHUNK_LINE_MAX || (b < 0x20 && b != '\t')) {
				goto bad;
			}
			break;
		case CS_TRAILER_LF:
			i++;
			if (b != '\n')
				goto bad;
			if (c->line == 0)
				goto done;
			c->line = 0;
			c->state = CS_TRAILER;
			break;
		default:
			goto bad;
		}
	}
	*used = i;
	return HTTP_CHUNK_MORE;
done:
	c->state = CS_DONE;
	*used = i;
	return HTTP_CHUNK_END;
bad:
	*used = i;
	return HTTP_CHUNK_ERROR;
}
