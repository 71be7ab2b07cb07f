/* SPDX-License-Identifier: MIT */
/*
 * Other local users attack the loader's pin tree (issue 10, item 3). Run as
 * root; the attackers are processes switched to a uid and gid nobody uses,
 * outside the group (made here) that the victim's pins are loaded for. The
 * attacks are filesystem attacks only (mkdir, symlink, rename in bpffs):
 * they need no bpf().
 *
 *  - the bpffs root the loader mounts is 0755, and an existing mount that
 *    anybody may rename entries in is refused;
 *  - squatting: the pin directory's name made first by the attacker (a
 *    directory, or a symlink to another load), its temporary name, or its
 *    name before an unload: load still succeeds, and nothing the attacker
 *    made is deleted;
 *  - the symlink swap during the stale-directory sweep of an unrelated
 *    unload: an aged temp-style directory is swapped for a symlink to the
 *    victim's pin directory at the point of the swap, found by inotify
 *    (IN_OPEN of the directory) and, in the loader's test build, held there
 *    by its hook until the swap is done. The victim's program, maps and
 *    rings must still exist and carry a kernel-mode writevv afterwards.
 *
 * WVV_ATTACK_REAL_AGE=1 ages the leftovers for real (61 s each) instead of
 * using the test build's WRITEVV_LOADER_TEST_STALE_AGE, so that a loader
 * without the hooks (an older build, WRITEVV_LOADER=...) can be run through
 * the same attacks; WVV_ATTACK_ONLY=pattern runs only some of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

#define BPF_MAGIC 0xcafe4a11
#define SWEEP_ENTRIES 20000
#define NAME_LEN 384        /* our pin directory names (base is shorter) */  /* a leftover's rings: reading them takes a while */

static char base[256];     /* the suite's pin directory: our names start with it */
static char victim[NAME_LEN];   /* another load, which no attack may touch */
static char group[32];
static gid_t group_gid;
static uid_t att_uid;
static gid_t att_gid;
static bool group_made, real_age;

/* ---- small tools -------------------------------------------------------- */

static void name_of(char *out, const char *suffix)
{
	snprintf(out, NAME_LEN, "%s-%s", base, suffix);
}

/* Run a shell command; its output (stdout and stderr) in out. Exit status. */
static int run(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[8192];
	size_t n = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out && outlen) {
		n = fread(out, 1, outlen - 1, p);
		out[n] = '\0';
	}
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	if (out)
		printf("$ %s\n%s", cmd, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int loader(char *out, size_t outlen, const char *env, const char *args)
{
	return run(out, outlen, "%s %s %s", env ? env : "", loader_path(), args);
}

/* Become the attacker: an unused uid and gid, no supplementary groups. */
static void become_attacker(void)
{
	if (setgroups(0, NULL) || setresgid(att_gid, att_gid, att_gid) ||
	    setresuid(att_uid, att_uid, att_uid))
		_exit(100);
}

/* Run fn(arg) as the attacker in a child. Its exit status (0 = done). */
static int as_attacker(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		become_attacker();
		_exit(fn(arg));
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A pid that no process has (a child that has exited and been reaped). */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

/* The victim's pins are all there, and a kernel-mode writevv through them
 * reaches every receiver through the BPF program (re-run of this binary). */
static void assert_victim_intact(void)
{
	static const char *const pins[] = {
		WVV_PIN_PROG, WVV_PIN_CTL, WVV_PIN_TARGETS, WVV_PIN_RINGS,
		WVV_PIN_SLOT_STATE, WVV_PIN_STATS, WVV_PIN_CONFIG,
		WVV_PIN_RING_DIR "/0", WVV_PIN_RING_DIR "/1",
	};
	char path[PATH_MAX], out[4096];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", victim, pins[i]);
		if (lstat(path, &st))
			fail_msg("the victim's %s is gone: %s", path, strerror(errno));
		assert_true(S_ISREG(st.st_mode));
	}
	assert_int_equal(run(out, sizeof(out), "WRITEVV_PIN_DIR=%s /proc/%d/exe --victim-check",
			     victim, (int)getpid()), 0);
}

/* A fresh victim load (so that each attack is judged on its own). */
static void reload_victim(void)
{
	char args[NAME_LEN + 128];

	snprintf(args, sizeof(args), "unload --pin-dir %s", victim);
	loader(NULL, 0, NULL, args);
	snprintf(args, sizeof(args), "load --group %s --slots 2 --targets 64 --pin-dir %s", group, victim);
	assert_int_equal(loader(NULL, 0, NULL, args), 0);
}

static bool exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

/* The one entry of the bpffs root whose name starts with prefix, in out. */
static int find_entry(const char *prefix, char *out)
{
	char cmd[PATH_MAX + 64];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ls -d %s* 2>/dev/null", prefix);
	p = popen(cmd, "r");
	while (p && fgets(out, PATH_MAX, p))
		n++;
	if (p)
		pclose(p);
	if (n == 1)
		out[strcspn(out, "\n")] = '\0';
	return n;
}

static void rm_rf(const char *path)
{
	run(NULL, 0, "rm -rf '%s'", path);
}

static void rm_rf_prefix(const char *prefix)
{
	run(NULL, 0, "rm -rf '%s'*", prefix);
}

/* ---- (c) the bpffs root ----------------------------------------------- */

struct ns_result {
	int load_rc;
	mode_t root_mode;
	int attacker_mkdir_errno;
};

static int try_mkdir(void *path)
{
	return mkdir(path, 0755) ? errno : 0;
}

/* In a mount namespace of its own, with a bpffs of mode 'mode' (or none:
 * tmpfs) at /sys/fs/bpf, run load; results through a pipe. */
static void load_in_namespace(const char *fstype, mode_t mode, struct ns_result *r, char *out,
			      size_t outlen)
{
	int pfd[2];
	pid_t pid;
	struct stat st;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ns_result res = { -1, 0, -1 };
		struct statfs sf;

		close(pfd[0]);
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("none", "/sys/fs/bpf", fstype, 0, NULL) || chmod("/sys/fs/bpf", mode))
			_exit(90);
		res.load_rc = loader(out, outlen, NULL,
				     "load --pin-dir /sys/fs/bpf/writevv-loadersafe --slots 1 --targets 16");
		if (statfs("/sys/fs/bpf", &sf) || (uint32_t)sf.f_type != BPF_MAGIC || stat("/sys/fs/bpf", &st))
			_exit(91);
		res.root_mode = st.st_mode & 07777;
		res.attacker_mkdir_errno = as_attacker(try_mkdir, "/sys/fs/bpf/squatter");
		if (write(pfd[1], &res, sizeof(res)) != sizeof(res) ||
		    write(pfd[1], out, strlen(out)) < 0)
			_exit(92);
		_exit(0);  /* the namespace and its bpffs go with us */
	}
	close(pfd[1]);
	memset(r, 0, sizeof(*r));
	assert_int_equal(read(pfd[0], r, sizeof(*r)), sizeof(*r));
	{
		size_t got = 0;
		ssize_t n;

		while (got + 1 < outlen && (n = read(pfd[0], out + got, outlen - 1 - got)) > 0)
			got += (size_t)n;
		out[got] = '\0';
	}
	close(pfd[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_mount_mode(void **state)
{
	struct ns_result r;
	char out[4096];

	(void)state;
	/* Nothing mounted (tmpfs hides the real bpffs): the loader mounts it. */
	load_in_namespace("tmpfs", 0755, &r, out, sizeof(out));
	printf("%s", out);
	assert_int_equal(r.load_rc, 0);
	assert_non_null(strstr(out, "mounted it at /sys/fs/bpf"));
	printf("bpffs root mounted by the loader: mode %04o, attacker's mkdir: %s\n",
	       (unsigned int)r.root_mode, strerror(r.attacker_mkdir_errno));
	assert_int_equal(r.root_mode & 0022, 0);  /* not the kernel's default 1777 */
	assert_int_equal(r.attacker_mkdir_errno, EACCES);
}

static void test_unsafe_mount_refused(void **state)
{
	struct ns_result r;
	char out[4096];

	(void)state;
	/* Writable by all and not sticky: anyone could rename the pins away. */
	load_in_namespace("bpf", 0777, &r, out, sizeof(out));
	printf("%s", out);
	assert_int_not_equal(r.load_rc, 0);
	assert_non_null(strstr(out, "other users could rename the pins away"));
	/* 1777, the kernel's default: users can make names, not move ours. */
	load_in_namespace("bpf", 01777, &r, out, sizeof(out));
	printf("%s", out);
	assert_int_equal(r.load_rc, 0);
	assert_int_equal(r.attacker_mkdir_errno, 0);
}

static int make_dir_of_attacker(void *path)
{
	return mkdir(path, 0755) ? errno : 0;
}

static void test_untrusted_parent(void **state)
{
	char dir[NAME_LEN], sub[NAME_LEN + 16], out[4096], args[PATH_MAX + 64];

	(void)state;
	/* A pin directory inside the attacker's directory: the attacker could
	 * rename it away and put its own in its place. Refused, nothing made. */
	name_of(dir, "ud");
	assert_int_equal(as_attacker(make_dir_of_attacker, dir), 0);
	snprintf(sub, sizeof(sub), "%s/pins", dir);
	snprintf(args, sizeof(args), "load --slots 1 --targets 16 --pin-dir %s", sub);
	assert_int_not_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_non_null(strstr(out, "other users could rename the pins away"));
	assert_false(exists(sub));
	rm_rf_prefix(dir);
}

/* ---- (b) squatting ---------------------------------------------------- */

static int squat_dir(void *path)
{
	char sub[PATH_MAX];

	snprintf(sub, sizeof(sub), "%s/mine", (const char *)path);
	return mkdir(path, 0755) || mkdir(sub, 0755) ? errno : 0;
}

static int squat_symlink(void *path)
{
	return symlink(victim, path) ? errno : 0;
}

static void assert_pin_dir_is_ours(const char *dir)
{
	struct stat st;
	char path[PATH_MAX];

	assert_int_equal(lstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, group_gid);
	assert_int_equal(st.st_mode & 07777, 0750);
	snprintf(path, sizeof(path), "%s/%s", dir, WVV_PIN_CONFIG);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
}

static void test_squat_pin_dir(void **state)
{
	char dir[NAME_LEN], aside[PATH_MAX], prefix[NAME_LEN + 16], path[PATH_MAX + 8], out[8192];
	char args[PATH_MAX + 128];
	struct stat st;

	(void)state;
	/* A directory of the attacker's at the name, with something in it. */
	name_of(dir, "sq");
	assert_int_equal(as_attacker(squat_dir, dir), 0);
	snprintf(args, sizeof(args), "load --group %s --slots 2 --targets 64 --pin-dir %s", group, dir);
	assert_int_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_pin_dir_is_ours(dir);
	snprintf(prefix, sizeof(prefix), "%s-squatted-", dir);
	assert_int_equal(find_entry(prefix, aside), 1);
	snprintf(path, sizeof(path), "%s/mine", aside);
	assert_int_equal(lstat(path, &st), 0);  /* the attacker's, untouched */
	assert_int_equal(lstat(aside, &st), 0);
	assert_int_equal(st.st_uid, att_uid);
	snprintf(args, sizeof(args), "unload --pin-dir %s", dir);
	assert_int_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_false(exists(dir));
	assert_true(exists(path));
	rm_rf(aside);
}

static void test_squat_symlink(void **state)
{
	char dir[NAME_LEN], aside[PATH_MAX], prefix[NAME_LEN + 16], out[8192];
	char args[PATH_MAX + 128];
	struct stat st;

	(void)state;
	/* A symlink to another load's pin directory at the name. */
	name_of(dir, "sl");
	assert_int_equal(as_attacker(squat_symlink, dir), 0);
	snprintf(args, sizeof(args), "status --pin-dir %s", dir);
	assert_int_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_non_null(strstr(out, "not loaded"));  /* not the load behind it */
	snprintf(args, sizeof(args), "load --group %s --slots 2 --targets 64 --pin-dir %s", group, dir);
	assert_int_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_pin_dir_is_ours(dir);
	snprintf(prefix, sizeof(prefix), "%s-squatted-", dir);
	assert_int_equal(find_entry(prefix, aside), 1);
	assert_int_equal(lstat(aside, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	snprintf(args, sizeof(args), "unload --pin-dir %s", dir);
	assert_int_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_victim_intact();
	rm_rf(aside);
}

/* Before any load at the name, an attacker's symlink to another load, or
 * a directory of the attacker's, is not taken for pins by the library. */
static void test_library_refuses_squat(void **state)
{
	int (*const squat[])(void *) = { squat_symlink, squat_dir };
	char dir[NAME_LEN], out[4096];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(squat) / sizeof(squat[0]); i++) {
		name_of(dir, i ? "ld" : "ls");
		rm_rf(dir); /* a failed earlier run's */
		assert_int_equal(as_attacker(squat[i], dir), 0);
		assert_int_equal(run(out, sizeof(out), "WRITEVV_PIN_DIR=%s /proc/%d/exe --refused-check",
				     dir, (int)getpid()), 0);
		rm_rf(dir);
	}
	assert_victim_intact();
}

/* Re-run as "--refused-check": kernel mode is refused, and says why. */
static void test_refused_works(void **state)
{
	int m = WRITEVV_MODE_KERNEL;

	(void)state;
	assert_int_equal(writevv_control(WRITEVV_SETMODE, &m), -1);
	assert_int_equal(errno, EPERM);
	if (!strstr(writevv_kernel_status(), "not a writevv pin directory"))
		fail_msg("kernel status: %s", writevv_kernel_status());
}

/* Make the name and take it away again, as fast as possible, forever. */
static int squat_loop(void *path)
{
	for (;;) {
		if (!mkdir(path, 0755))
			rmdir(path);
	}
	return 0;
}

static void test_squat_race(void **state)
{
	char dir[NAME_LEN], out[8192], args[PATH_MAX + 128];
	int i, ok = 0;
	pid_t pid;

	(void)state;
	/* The squatter makes and removes the name in a loop while root loads:
	 * whenever the name is there, it is the squatter's. */
	name_of(dir, "sr");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		become_attacker();
		_exit(squat_loop(dir));
	}
	for (i = 0; i < 5; i++) {
		snprintf(args, sizeof(args), "load --slots 1 --targets 16 --pin-dir %s", dir);
		if (loader(out, sizeof(out), NULL, args) == 0)
			ok++;
		snprintf(args, sizeof(args), "unload --pin-dir %s", dir);
		loader(NULL, 0, NULL, args);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	rm_rf_prefix(dir);
	printf("%d of 5 loads succeeded against the squatter's loop\n", ok);
	assert_int_equal(ok, 5);
}

static int squat_temp(void *path)
{
	return mkdir(path, 0700) ? errno : 0;
}

static void test_squat_temp_name(void **state)
{
	char dir[NAME_LEN], tmp[PATH_MAX], args[PATH_MAX + 128];
	int go[2], st;
	pid_t pid;
	char c;

	(void)state;
	/* The loader's temporary name, made first: its pid is the name. */
	name_of(dir, "tq");
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(90);
		execl(loader_path(), loader_path(), "load", "--slots", "2", "--targets", "64",
		      "--pin-dir", dir, (char *)NULL);
		_exit(91);
	}
	close(go[0]);
	snprintf(tmp, sizeof(tmp), "%s-tmp-%d", dir, (int)pid);
	assert_int_equal(as_attacker(squat_temp, tmp), 0);
	assert_int_equal(write(go[1], "x", 1), 1);
	close(go[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(exists(tmp));
	snprintf(args, sizeof(args), "unload --pin-dir %s", dir);
	assert_int_equal(loader(NULL, 0, NULL, args), 0);
	assert_true(exists(tmp));
	rm_rf(tmp);
}

static void test_unload_leaves_foreign(void **state)
{
	char dir[NAME_LEN], path[PATH_MAX], out[4096], args[PATH_MAX + 64];
	struct stat st;

	(void)state;
	/* unload of a name the attacker made, empty or not: not a loader's,
	 * so "not loaded", and not deleted. */
	name_of(dir, "uf");
	assert_int_equal(as_attacker(squat_temp, dir), 0);
	snprintf(args, sizeof(args), "unload --pin-dir %s", dir);
	assert_int_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_int_equal(lstat(dir, &st), 0);
	assert_int_equal(st.st_uid, att_uid);
	assert_non_null(strstr(out, "not loaded"));
	rm_rf(dir);
	assert_int_equal(as_attacker(squat_dir, dir), 0);
	assert_int_equal(loader(out, sizeof(out), NULL, args), 0);
	assert_non_null(strstr(out, "not loaded"));
	snprintf(path, sizeof(path), "%s/mine", dir);
	assert_int_equal(lstat(path, &st), 0);
	rm_rf(dir);
}

/* ---- (a) the symlink swap during the sweep ------------------------------ */

struct swap {
	char cand[NAME_LEN + 32]; /* the aged temp-style directory */
	char fifos[PATH_MAX];   /* pause and resume of the test hook */
	int ready[2], done[2];
};

/*
 * The swapper: waits until the loader opens the candidate (IN_OPEN) or
 * its test hook stops the sweep (pause FIFO), then moves the candidate
 * away and puts a symlink to the victim's pin directory in its place;
 * then lets the hook go on (an older loader has none: then it blocks
 * here until killed).
 */
static int swapper(void *arg)
{
	struct swap *s = arg;
	char moved[PATH_MAX + 8], path[PATH_MAX + 16];
	struct pollfd p[2];
	int fd;

	p[0].fd = inotify_init1(IN_CLOEXEC);
	snprintf(path, sizeof(path), "%s/pause", s->fifos);
	p[1].fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (p[0].fd < 0 || p[1].fd < 0 || inotify_add_watch(p[0].fd, s->cand, IN_OPEN) < 0)
		return 10;
	p[0].events = p[1].events = POLLIN;
	if (write(s->ready[1], "r", 1) != 1)
		return 11;
	if (poll(p, 2, -1) <= 0)
		return 12;
	snprintf(moved, sizeof(moved), "%s-moved", s->cand);
	if (rename(s->cand, moved) || symlink(victim, s->cand))
		return 13;
	if (write(s->done[1], p[0].revents ? "i" : "h", 1) != 1)
		return 14;
	snprintf(path, sizeof(path), "%s/resume", s->fifos);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return 0;
}

/* Start the swapper (as the attacker or as root); its pid. */
static pid_t start_swapper(struct swap *s, bool attacker)
{
	char path[PATH_MAX + 16], c;
	pid_t pid;

	snprintf(s->fifos, sizeof(s->fifos), "/tmp/wvv-loadersafe-XXXXXX");
	assert_non_null(mkdtemp(s->fifos));
	assert_int_equal(chmod(s->fifos, 0755), 0);
	snprintf(path, sizeof(path), "%s/pause", s->fifos);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(chmod(path, 0666), 0);
	snprintf(path, sizeof(path), "%s/resume", s->fifos);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(pipe(s->ready), 0);
	assert_int_equal(pipe2(s->done, O_NONBLOCK), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (attacker)
			become_attacker();
		_exit(swapper(s));
	}
	close(s->ready[1]);
	close(s->done[1]);
	assert_int_equal(read(s->ready[0], &c, 1), 1);
	close(s->ready[0]);
	return pid;
}

/* unload an unrelated, unloaded name while the swapper waits; what the
 * swapper did ('i' after IN_OPEN, 'h' at the hook, 0 nothing). */
static char unload_during_swap(const char *unload_dir, struct swap *s, pid_t swapper_pid)
{
	char env[PATH_MAX + 128], args[PATH_MAX + 32], out[8192], what = 0;

	if (real_age) {
		printf("ageing the leftover for 61 s\n");
		sleep(61);
	}
	snprintf(env, sizeof(env), "WRITEVV_LOADER_TEST_PAUSE=%s%s", s->fifos,
		 real_age ? "" : " WRITEVV_LOADER_TEST_STALE_AGE=0");
	snprintf(args, sizeof(args), "unload --pin-dir %s", unload_dir);
	assert_int_equal(loader(out, sizeof(out), env, args), 0);
	if (read(s->done[0], &what, 1) != 1)
		what = 0;
	kill(swapper_pid, SIGKILL);
	waitpid(swapper_pid, NULL, 0);
	close(s->done[0]);
	rm_rf(s->fifos);
	printf("swap: %s\n", what == 'i' ? "done when the loader opened the directory"
			     : what == 'h' ? "done at the loader's test hook" : "not done (never reached)");
	return what;
}

struct mkcand {
	const char *path;
	int n;
};

/* The candidate: a directory with rings/ of n digit-named subdirectories. */
static int make_candidate(void *arg)
{
	const struct mkcand *m = arg;
	char path[PATH_MAX + 32];
	int i;

	if (mkdir(m->path, 0755))
		return errno;
	snprintf(path, sizeof(path), "%s/%s", m->path, WVV_PIN_RING_DIR);
	if (mkdir(path, 0755))
		return errno;
	for (i = 0; i < m->n; i++) {
		snprintf(path, sizeof(path), "%s/%s/%d", m->path, WVV_PIN_RING_DIR, i);
		if (mkdir(path, 0755))
			return errno;
	}
	return 0;
}

/* A fresh victim load; unload_dir gets a name of its own (tag), s the name
 * of a dead loader's leftover beside it. */
static void sweep_swap_setup(char *unload_dir, const char *tag, struct swap *s)
{
	reload_victim();
	name_of(unload_dir, tag);
	memset(s, 0, sizeof(*s));
	snprintf(s->cand, sizeof(s->cand), "%s-tmp-%d", unload_dir, (int)dead_pid());
}

static void test_sweep_swap_by_attacker(void **state)
{
	char unload_dir[NAME_LEN];
	struct mkcand m;
	struct swap s;
	pid_t pid;

	(void)state;
	/*
	 * The attacker's own aged directory with a dead loader's name, and
	 * rings/ big enough that an old sweep, which followed names, was still
	 * reading it when the swapper (woken by IN_OPEN) put the symlink in
	 * place: it then deleted the victim's pins through the symlink. The
	 * sweep now never opens another user's directory, so the swap point
	 * is never reached ("not done"): what counts is that the victim and
	 * the attacker's directory are both intact.
	 */
	sweep_swap_setup(unload_dir, "au", &s);
	m.path = s.cand;
	m.n = SWEEP_ENTRIES;
	assert_int_equal(as_attacker(make_candidate, &m), 0);
	pid = start_swapper(&s, true);
	unload_during_swap(unload_dir, &s, pid);
	assert_victim_intact();
	/* and the attacker's directory was not the loader's to delete */
	assert_true(exists(s.cand));
	rm_rf_prefix(s.cand);
}

static void test_sweep_swap_after_checks(void **state)
{
	char unload_dir[NAME_LEN], path[PATH_MAX + 32], moved[PATH_MAX + 8], link[PATH_MAX];
	struct swap s;
	pid_t pid;
	int fd, i;
	ssize_t n;

	(void)state;
	/*
	 * A real dead loader's leftover (root's, pins and rings), so that the
	 * sweep passes all its checks; then the swap, as if the attacker could
	 * rename root's entries (it cannot in a sticky or 0755 directory; this
	 * is the descriptors' own defence): the sweep must remove the pins of
	 * the directory it checked and nothing behind the symlink.
	 */
	sweep_swap_setup(unload_dir, "ar", &s);
	assert_int_equal(mkdir(s.cand, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", s.cand, WVV_PIN_RING_DIR);
	assert_int_equal(mkdir(path, 0700), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "wvv_config", 4, 8, 1, NULL);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/%s", s.cand, WVV_PIN_CONFIG);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	for (i = 0; i < SWEEP_ENTRIES; i++) {
		snprintf(path, sizeof(path), "%s/%s/%d", s.cand, WVV_PIN_RING_DIR, i);
		assert_int_equal(bpf_obj_pin(fd, path), 0);
	}
	close(fd);
	pid = start_swapper(&s, false);
	assert_int_not_equal(unload_during_swap(unload_dir, &s, pid), 0);
	assert_victim_intact();
	n = readlink(s.cand, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, victim);
	/* What it checked and removed was the moved directory, by descriptor. */
	snprintf(moved, sizeof(moved), "%s-moved", s.cand);
	snprintf(path, sizeof(path), "%s/%s", moved, WVV_PIN_CONFIG);
	assert_false(exists(path));
	snprintf(path, sizeof(path), "%s/%s", moved, WVV_PIN_RING_DIR);
	assert_false(exists(path));
	rm_rf(s.cand);
	rm_rf(moved);
}

/* ---- setup ------------------------------------------------------------ */

static void free_ids(void)
{
	unsigned int id;

	for (id = 61000 + (unsigned int)getpid() % 3000; getpwuid(id) || getgrgid(id); id++)
		;
	att_uid = id;
	att_gid = id;
}

static void remove_group(void)
{
	if (group_made)
		run(NULL, 0, "groupdel %s", group);
	group_made = false;
}

static int teardown(void **state)
{
	char args[PATH_MAX + 32];

	(void)state;
	snprintf(args, sizeof(args), "unload --pin-dir %s", victim);
	loader(NULL, 0, NULL, args);
	remove_group();
	return 0;
}

static int setup(void **state)
{
	const char *dir = getenv("WRITEVV_PIN_DIR");
	char args[PATH_MAX + 128], out[4096];
	struct group *g;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_loader_attacks must run as root\n");
		return -1;
	}
	real_age = getenv("WVV_ATTACK_REAL_AGE") && !strcmp(getenv("WVV_ATTACK_REAL_AGE"), "1");
	snprintf(base, sizeof(base), "%s", dir ? dir : WVV_PIN_DIR_DEFAULT);
	name_of(victim, "av");
	free_ids();
	snprintf(group, sizeof(group), "wvvls%d", (int)getpid());
	if (run(out, sizeof(out), "groupadd %s", group))
		return -1;
	group_made = true;
	atexit(remove_group);
	g = getgrnam(group);
	if (!g)
		return -1;
	group_gid = g->gr_gid;
	/* Leftovers of a killed earlier run. */
	snprintf(args, sizeof(args), "%s-", base);
	run(NULL, 0, "rm -rf %sa[ur]-* %ssq %ssq-* %ssl %ssl-* %stq %stq-* %suf %ssr* %sud*", args,
	    args, args, args, args, args, args, args, args, args);
	snprintf(args, sizeof(args), "unload --pin-dir %s", victim);
	loader(NULL, 0, NULL, args);
	snprintf(args, sizeof(args), "load --group %s --slots 2 --targets 64 --pin-dir %s", group, victim);
	if (loader(out, sizeof(out), NULL, args))
		return -1;
	printf("attacker uid %u gid %u, outside group %s (gid %u) of the victim load %s\n",
	       (unsigned int)att_uid, (unsigned int)att_gid, group, (unsigned int)group_gid, victim);
	return 0;
}

/* Re-run as "--victim-check": one kernel-mode writevv through the pins. */
static void test_victim_works(void **state)
{
	static const int idx[4] = { 0, 1, 2, 3 };
	static const size_t lens[3] = { 1000, 0, 3000 };
	struct wvv_stats a, b;
	struct tcp_fleet f;
	int m;

	(void)state;
	assert_int_equal(read_bpf_stats(&a), 0);
	must_set_mode(WRITEVV_MODE_KERNEL);
	fleet_open(&f, 4, 1);
	fanout_check(&f, idx, 4, lens, 3, 7);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_KERNEL);
	assert_int_equal(read_bpf_stats(&b), 0);
	assert_true(b.frames > a.frames);
	fleet_close(&f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mount_mode),
		cmocka_unit_test(test_unsafe_mount_refused),
		cmocka_unit_test(test_untrusted_parent),
		cmocka_unit_test(test_squat_pin_dir),
		cmocka_unit_test(test_squat_symlink),
		cmocka_unit_test(test_library_refuses_squat),
		cmocka_unit_test(test_squat_race),
		cmocka_unit_test(test_squat_temp_name),
		cmocka_unit_test(test_unload_leaves_foreign),
		cmocka_unit_test(test_sweep_swap_by_attacker),
		cmocka_unit_test(test_sweep_swap_after_checks),
	};
	const struct CMUnitTest check[] = {
		cmocka_unit_test(test_victim_works),
	};

	const struct CMUnitTest refused[] = {
		cmocka_unit_test(test_refused_works),
	};

	if (argc == 2 && !strcmp(argv[1], "--victim-check"))
		return cmocka_run_group_tests(check, NULL, NULL);
	if (argc == 2 && !strcmp(argv[1], "--refused-check"))
		return cmocka_run_group_tests(refused, NULL, NULL);
	if (getenv("WVV_ATTACK_ONLY"))  /* e.g. "test_sweep*" */
		cmocka_set_test_filter(getenv("WVV_ATTACK_ONLY"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
