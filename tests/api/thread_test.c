/* SPDX-License-Identifier: MIT */
/* Helpers shared by the threaded-handle tests (see thread_test.h). */
#include "thread_test.h"

#include "minitest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "tuntest.h"

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double ms_since(uint64_t t0_ns, uint64_t t1_ns)
{
    return t1_ns >= t0_ns ? (double)(t1_ns - t0_ns) / 1e6 : -(double)(t0_ns - t1_ns) / 1e6;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *err_name(long r)
{
    return r >= 0 ? "ok" : jktcp_strerror((int)r);
}

/* Failures recorded by worker threads: JT_ASSERT belongs to the test thread. */
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fail_count;
static char fail_msg[512];

void tfail(int line, const char *fmt, ...)
{
    pthread_mutex_lock(&fail_mu);
    if (atomic_fetch_add(&fail_count, 1) == 0) {
        int n = snprintf(fail_msg, sizeof fail_msg, "line %d: ", line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fail_msg + n, sizeof fail_msg - (size_t)n, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&fail_mu);
}

void assert_no_thread_failures(void)
{
    char msg[sizeof fail_msg];
    pthread_mutex_lock(&fail_mu);
    int n = atomic_load(&fail_count);
    memcpy(msg, fail_msg, sizeof msg);
    pthread_mutex_unlock(&fail_mu);
    JT_ASSERT(n == 0, "%d failure(s) in worker threads, first: %s", n, msg);
}

/* Join with a deadline: false if the thread is still running (a hang). */
bool join_within(pthread_t th, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

void start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(th, NULL, fn, arg);
    JT_ASSERT(rc == 0, "pthread_create: %s", strerror(rc));
}

void join_or_fail(pthread_t th, int ms, const char *what)
{
    JT_ASSERT(join_within(th, ms), "%s: thread still running after %d ms (hang)", what, ms);
}

/* Read exactly n bytes: n, a negative errno, or -ENODATA at a premature EOF. */
ssize_t read_exact(jktcp_stream s, void *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = jktcp_stream_read(s, (uint8_t *)buf + got, n - got, timeout_ms);
        if (r == 0)
            return -ENODATA;
        if (r < 0)
            return r;
        got += (size_t)r;
    }
    return (ssize_t)n;
}

/* Resident set size in bytes (/proc/self/statm). */
long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, res = 0;
    int n = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    return n == 2 ? res * sysconf(_SC_PAGESIZE) : -1;
}

double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* Namespace, TUN, handle                                                   */
/* ------------------------------------------------------------------------ */

void tt_up(struct tt *t, int family, unsigned mtu)
{
    memset(t, 0, sizeof *t);
    t->family = family;
    t->mtu = mtu;
    t->tun.fd = -1;
    jkt_tun_up_or_skip("thread", "jkt0", mtu, 0, &t->tun);
}

/* A handle on the TUN fd; peer NULL = the kernel's address. Buffer sizes
 * 0 keep the defaults. */
jktcp_handle tt_handle(struct tt *t, const char *peer, long sndbuf, long rcvbuf)
{
    jktcp_transport *tr = NULL;
    jktcp_adapter *a = NULL;
    jktcp_handle h = {0};
    int rc = jktcp_transport_fd(t->tun.fd, JKTCP_FRAMING_PACKET, &tr);
    JT_ASSERT(rc == 0, "jktcp_transport_fd: %s", jktcp_strerror(rc));
    rc = jktcp_adapter_new(tr, jkt_local_ip(t->family), peer ? peer : jkt_kernel_ip(t->family),
                           &a);
    JT_ASSERT(rc == 0, "jktcp_adapter_new: %s", jktcp_strerror(rc));
    rc = jktcp_adapter_set_mtu(a, t->mtu);
    JT_ASSERT(rc == 0, "set_mtu(%u): %s", t->mtu, jktcp_strerror(rc));
    if (sndbuf > 0) {
        rc = jktcp_adapter_set_option(a, JKTCP_OPT_SNDBUF, sndbuf);
        JT_ASSERT(rc == 0, "SNDBUF: %s", jktcp_strerror(rc));
    }
    if (rcvbuf > 0) {
        rc = jktcp_adapter_set_option(a, JKTCP_OPT_RCVBUF, rcvbuf);
        JT_ASSERT(rc == 0, "RCVBUF: %s", jktcp_strerror(rc));
    }
    if (t->busy_poll_us) {
        rc = jktcp_adapter_set_option(a, JKTCP_OPT_BUSY_POLL_US,
                                      t->busy_poll_us == TT_BUSY_POLL_OFF ? 0 : t->busy_poll_us);
        JT_ASSERT(rc == 0, "BUSY_POLL_US: %s", jktcp_strerror(rc));
    }
    rc = jktcp_handle_start(a, &h);
    JT_ASSERT(rc == 0, "jktcp_handle_start: %s", jktcp_strerror(rc));
    const char *pcap = getenv("JKT_THREAD_PCAP"); /* debugging: capture every frame */
    if (pcap && *pcap)
        jktcp_handle_pcap(h, pcap);
    t->h = h;
    return h;
}

void tt_close_handle(struct tt *t, int linger_ms)
{
    if (t->h.id) {
        jktcp_handle h = t->h;
        t->h = (jktcp_handle){0};
        int rc = jktcp_handle_close(h, linger_ms);
        JT_ASSERT(rc == 0, "jktcp_handle_close: %s", jktcp_strerror(rc));
    }
}

void tt_down(struct tt *t)
{
    tt_close_handle(t, 1000);
    jkt_tun_close(&t->tun);
}

void server_up(struct tt *t, struct jkt_server *s, int kind)
{
    s->kind = kind;
    s->family = t->family;
    int rc = jkt_server_start(s);
    JT_ASSERT(rc == 0, "kernel server: %s", strerror(-rc));
}

jktcp_stream connect_ok(jktcp_handle h, uint16_t port)
{
    jktcp_stream s = {0};
    int rc = jktcp_handle_connect(h, port, 5000, &s);
    JT_ASSERT(rc == 0 && s.id, "jktcp_handle_connect(%u): %s", port, jktcp_strerror(rc));
    return s;
}

/* A kernel listening socket on the kernel-side address; *port 0 picks one. */
int kernel_listen(int family, uint16_t *port, int backlog)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(family, jkt_kernel_ip(family), *port, &ss);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}
