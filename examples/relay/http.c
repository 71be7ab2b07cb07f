/* SPDX-License-Identifier: MIT */
/* A deliberately small HTTP/1.x request parser for the relay. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static bool is_tchar(int c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
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

	memset(req, 0, sizeof(*req));
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
	for (t = req->target; *t; t++)
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
	}
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
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}
