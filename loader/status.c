// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* writevv-loader status: what is pinned, its sizes, use and counters. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "pinned_maps.h"

struct status {
	struct wvv_config cfg;
	struct bpf_prog_info prog;
	int attached;                        /* 1, 0, or -1 unknown */
	struct bpf_map_info maps[ARRAY_SIZE(map_pins)];
	long slots_used, targets, rings;     /* -1: unknown */
	bool have_stats;
	struct wvv_stats stats;
};

static const char *const stat_names[] = {
	"calls", "frames", "bytes", "redirect_failures",
	"stale_fd", "not_writable", "bad_frames", "ring_full",
	"pull_failures",
};

static __u64 stat_at(const struct wvv_stats *s, size_t i)
{
	const __u64 v[] = { s->calls, s->frames, s->bytes, s->redirect_failures,
			    s->stale_fd, s->not_writable, s->bad_frames, s->ring_full,
			    s->pull_failures };

	return v[i];
}

static int collect(const char *dir, struct status *s)
{
	int fds[ARRAY_SIZE(map_pins)], prog_fd, err = 0;
	__u32 len, i, id, ids[4], cnt = ARRAY_SIZE(ids), flags;
	__u64 key, next;

	for (i = 0; i < ARRAY_SIZE(map_pins); i++)
		fds[i] = -1;
	prog_fd = open_pin(dir, WVV_PIN_PROG, false);
	if (prog_fd < 0)
		return prog_fd;
	for (i = 0; i < ARRAY_SIZE(map_pins); i++) {
		fds[i] = open_pin(dir, map_pins[i], false);
		if (fds[i] < 0) {
			err = fds[i];
			goto out;
		}
	}
	len = sizeof(s->prog);
	if (bpf_obj_get_info_by_fd(prog_fd, &s->prog, &len)) {
		err = -errno;
		errmsg("cannot query %s/%s: %s", dir, WVV_PIN_PROG, strerror(-err));
		goto out;
	}
	for (i = 0; i < ARRAY_SIZE(map_pins); i++) {
		err = map_info(fds[i], &s->maps[i]);
		if (err) {
			errmsg("cannot query %s/%s: %s", dir, map_pins[i], strerror(-err));
			goto out;
		}
	}
	err = wvv_read_config(fds[M_CONFIG], &s->cfg);
	if (err) {
		errmsg("cannot read %s/%s: %s", dir, WVV_PIN_CONFIG, strerror(-err));
		goto out;
	}
	s->attached = -1;
	if (!bpf_prog_query(fds[M_CTL], BPF_SK_MSG_VERDICT, 0, &flags, ids, &cnt)) {
		s->attached = 0;
		for (id = 0; id < cnt; id++)
			if (ids[id] == s->prog.id)
				s->attached = 1;
	}
	/* Key and value buffers are 8 bytes: check before trusting a foreign ABI. */
	s->slots_used = s->rings = s->targets = -1;
	if (s->maps[M_CTL].key_size == 4 && s->maps[M_CTL].value_size <= 8)
		s->slots_used = count_present(fds[M_CTL], s->maps[M_CTL].max_entries);
	if (s->maps[M_RINGS].key_size == 4 && s->maps[M_RINGS].value_size <= 8)
		s->rings = count_present(fds[M_RINGS], s->maps[M_RINGS].max_entries);
	if (s->maps[M_TARGETS].key_size == sizeof(key)) {
		if (bpf_map_get_next_key(fds[M_TARGETS], NULL, &key))
			s->targets = errno == ENOENT ? 0 : -1;
		else
			for (s->targets = 1; !bpf_map_get_next_key(fds[M_TARGETS], &key, &next); s->targets++)
				key = next;
	}
	if (s->cfg.abi_version != WVV_ABI_VERSION || s->maps[M_STATS].value_size != sizeof(struct wvv_stats))
		goto out;  /* counters of another ABI: not ours to decode */
	s->have_stats = !wvv_sum_stats(fds[M_STATS], &s->stats);
out:
	for (i = 0; i < ARRAY_SIZE(map_pins); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(prog_fd);
	return err;
}

static void json_str(const char *str)
{
	const unsigned char *p = (const unsigned char *)str;

	putchar('"');
	for (; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void tag_hex(const struct bpf_prog_info *p, char out[2 * BPF_TAG_SIZE + 1])
{
	int i;

	for (i = 0; i < BPF_TAG_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", p->tag[i]);
}

static void json_count(const char *key, long v)
{
	if (v < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%ld", key, v);
}

static void text_count(const char *label, long v, __u32 max, const char *what)
{
	if (v < 0)
		printf("  %-9s unknown (cannot read the map) of %u %s\n", label, max, what);
	else
		printf("  %-9s %ld of %u %s\n", label, v, max, what);
}

static void print_json(const char *dir, const struct status *s)
{
	char tag[2 * BPF_TAG_SIZE + 1];
	size_t i;

	tag_hex(&s->prog, tag);
	printf("{\"loaded\":true,\"pin_dir\":");
	json_str(dir);
	printf(",\"loader_abi_version\":%u,\"config\":{\"abi_version\":%u,\"slots\":%u,"
	       "\"ring_bytes\":%u,\"frame_bytes_max\":%u},",
	       WVV_ABI_VERSION, s->cfg.abi_version, s->cfg.slots, s->cfg.ring_bytes,
	       s->cfg.frame_bytes_max);
	printf("\"prog\":{\"id\":%u,\"name\":", s->prog.id);
	json_str(s->prog.name);
	printf(",\"tag\":\"%s\",\"attached\":%s},\"maps\":{", tag,
	       s->attached < 0 ? "null" : s->attached ? "true" : "false");
	for (i = 0; i < ARRAY_SIZE(map_pins); i++) {
		const char *type = libbpf_bpf_map_type_str(s->maps[i].type);

		printf("%s\"%s\":{\"id\":%u,\"name\":", i ? "," : "", map_pins[i], s->maps[i].id);
		json_str(s->maps[i].name);
		printf(",\"type\":");
		json_str(type ? type : "unknown");
		printf(",\"max_entries\":%u}", s->maps[i].max_entries);
	}
	printf("}");
	json_count("slots_in_use", s->slots_used);
	json_count("targets", s->targets);
	json_count("rings", s->rings);
	printf(",\"stats\":");
	if (!s->have_stats) {
		printf("null}\n");
		return;
	}
	for (i = 0; i < ARRAY_SIZE(stat_names); i++)
		printf("%s\"%s\":%llu", i ? "," : "{", stat_names[i],
		       (unsigned long long)stat_at(&s->stats, i));
	printf("}}\n");
}

static void print_text(const char *dir, const struct status *s)
{
	char tag[2 * BPF_TAG_SIZE + 1];
	size_t i;

	tag_hex(&s->prog, tag);
	printf("writevv: loaded at %s\n", dir);
	if (s->cfg.abi_version != WVV_ABI_VERSION)
		printf("  WARNING: pins are writevv ABI v%u, this loader is v%u: run `writevv-loader unload` and load again\n",
		       s->cfg.abi_version, WVV_ABI_VERSION);
	printf("  config    abi v%u, %u slots, %u-byte rings, frames up to %u bytes\n",
	       s->cfg.abi_version, s->cfg.slots, s->cfg.ring_bytes, s->cfg.frame_bytes_max);
	printf("  prog      id %u name %s tag %s, %s\n", s->prog.id, s->prog.name, tag,
	       s->attached < 0 ? "attachment unknown" :
	       s->attached ? "attached to " WVV_PIN_CTL : "NOT attached to " WVV_PIN_CTL);
	for (i = 0; i < ARRAY_SIZE(map_pins); i++) {
		const char *type = libbpf_bpf_map_type_str(s->maps[i].type);

		printf("  map       %-15s id %-6u %-16s max_entries %u\n", s->maps[i].name,
		       s->maps[i].id, type ? type : "?", s->maps[i].max_entries);
	}
	text_count("slots", s->slots_used, s->maps[M_CTL].max_entries, "in use");
	text_count("targets", s->targets, s->maps[M_TARGETS].max_entries, "registered");
	text_count("rings", s->rings, s->maps[M_RINGS].max_entries, "installed");
	if (s->have_stats) {
		printf("  stats    ");
		for (i = 0; i < ARRAY_SIZE(stat_names); i++)
			printf(" %s %llu", stat_names[i], (unsigned long long)stat_at(&s->stats, i));
		printf("\n");
	}
}

/* The accounts of a --group load, each with a tree of its own. */
static void print_accounts(const char *dir)
{
	char udir[PATH_MAX];
	struct dirent *e;
	int n = 0;
	DIR *d;

	if (join(udir, dir, WVV_PIN_ACCOUNT_DIR) || !(d = opendir(udir)))
		return;
	while ((e = readdir(d))) {
		const char *c = e->d_name;

		while (*c >= '0' && *c <= '9')
			c++;
		if (c == e->d_name || *c)
			continue;
		printf("%s %s", n++ ? "" : "  accounts ", e->d_name);
	}
	closedir(d);
	if (n)
		printf("  (uids with a load of their own: status --pin-dir %s/<uid>)\n", udir);
}

int cmd_status(const char *dir, bool json)
{
	struct status s;
	struct stat st;
	int err;

	memset(&s, 0, sizeof(s));
	err = lstat(dir, &st) ? -errno : 0;
	if (!err && (S_ISLNK(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()))) {
		/* Another user's entry at the name (a squatter's): not pins. */
		errmsg("warning: %s is %s made by uid %u, not by a loader: it is no pin directory",
		       dir, S_ISLNK(st.st_mode) ? "a symlink" : "an entry", (unsigned int)st.st_uid);
		err = -ENOENT;
	}
	if (err) {
		if (err != -ENOENT) {
			errmsg("cannot access %s: %s%s", dir, strerror(-err),
			       err == -EACCES ? " (need root, or membership in the pins' group)" : "");
			return err;
		}
		if (json) {
			printf("{\"loaded\":false,\"pin_dir\":");
			json_str(dir);
			printf(",\"loader_abi_version\":%u}\n", WVV_ABI_VERSION);
		} else {
			printf("writevv: not loaded at %s\n", dir);
		}
		return 0;
	}
	err = collect(dir, &s);
	if (err)
		return err;
	if (json) {
		print_json(dir, &s);
	} else {
		print_text(dir, &s);
		print_accounts(dir);
	}
	return 0;
}
