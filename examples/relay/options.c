/* SPDX-License-Identifier: MIT */
/* writevv-relay: the command line. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <writevv.h>

#include "http.h"
#include "relay.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: writevv-relay [--listen ADDR:PORT] [--ingest ADDR:PORT[=TOPIC] | --stdin[=TOPIC]]\n"
"                     [--mode default|kernel|iouring|sendfile|zerocopy|userland] [--content-type TYPE]\n"
"                     [--max-backlog BYTES] [--ts-align] [--stats-interval S]\n"
"                     [--max-delay-ms MS] [--threads N] [--sndbuf BYTES]\n"
"                     [--drain-timeout S] [--verbose]\n"
"                     [--max-message BYTES] [--history N] [--client-publish]\n"
"                     [--max-topics N] [--redis HOST:PORT] [--ws-deflate] [--www DIR]\n"
"\n"
"  --listen ADDR:PORT     viewers' HTTP address (default 127.0.0.1:8080; port 0 = any)\n"
"  --ingest ADDR:PORT     publisher's raw TCP address (default 127.0.0.1:9000)\n"
"  --stdin                read the stream from standard input; exit when it ends\n"
"  --mode M               writevv engine: default, kernel or userland\n"
"                         (default: the WRITEVV_MODE environment variable)\n"
"  --content-type TYPE    Content-Type of GET / (default video/mp2t)\n"
"  --max-backlog BYTES    per-viewer backlog bound; over it the viewer is dropped\n"
"                         (default 4M; K, M, G suffixes)\n"
"  --ts-align             start viewers at an MPEG-TS packet boundary\n"
"  --stats-interval S     print a stats line every S seconds (default 0: never)\n"
"  --max-delay-ms MS      coalesce publisher reads for up to MS ms (default 50)\n"
"  --threads N            shard viewers over N sender threads (default: 1, no\n"
"                         extra thread)\n"
"  --sndbuf BYTES         SO_SNDBUF of viewer sockets (default: kernel autotuning)\n"
"  --drain-timeout S      with --stdin: how long slow viewers may drain (default 30)\n"
"  --verbose              log every viewer\n"
"  --max-message BYTES    largest message a publisher or WebSocket client may send\n"
"                         (default 1M)\n"
"  --history N            text messages kept per topic for SSE Last-Event-ID (default 64)\n"
"  --client-publish       WebSocket clients' messages publish to their topic\n"
"  --max-topics N         bound on the number of topics (default 10000)\n"
"  --redis HOST:PORT      share topics with other nodes through Redis pub/sub\n"
"  --ws-deflate           accept permessage-deflate (one compressed frame per\n"
"                         message, shared by its deflate subscribers)\n"
"  --www DIR              the pages' data directory (default: share/writevv-relay/www\n"
"                         beside the binary, else the source tree's)\n"
"\n"
"  --ingest ADDR:PORT=TOPIC and --stdin=TOPIC name the topic the stream feeds\n"
"  (default live; GET / and GET /stream/TOPIC serve it).  Further --ingest\n"
"  ADDR:PORT=TOPIC each feed their topic: what one read brings is one message.\n");
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -1;
	*out = (size_t)v;
	return 0;
}

void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "ingest", required_argument, NULL, 'i' },
		{ "stdin", optional_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "content-type", required_argument, NULL, 'c' },
		{ "max-backlog", required_argument, NULL, 'b' },
		{ "ts-align", no_argument, NULL, 'a' },
		{ "stats-interval", required_argument, NULL, 'S' },
		{ "max-delay-ms", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "sndbuf", required_argument, NULL, 'B' },
		{ "drain-timeout", required_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "max-message", required_argument, NULL, 'M' },
		{ "history", required_argument, NULL, 'H' },
		{ "client-publish", no_argument, NULL, 'P' },
		{ "max-topics", required_argument, NULL, 'T' },
		{ "redis", required_argument, NULL, 'R' },
		{ "ws-deflate", no_argument, NULL, 'Z' },
		{ "www", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	size_t sz;
	int c;

	o->listen = "127.0.0.1:8080";
	o->ingest = NULL;
	o->mode = -1;
	o->content_type = "video/mp2t";
	o->max_backlog = 4u << 20;
	o->max_delay_ms = 50;
	o->threads = 1;
	o->drain_timeout = 30;
	o->ingest_topic = "live";
	o->max_message = 1u << 20;
	o->history = 64;
	o->max_topics = 10000;
	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'i': {
			char *eq = strchr(optarg, '=');
			const char *topic = NULL;

			if (eq) {
				*eq = 0;
				topic = eq + 1;
			}
			if (!o->ingest && !o->use_stdin) {
				o->ingest = optarg;
				if (topic)
					o->ingest_topic = topic;
			} else if (o->n_extra < MAX_EXTRA_INGEST) {
				/* more ingests each feed a topic of their own */
				o->extra[o->n_extra].addr = optarg;
				o->extra[o->n_extra].topic = topic ? topic : "";
				o->n_extra++;
			} else {
				fprintf(stderr, "writevv-relay: at most %d --ingest\n",
					MAX_EXTRA_INGEST + 1);
				exit(2);
			}
			break;
		}
		case 's':
			o->use_stdin = true;
			if (optarg)
				o->ingest_topic = optarg[0] == '=' ? optarg + 1 : optarg;
			break;
		case 'M':
			if (parse_size(optarg, &sz) < 0 || sz < 1 || sz > ((size_t)1 << 30))
				goto bad;
			o->max_message = sz;
			break;
		case 'H':
			o->history = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->history > 1000000)
				goto bad;
			break;
		case 'P': o->client_publish = true; break;
		case 'R': o->redis = optarg; break;
		case 'Z': o->ws_deflate = true; break;
		case 'W': o->www = optarg; break;
		case 'T':
			o->max_topics = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->max_topics < 1)
				goto bad;
			break;
		case 'm':
			o->mode = wvv_mode_parse(optarg);
			if (o->mode < 0)
				goto bad;
			break;
		case 'c':
			if (strpbrk(optarg, "\r\n"))
				goto bad;
			o->content_type = optarg;
			break;
		case 'b':
			if (parse_size(optarg, &sz) < 0 || sz < 4096 || sz > ((size_t)1 << 34))
				goto bad;
			o->max_backlog = sz;
			break;
		case 'a': o->ts_align = true; break;
		case 'S':
			o->stats_interval = strtod(optarg, &end);
			if (*end || o->stats_interval < 0)
				goto bad;
			break;
		case 'd':
			o->max_delay_ms = (int)strtol(optarg, &end, 10);
			if (*end || o->max_delay_ms < 0 || o->max_delay_ms > 10000)
				goto bad;
			break;
		case 't':
			o->threads = (int)strtol(optarg, &end, 10);
			if (*end || o->threads < 1 || o->threads > 256)
				goto bad;
			break;
		case 'B':
			if (parse_size(optarg, &sz) < 0 || sz > INT_MAX)
				goto bad;
			o->sndbuf = (int)sz;
			break;
		case 'D':
			o->drain_timeout = strtod(optarg, &end);
			if (*end || o->drain_timeout < 0)
				goto bad;
			break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
		continue;
bad:
		fprintf(stderr, "writevv-relay: bad value '%s' for an option\n", optarg);
		usage(stderr);
		exit(2);
	}
	if (optind < argc) {
		fprintf(stderr, "writevv-relay: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
	if (o->use_stdin && o->ingest) {
		/* --stdin is the stream: an --ingest given before it feeds a topic */
		if (o->n_extra == MAX_EXTRA_INGEST || !strcmp(o->ingest_topic, "live")) {
			fprintf(stderr, "writevv-relay: with --stdin, --ingest needs =TOPIC "
				"(a topic of its own)\n");
			exit(2);
		}
		o->extra[o->n_extra].addr = o->ingest;
		o->extra[o->n_extra].topic = o->ingest_topic;
		o->n_extra++;
		o->ingest = NULL;
		o->ingest_topic = "live";
	}
	if (!o->use_stdin && !o->ingest)
		o->ingest = "127.0.0.1:9000";
	for (int i = 0; i < o->n_extra; i++) {
		const char *t = o->extra[i].topic;

		if (!http_topic_valid(t, strlen(t)) || !strcmp(t, o->ingest_topic)) {
			fprintf(stderr, "writevv-relay: a further --ingest needs =TOPIC, a valid "
				"topic name other than the stream's ('%s')\n", t);
			exit(2);
		}
		for (int j = 0; j < i; j++)
			if (!strcmp(t, o->extra[j].topic)) {
				fprintf(stderr, "writevv-relay: two --ingest feed topic '%s'\n", t);
				exit(2);
			}
	}
	if (!http_topic_valid(o->ingest_topic, strlen(o->ingest_topic))) {
		fprintf(stderr, "writevv-relay: bad topic name '%s': [A-Za-z0-9._-]{1,128}\n",
			o->ingest_topic);
		exit(2);
	}
	relay_verbose = o->verbose;
}

