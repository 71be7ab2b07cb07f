/* SPDX-License-Identifier: MIT */
/* writevv-relay: the counters, the /stats document and the periodic stats line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <writevv.h>

#include "http.h"
#include "redis.h"
#include "nofile.h"
#include "relay.h"
#include "relay_state.h"
#include "topic.h"
#include "ws.h"


/* ---- stats -------------------------------------------------------------- */

void totals(struct totals *t)
{
	int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < R.nshards; i++) {
		struct shard *s = &R.shards[i];

		t->viewers += atomic_load_explicit(&s->n_viewers, memory_order_relaxed);
		t->behind += atomic_load_explicit(&s->n_behind, memory_order_relaxed);
		t->bytes_out += atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
		t->drops += atomic_load_explicit(&s->drops, memory_order_relaxed);
		t->left += atomic_load_explicit(&s->left, memory_order_relaxed);
		t->finished += atomic_load_explicit(&s->finished, memory_order_relaxed);
		t->calls += atomic_load_explicit(&s->calls, memory_order_relaxed);
		t->cpu_ns += atomic_load_explicit(&s->cpu_ns, memory_order_relaxed);
		t->joined += atomic_load_explicit(&s->joined, memory_order_relaxed);
	}
}

int current_engine(void)
{
	int m = -1;

	if (writevv_control(WRITEVV_GETMODE, &m) < 0)
		return -1;
	return m;
}

static const char *requested_mode(void)
{
	const char *e;

	if (R.opt.mode >= 0)
		return wvv_mode_name(R.opt.mode);
	e = getenv("WRITEVV_MODE");
	/* the library reads WRITEVV_MODE by the names alone (no alias) */
	return e && !strcmp(wvv_mode_name(wvv_mode_parse(e)), e) ? e : "default";
}

size_t stats_json(char *buf, size_t sz)
{
	struct totals t;
	uint64_t pcpu = process_cpu_ns();
	double up = (double)(now_ns() - R.start_ns) / 1e9;
	struct topic_totals tt;
	size_t off;
	int n;

	totals(&t);
	n = snprintf(buf, sz,
		     "{\"viewers\":%llu,\"viewers_behind\":%llu,\"viewers_joined\":%llu,"
		     "\"viewers_finished\":%llu,\"viewers_left\":%llu,\"drops\":%llu,"
		     "\"publisher\":%s,\"sessions\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
		     "\"writevv_calls\":%llu,\"engine\":\"%s\",\"mode\":\"%s\",\"threads\":%d,"
		     "\"sender_cpu_ns\":%llu,\"sender_cpu_ns_per_byte\":%.4f,"
		     "\"process_cpu_ns\":%llu,\"process_cpu_ns_per_byte\":%.4f,"
		     "\"max_backlog\":%zu,\"max_delay_ms\":%d,\"ts_align\":%s,"
		     "\"http_requests\":%llu,\"http_errors\":%llu,\"rss_kb\":%ld,"
		     "\"uptime_s\":%.3f,",
		     (unsigned long long)t.viewers, (unsigned long long)t.behind,
		     (unsigned long long)t.joined, (unsigned long long)t.finished,
		     (unsigned long long)t.left, (unsigned long long)t.drops,
		     R.pub_connected ? "true" : "false", (unsigned long long)R.sessions,
		     (unsigned long long)R.bytes_in, (unsigned long long)t.bytes_out,
		     (unsigned long long)t.calls, wvv_mode_name(current_engine()),
		     requested_mode(), R.threaded ? R.nshards : 0,
		     (unsigned long long)t.cpu_ns,
		     t.bytes_out ? (double)t.cpu_ns / (double)t.bytes_out : 0.0,
		     (unsigned long long)pcpu,
		     t.bytes_out ? (double)pcpu / (double)t.bytes_out : 0.0,
		     R.opt.max_backlog, R.opt.max_delay_ms, R.opt.ts_align ? "true" : "false",
		     (unsigned long long)R.http_requests, (unsigned long long)R.http_errors,
		     rss_kb(), up);
	off = n < 0 ? 0 : ((size_t)n >= sz ? sz : (size_t)n);
	topics_totals(&tt);
	if (off < sz) {
		n = snprintf(buf + off, sz - off,
			     "\"subscribers\":%llu,\"topic_subscribers\":%llu,\"publishers\":%llu,"
			     "\"messages\":%llu,\"message_bytes_in\":%llu,"
			     "\"message_bytes_out\":%llu,\"deliveries\":%llu,\"message_drops\":%llu,"
			     "\"message_writevv_calls\":%llu,\"websocket_errors\":%llu,"
			     "\"topic_sender_cpu_ns\":%llu,\"sender_cpu_ns_per_message\":%.1f,"
			     "\"max_message\":%zu,\"history\":%u,",
			     (unsigned long long)(tt.subscribers + t.viewers),
			     (unsigned long long)tt.subscribers, (unsigned long long)tt.publishers,
			     (unsigned long long)tt.messages, (unsigned long long)tt.bytes_in,
			     (unsigned long long)tt.bytes_out, (unsigned long long)tt.deliveries,
			     (unsigned long long)tt.drops, (unsigned long long)tt.calls,
			     (unsigned long long)tt.ws_errors, (unsigned long long)tt.cpu_ns,
			     tt.deliveries ? (double)tt.cpu_ns / (double)tt.deliveries : 0.0,
			     R.opt.max_message, R.opt.history);
		off = n < 0 ? sz : ((size_t)n >= sz - off ? sz : off + (size_t)n);
	}
	redis_stats_json(buf, sz, &off);
	topics_stats_json(buf, sz, &off);
	if (off + 3 <= sz) {
		memcpy(buf + off, "}\n", 2);
		off += 2;
		return off;
	}
	return 0; /* cannot happen: sz is sized for the topics */
}

void print_stats_line(void)
{
	struct totals t;

	totals(&t);
	logmsg("stats: viewers=%llu behind=%llu drops=%llu left=%llu in=%llu out=%llu "
	       "calls=%llu engine=%s sender_cpu=%.3fs (%.3f ns/B) rss=%ldkB",
	       (unsigned long long)t.viewers, (unsigned long long)t.behind,
	       (unsigned long long)t.drops, (unsigned long long)t.left,
	       (unsigned long long)R.bytes_in, (unsigned long long)t.bytes_out,
	       (unsigned long long)t.calls, wvv_mode_name(current_engine()),
	       (double)t.cpu_ns / 1e9,
	       t.bytes_out ? (double)t.cpu_ns / (double)t.bytes_out : 0.0, rss_kb());
}
