/* SPDX-License-Identifier: MIT */
/* Test helpers: loopback TCP targets with receivers that check every byte. */
#ifndef WRITEVV_TEST_HELPERS_H
#define WRITEVV_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* A set of connected loopback TCP pairs: tx[i] is what writevv writes to,
 * rx[i] is the receiving end, drained by a background thread. */
struct tcp_fleet {
	int n;
	int *tx;
	int *rx;
	unsigned char **got; /* bytes received per target */
	size_t *got_len, *got_cap;
	int *rx_closed;
	void *priv;
};

/* Raise RLIMIT_NOFILE to at least 'need' (fails the test if impossible). */
void raise_nofile(unsigned long need);
int fleet_open(struct tcp_fleet *f, int n, int nodelay);
void fleet_close(struct tcp_fleet *f);
/* Start/stop the receiving thread (started by fleet_open). */
void fleet_pause(struct tcp_fleet *f);
void fleet_resume(struct tcp_fleet *f);
/* Wait until target i has received at least len bytes (timeout ms). 0 ok. */
int fleet_wait(struct tcp_fleet *f, int i, size_t len, int timeout_ms);
/* Forget what was received so far (all targets). */
void fleet_reset(struct tcp_fleet *f);

/* The pattern of call 'call': byte k. */
unsigned char pattern_byte(unsigned call, size_t k);
void pattern_fill(unsigned char *buf, size_t len, unsigned call, size_t start);
/* Check buf[0..len) against the pattern from offset 'start'. */
int pattern_check(const unsigned char *buf, size_t len, unsigned call, size_t start);

/* Set the writevv mode or fail the test. */
void must_set_mode(int mode);
/* The engine under test: $WVV_TEST_ENGINE = kernel (the default) | iouring |
 * sendfile | userland | default (the default mode). Sets it (failing the test if unavailable: no silent skip) and
 * checks that GETMODE reports it. */
int use_test_engine(void);
int test_engine(void);
/* Path of the loader binary (WRITEVV_LOADER env, set by ctest). */
const char *loader_path(void);
/* Run "loader ARGS"; the loader takes its pin directory from
 * $WRITEVV_PIN_DIR like the library. Returns its exit status. */
int run_loader(const char *args);

/* Descriptors this process has open (the library's own must stay flat). */
int open_fd_count(void);

/* Built with AddressSanitizer (gcc or clang)? */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(UNDER_ASAN)
#define UNDER_ASAN 1
#endif

/* Sum over CPUs of the program's counters (pinned wvv_stats). 0 or -errno. */
struct wvv_stats;
int read_bpf_stats(struct wvv_stats *out);

/*
 * Write 'total' bytes of pattern 'call' split into iovecs of the given
 * lengths (zero allowed) to fleet targets idx[0..n) with writevv, check the
 * results and the bytes each receiver got (in order, appended to what it
 * already had at 'base'). Fails the test on any difference.
 */
void fanout_check(struct tcp_fleet *f, const int *idx, int n, const size_t *lens, int nlens,
		  unsigned call);
/* Wait until TCP socket fd has been reset by its peer's RST (POLLERR):
 * the kernel processes it in a softirq that a loaded machine can run late,
 * and no fixed delay covers that. Fails the test after 20 s (a hang). */
void wait_reset(int fd);
/* Stop / restart draining one receiver (its bytes then pile up). */
void fleet_stop_reading(struct tcp_fleet *f, int i);
void fleet_start_reading(struct tcp_fleet *f, int i);

/*
 * A sink: a background thread that reads every byte arriving at a set of
 * receiving descriptors (pipes, FIFOs, UNIX or UDP sockets, TCP), so that no
 * writer ever depends on a buffer being big enough. For datagram receivers
 * each datagram is logged as its 4-byte length then its bytes, so that
 * boundaries are compared too.
 */
struct sink;
struct sink *sink_new(void);
/* Add receiver rfd (made nonblocking); wfd is the writing end when it is a
 * socket (its send queue is waited for by sink_settle), else -1. Returns the
 * receiver's index. */
int sink_add(struct sink *s, int rfd, int wfd, int dgram);
/* Wait until every byte written so far has been read (fails the test after
 * 20 s). */
void sink_settle(struct sink *s);
/* Bytes received so far by receiver i (valid until the next sink call). */
const unsigned char *sink_bytes(struct sink *s, int i, size_t *len);
/* Forget what every receiver got so far. */
void sink_forget(struct sink *s);
/* How many receivers were added. */
int sink_count(struct sink *s);
/* Stop the thread, close nothing, free. */
void sink_free(struct sink *s);

/* Exit status of a test that cannot run here (ctest SKIP_RETURN_CODE, as
 * liburing's tests use it). Every integration test linked with the helpers
 * exits with it before main when it is not root or the kernel has no BPF
 * sockmap support, saying why; .ci/run, as root, fails on any skip. */
#define TEST_SKIP 77

#endif
