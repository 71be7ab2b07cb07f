/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pinned_maps.h"

int wvv_read_config(int fd, struct wvv_config *cfg)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), zero = 0;
	void *buf;
	int err;

	memset(&info, 0, sizeof(info));
	memset(cfg, 0, sizeof(*cfg));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.key_size != sizeof(__u32) ||
	    info.value_size < sizeof(__u32) || info.value_size > 4096)
		return -EPROTO;
	buf = calloc(1, info.value_size);
	if (!buf)
		return -ENOMEM;
	err = bpf_map_lookup_elem(fd, &zero, buf) ? -errno : 0;
	if (!err)
		memcpy(cfg, buf, info.value_size < sizeof(*cfg) ? info.value_size : sizeof(*cfg));
	free(buf);
	return err;
}

int wvv_sum_stats(int fd, struct wvv_stats *sum)
{
	int ncpu = libbpf_num_possible_cpus(), i, err;
	struct wvv_stats *v;
	__u32 zero = 0;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -ENODEV;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = bpf_map_lookup_elem(fd, &zero, v) ? -errno : 0;
	for (i = 0; !err && i < ncpu; i++) {
		sum->calls += v[i].calls;
		sum->frames += v[i].frames;
		sum->bytes += v[i].bytes;
		sum->redirect_failures += v[i].redirect_failures;
		sum->stale_fd += v[i].stale_fd;
		sum->not_writable += v[i].not_writable;
		sum->bad_frames += v[i].bad_frames;
		sum->ring_full += v[i].ring_full;
		sum->pull_failures += v[i].pull_failures;
	}
	free(v);
	return err;
}
