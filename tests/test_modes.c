/* SPDX-License-Identifier: MIT */
/* Mode control: GETMODE tells the engine really in use; SETMODE errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

static void test_modes_loaded(void **state)
{
	int m;
	struct tcp_fleet f;
	struct wvv_stats before, after;
	static const size_t len = 1000;
	int idx = 0;

	(void)state;
	fleet_open(&f, 1, 1);
	m = 42;
	assert_int_equal(writevv_control(WRITEVV_SETMODE, &m), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(writevv_control(99, &m), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, NULL), -1);
	assert_int_equal(errno, EINVAL);

	must_set_mode(WRITEVV_MODE_USERLAND);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_USERLAND);
	assert_int_equal(read_bpf_stats(&before), 0);
	fanout_check(&f, &idx, 1, &len, 1, 1);
	assert_int_equal(read_bpf_stats(&after), 0);
	assert_int_equal(after.bytes, before.bytes); /* userland: no BPF */

	/* The default mode batches with io_uring (it works on this kernel). */
	must_set_mode(WRITEVV_MODE_DEFAULT);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_IOURING);
	must_set_mode(WRITEVV_MODE_IOURING);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_IOURING);
	must_set_mode(WRITEVV_MODE_KERNEL);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_KERNEL);
	assert_string_equal(writevv_kernel_status(), "");
	fleet_close(&f);
}

/* Kernel mode refused with ENOENT, default mode falls back to userland,
 * and data still flows (run in a fresh process with the pins out of reach). */
static int not_loaded_child(void)
{
	struct tcp_fleet f;
	int m = WRITEVV_MODE_KERNEL, idx = 0;
	static const size_t len = 5000;

	fleet_open(&f, 1, 1);
	if (writevv_control(WRITEVV_SETMODE, &m) != -1 || errno != ENOENT)
		return 1;
	if (!strstr(writevv_kernel_status(), "writevv-loader load"))
		return 2;
	m = WRITEVV_MODE_DEFAULT;
	if (writevv_control(WRITEVV_SETMODE, &m) || writevv_control(WRITEVV_GETMODE, &m) ||
	    m != WRITEVV_MODE_IOURING)
		return 3; /* the default mode does not need the BPF program */
	fanout_check(&f, &idx, 1, &len, 1, 7);
	fleet_close(&f);
	return 0;
}

static int run_self(const char *arg, const char *name, const char *value);

/* Size of this process's sendfile-engine memfd: what the engine's last call
 * wrote into it (0 if it only exists), -1 if there is none. */
static long long memfd_size(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long long size = -1;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[288], link[128];
		struct stat st;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		if (!strncmp(link, "/memfd:writevv", 14) && !stat(path, &st))
			size = st.st_size;
	}
	closedir(d);
	return size;
}

/* 64 KiB calls in the default mode, each checked at the receivers; returns
 * memfd_size(): > 0 only if the sendfile engine ran one of them. */
static long long default_mode_64k_calls(int calls)
{
	struct tcp_fleet f;
	static const size_t lens[2] = { 40000, 25536 };
	int idx[3] = { 0, 1, 2 }, m = WRITEVV_MODE_DEFAULT, i;

	fleet_open(&f, 3, 1);
	assert_int_equal(writevv_control(WRITEVV_SETMODE, &m), 0);
	for (i = 0; i < calls; i++)
		fanout_check(&f, idx, 3, lens, 2, 100 + (unsigned)i);
	fleet_close(&f);
	return memfd_size();
}

/* The default mode measures both engines on a payload size before it
 * settles on one, with writev's results and bytes either way. */
static void test_default_tries_both(void **state)
{
	(void)state;
	assert_int_equal(default_mode_64k_calls(2 * (1 + 3)), 65536);
}

/* A fixed WRITEVV_SENDFILE_MIN replaces the learning (run in a child). */
static int fixed_threshold_child(void)
{
	return default_mode_64k_calls(20) > 0;
}

static void test_default_fixed_threshold(void **state)
{
	(void)state;
	assert_int_equal(run_self("--fixed-threshold", "WRITEVV_SENDFILE_MIN", "1000000"), 0);
	/* a negative number wraps around to a huge one: never */
	assert_int_equal(run_self("--fixed-threshold", "WRITEVV_SENDFILE_MIN", "-1"), 0);
	/* 0 means every call: the sendfile engine did run */
	assert_int_equal(run_self("--fixed-threshold", "WRITEVV_SENDFILE_MIN", "0"), 1);
}

static int run_self(const char *arg, const char *name, const char *value)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { "/proc/self/exe", (char *)arg, NULL };

		setenv(name, value, 1);
		execv("/proc/self/exe", argv);
		_exit(99);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_modes_not_loaded(void **state)
{
	(void)state;
	assert_int_equal(run_self("--not-loaded", "WRITEVV_PIN_DIR",
				  "/sys/fs/bpf/writevv-test-nothing-here"), 0);
}

/* The environment variable picks the initial mode. */
static void test_mode_from_env(void **state)
{
	(void)state;
	assert_int_equal(run_self("--print-mode", "WRITEVV_MODE", "userland"),
			 WRITEVV_MODE_USERLAND);
	assert_int_equal(run_self("--print-mode", "WRITEVV_MODE", "kernel"), WRITEVV_MODE_KERNEL);
	assert_int_equal(run_self("--print-mode", "WRITEVV_MODE", "iouring"), WRITEVV_MODE_IOURING);
	assert_int_equal(run_self("--print-mode", "WRITEVV_MODE", "default"), WRITEVV_MODE_IOURING);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes_loaded),
		cmocka_unit_test(test_modes_not_loaded),
		cmocka_unit_test(test_mode_from_env),
		cmocka_unit_test(test_default_tries_both),
		cmocka_unit_test(test_default_fixed_threshold),
	};

	if (argc > 1 && !strcmp(argv[1], "--print-mode")) {
		int m = -1;

		writevv_control(WRITEVV_GETMODE, &m);
		return m;
	}
	if (argc > 1 && !strcmp(argv[1], "--not-loaded"))
		return not_loaded_child();
	if (argc > 1 && !strcmp(argv[1], "--fixed-threshold"))
		return fixed_threshold_child();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
