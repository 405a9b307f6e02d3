/* SPDX-License-Identifier: MIT */
/*
 * What the threaded-handle tests (tests/api/test_thread_*.c, suites `thread`
 * and `thread_close`) share: limits, failure recording from worker threads,
 * thread and clock helpers, and the kernel rig: a handle on a TUN device in
 * a private network namespace (netns.h: kernel 198.18.0.1 / fd00::1, jktcp
 * 198.18.0.2 / fd00::2; the connect-hang test also uses 198.18.0.77, an
 * unowned address of that private subnet) with kernel servers (kserver.h).
 *
 * Built on tests/support/minitest.h like its users, so it runs under
 * Criterion and under ThreadSanitizer (`make test-tsan`, -DJKT_PLAIN). Only
 * the test thread asserts; worker threads record failures (tfail / TCHECK)
 * and the test asserts on them after joining.
 */
#ifndef JKT_THREAD_TEST_H
#define JKT_THREAD_TEST_H

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define KiB 1024u
#define MiB (1024u * 1024u)
#define IO_TIMEOUT 20000 /* ms a single blocking call may stall before a test fails */

/* How long a blocked call may take to notice a close: the requirement is
 * 100 ms; ThreadSanitizer (plain runner) gets slack. */
#ifdef JKT_PLAIN
#define WAKE_LIMIT_MS 500
#define SLOW_FACTOR 5
#else
#define WAKE_LIMIT_MS 100
#define SLOW_FACTOR 1
#endif

/* ---- small helpers ----------------------------------------------------- */

uint64_t now_ns(void);
double ms_since(uint64_t t0_ns, uint64_t t1_ns);
void sleep_ms(int ms);
const char *err_name(long r);

/* Failures recorded by worker threads: JT_ASSERT belongs to the test
 * thread. tfail records the first (with its line); the test thread calls
 * assert_no_thread_failures after joining. */
__attribute__((format(printf, 2, 3))) void tfail(int line, const char *fmt, ...);
void assert_no_thread_failures(void);

/* In a worker thread returning void *: record and leave the thread. */
#define TCHECK(cond, ...)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            tfail(__LINE__, __VA_ARGS__);                                                        \
            return NULL;                                                                         \
        }                                                                                        \
    } while (0)
/* Record and carry on. */
#define TEXPECT(cond, ...)                                                                       \
    do {                                                                                         \
        if (!(cond))                                                                             \
            tfail(__LINE__, __VA_ARGS__);                                                        \
    } while (0)

/* Join with a deadline: false if the thread is still running (a hang). */
bool join_within(pthread_t th, int ms);
void start_thread(pthread_t *th, void *(*fn)(void *), void *arg);
void join_or_fail(pthread_t th, int ms, const char *what);
/* Read exactly n bytes: n, a negative errno, or -ENODATA at a premature EOF. */
ssize_t read_exact(jktcp_stream s, void *buf, size_t n, int timeout_ms);
/* Resident set size in bytes (/proc/self/statm). */
long rss_bytes(void);
/* CPU seconds (user + system) of the whole process. */
double cpu_seconds(void);

/* ---- namespace, TUN, handle -------------------------------------------- */

#define TT_BUSY_POLL_OFF (-1L)

struct tt {
    int family;
    unsigned mtu;
    struct jkt_tun tun;
    jktcp_handle h;
    long busy_poll_us; /* set before tt_handle: JKTCP_OPT_BUSY_POLL_US (0: the default,
                          TT_BUSY_POLL_OFF: 0) */
};

/* Enter a namespace with TUN "jkt0" at mtu (or skip the test). */
void tt_up(struct tt *t, int family, unsigned mtu);
/* A handle on the TUN fd; peer NULL = the kernel's address. Buffer sizes
 * 0 keep the defaults. */
jktcp_handle tt_handle(struct tt *t, const char *peer, long sndbuf, long rcvbuf);
void tt_close_handle(struct tt *t, int linger_ms);
void tt_down(struct tt *t);
/* Start a kernel server of this kind on t's family (asserts). */
void server_up(struct tt *t, struct jkt_server *s, int kind);
/* A connected stream to the kernel's port (asserts). */
jktcp_stream connect_ok(jktcp_handle h, uint16_t port);
/* A kernel listening socket on the kernel-side address; *port 0 picks one. */
int kernel_listen(int family, uint16_t *port, int backlog);

#endif
