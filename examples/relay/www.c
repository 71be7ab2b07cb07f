/* SPDX-License-Identifier: MIT */
/* writevv-relay: the pages and the files they load (see www.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay.h"
#include "www.h"

#ifndef RELAY_WWW_SOURCE_DIR
#define RELAY_WWW_SOURCE_DIR "examples/relay/www"
#endif

#define WWW_MAX_FILE (8u << 20)  /* mpegts.js is ~0.5 MB; nothing of ours is near this */

#define HTML "text/html; charset=utf-8"
#define JS   "text/javascript; charset=utf-8"
#define CSS  "text/css; charset=utf-8"
/* Our pages change with the relay: revalidate.  The packages' files are
 * pinned by package-lock.json: an hour is fine. */
#define OURS "no-cache"
#define PKG  "public, max-age=3600"

struct www_file {
	const char *url;      /* the exact path, or with 'topic' a prefix followed by a topic name */
	bool topic;
	const char *file;     /* relative to the data directory */
	const char *ctype;
	const char *cache;
	const char *package;  /* the npm package it comes from; NULL: one of ours */
};

static const struct www_file files[] = {
	{ "/watch/", true, "watch.html", HTML, OURS, NULL },
	{ "/messages/", true, "messages.html", HTML, OURS, NULL },
	{ "/dashboard", false, "dashboard.html", HTML, OURS, NULL },
	{ "/www/relay.css", false, "relay.css", CSS, OURS, NULL },
	{ "/www/pages.js", false, "pages.js", JS, OURS, NULL },
	{ "/www/watch.js", false, "watch.js", JS, OURS, NULL },
	{ "/www/messages.js", false, "messages.js", JS, OURS, NULL },
	{ "/www/dashboard.js", false, "dashboard.js", JS, OURS, NULL },
	{ "/www/lib/mpegts.js", false, "node_modules/mpegts.js/dist/mpegts.js", JS, PKG, "mpegts.js" },
	{ "/www/lib/uPlot.iife.min.js", false, "node_modules/uplot/dist/uPlot.iife.min.js", JS, PKG,
	  "uplot" },
	{ "/www/lib/uPlot.min.css", false, "node_modules/uplot/dist/uPlot.min.css", CSS, PKG,
	  "uplot" },
};

static char www_dir[PATH_MAX];

static bool has_pages(const char *dir)
{
	char p[PATH_MAX + 16];

	snprintf(p, sizeof(p), "%s/watch.html", dir);
	return access(p, R_OK) == 0;
}

/* An installed relay finds its pages beside its binary (bin/../share/...);
 * one run from its build tree finds them in the source tree. */
static void default_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		char *slash;

		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			if ((size_t)snprintf(www_dir, sizeof(www_dir), "%s/../share/writevv-relay/www",
					     exe) < sizeof(www_dir) && has_pages(www_dir))
				return;
		}
	}
	snprintf(www_dir, sizeof(www_dir), "%s", RELAY_WWW_SOURCE_DIR);
}

void www_init(const char *dir)
{
	size_t i;

	if (dir)
		snprintf(www_dir, sizeof(www_dir), "%s", dir);
	else
		default_dir();
	logmsg("pages: /watch/TOPIC, /messages/TOPIC, /dashboard from %s", www_dir);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[2 * PATH_MAX];

		snprintf(p, sizeof(p), "%s/%s", www_dir, files[i].file);
		if (access(p, R_OK) == 0)
			continue;
		if (files[i].package)
			logmsg("pages: %s is missing: npm package %s is not installed "
			       "(scripts/quickstart.sh, or npm ci in examples/relay/www)",
			       files[i].file, files[i].package);
		else
			logmsg("pages: %s is missing from %s (--www DIR)", files[i].file, www_dir);
	}
}

static const struct www_file *lookup(const char *path, int *status)
{
	size_t i;

	*status = 0;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const struct www_file *f = &files[i];
		size_t ul = strlen(f->url);

		if (!f->topic) {
			if (strcmp(path, f->url) == 0)
				return f;
			continue;
		}
		if (strncmp(path, f->url, ul) != 0)
			continue;
		/* The page reads its topic from its own address; a name the
		 * relay would refuse gets the same 400 here, and so do "." and
		 * "..", which no browser sends as a name. */
		if (!http_topic_valid(path + ul, strlen(path + ul)) ||
		    strspn(path + ul, ".") == strlen(path + ul)) {
			*status = 400;
			return NULL;
		}
		return f;
	}
	return NULL;
}

/* The file's bytes (malloc'd), or NULL with *err a negative errno. */
static char *read_file(const char *rel, size_t *len, int *err)
{
	char p[2 * PATH_MAX];
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", www_dir, rel);
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > WWW_MAX_FILE) {
		*err = -EINVAL;
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		*err = -ENOMEM;
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* truncated under us: serve what is there */
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return buf;
}

/* The pages load nothing but the relay's own files and talk to nothing but
 * the relay (messages are shown as text; this is the second fence).  MSE
 * plays from a blob: URL. */
#define PAGE_CSP "Content-Security-Policy: default-src 'none'; script-src 'self'; " \
	"style-src 'self'; img-src 'self' data:; connect-src 'self'; media-src 'self' blob:; " \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"

static void reply(struct www_reply *r, int status, const char *ctype, const char *cache,
		  const char *body, size_t len, bool head_only)
{
	char hdr[768];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nServer: writevv-relay\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nCache-Control: %s\r\n%s"
			 "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
			 status, http_reason(status), ctype, len, cache,
			 strcmp(ctype, HTML) == 0 ? PAGE_CSP : "");
	size_t blen = head_only ? 0 : len;

	r->status = status;
	r->buf = malloc((size_t)n + blen);
	if (!r->buf)
		return;
	memcpy(r->buf, hdr, (size_t)n);
	if (blen)
		memcpy(r->buf + n, body, blen);
	r->len = (size_t)n + blen;
}

bool www_respond(const struct http_req *req, bool head_only, struct www_reply *r)
{
	const struct www_file *f;
	char msg[PATH_MAX + 256];
	size_t len = 0;
	char *body;
	int st, err = 0, n;

	memset(r, 0, sizeof(*r));
	f = lookup(req->path, &st);
	if (!f && !st)
		return false;
	if (!f) {
		n = snprintf(msg, sizeof(msg), "%d %s: not a topic name\n", st, http_reason(st));
		reply(r, st, "text/plain; charset=utf-8", "no-store", msg, (size_t)n, head_only);
		return true;
	}
	body = read_file(f->file, &len, &err);
	if (!body) {
		if (err == -ENOMEM) {
			r->status = 503;
			return true;
		}
		/* Said plainly, so that a page whose script is missing can tell why. */
		if (f->package)
			n = snprintf(msg, sizeof(msg),
				     "404 Not Found: npm package %s is not installed in %s "
				     "(run scripts/quickstart.sh, or npm ci in examples/relay/www)\n",
				     f->package, www_dir);
		else
			n = snprintf(msg, sizeof(msg), "404 Not Found: %s is not in %s (--www DIR)\n",
				     f->file, www_dir);
		vlogmsg("pages: %s: %s", f->file, strerror(-err));
		reply(r, 404, "text/plain; charset=utf-8", "no-store", msg,
		      n < 0 ? 0 : ((size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1), head_only);
		return true;
	}
	reply(r, 200, f->ctype, f->cache, body, len, head_only);
	free(body);
	return true;
}
