/* SPDX-License-Identifier: MIT */
/*
 * Suites `thread` and `thread_close`: the threaded handle (jktcp_handle,
 * jktcp_stream, jktcp_listener) used from many threads at once, against the
 * Linux kernel's TCP in a private network namespace over TUN (tests/netns.h:
 * kernel 198.18.0.1 / fd00::1, jktcp 198.18.0.2 / fd00::2; the connect-hang
 * test also uses 198.18.0.77, an unowned address of that private subnet).
 *
 * Written against tests/minitest.h so the same source runs under Criterion
 * (`make test`) and under ThreadSanitizer with the plain runner
 * (`make test-tsan`, -DJKT_PLAIN). Only the test thread asserts; worker
 * threads record failures (tfail / TCHECK) and the test asserts on them
 * after joining.
 *
 * Skipped (not failed) without network namespaces or /dev/net/tun.
 */
#include "minitest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "rig.h"
#include "tuntest.h"

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

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ms_since(uint64_t t0_ns, uint64_t t1_ns)
{
    return t1_ns >= t0_ns ? (double)(t1_ns - t0_ns) / 1e6 : -(double)(t0_ns - t1_ns) / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *err_name(long r)
{
    return r >= 0 ? "ok" : jktcp_strerror((int)r);
}

/* Failures recorded by worker threads: JT_ASSERT belongs to the test thread. */
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fail_count;
static char fail_msg[512];

__attribute__((format(printf, 2, 3))) static void tfail(int line, const char *fmt, ...)
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

static void assert_no_thread_failures(void)
{
    char msg[sizeof fail_msg];
    pthread_mutex_lock(&fail_mu);
    int n = atomic_load(&fail_count);
    memcpy(msg, fail_msg, sizeof msg);
    pthread_mutex_unlock(&fail_mu);
    JT_ASSERT(n == 0, "%d failure(s) in worker threads, first: %s", n, msg);
}

/* Join with a deadline: false if the thread is still running (a hang). */
static bool join_within(pthread_t th, int ms)
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

static void start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(th, NULL, fn, arg);
    JT_ASSERT(rc == 0, "pthread_create: %s", strerror(rc));
}

static void join_or_fail(pthread_t th, int ms, const char *what)
{
    JT_ASSERT(join_within(th, ms), "%s: thread still running after %d ms (hang)", what, ms);
}

/* Read exactly n bytes: n, a negative errno, or -ENODATA at a premature EOF. */
static ssize_t read_exact(jktcp_stream s, void *buf, size_t n, int timeout_ms)
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
static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, res = 0;
    int n = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    return n == 2 ? res * sysconf(_SC_PAGESIZE) : -1;
}

/* Open eventfds of this process: every stream whose poll fd was asked for
 * holds one until it is freed, so a leaked stream shows up here. */
static int count_eventfds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], target[128];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        if (k > 0) {
            target[k] = 0;
            if (strstr(target, "eventfd"))
                n++;
        }
    }
    closedir(d);
    return n;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* Namespace, TUN, handle                                                   */
/* ------------------------------------------------------------------------ */

struct tt {
    int family;
    unsigned mtu;
    struct jkt_tun tun;
    jktcp_handle h;
};

static void tt_up(struct tt *t, int family, unsigned mtu)
{
    memset(t, 0, sizeof *t);
    t->family = family;
    t->mtu = mtu;
    t->tun.fd = -1;
    jkt_tun_up_or_skip("thread", "jkt0", mtu, 0, &t->tun);
}

/* A handle on the TUN fd; peer NULL = the kernel's address. Buffer sizes
 * 0 keep the defaults. */
static jktcp_handle tt_handle(struct tt *t, const char *peer, long sndbuf, long rcvbuf)
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
    rc = jktcp_handle_start(a, &h);
    JT_ASSERT(rc == 0, "jktcp_handle_start: %s", jktcp_strerror(rc));
    const char *pcap = getenv("JKT_THREAD_PCAP"); /* debugging: capture every frame */
    if (pcap && *pcap)
        jktcp_handle_pcap(h, pcap);
    t->h = h;
    return h;
}

static void tt_close_handle(struct tt *t, int linger_ms)
{
    if (t->h.id) {
        jktcp_handle h = t->h;
        t->h = (jktcp_handle){0};
        int rc = jktcp_handle_close(h, linger_ms);
        JT_ASSERT(rc == 0, "jktcp_handle_close: %s", jktcp_strerror(rc));
    }
}

static void tt_down(struct tt *t)
{
    tt_close_handle(t, 1000);
    jkt_tun_close(&t->tun);
}

static void server_up(struct tt *t, struct jkt_server *s, int kind)
{
    s->kind = kind;
    s->family = t->family;
    int rc = jkt_server_start(s);
    JT_ASSERT(rc == 0, "kernel server: %s", strerror(-rc));
}

static jktcp_stream connect_ok(jktcp_handle h, uint16_t port)
{
    jktcp_stream s = {0};
    int rc = jktcp_handle_connect(h, port, 5000, &s);
    JT_ASSERT(rc == 0 && s.id, "jktcp_handle_connect(%u): %s", port, jktcp_strerror(rc));
    return s;
}

static socklen_t sockaddr_for(int family, const char *ip, uint16_t port,
                              struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        return sizeof *a;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip, &a->sin_addr);
    return sizeof *a;
}

/* A kernel listening socket on the kernel-side address; *port 0 picks one. */
static int kernel_listen(int family, uint16_t *port, int backlog)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t sl = sockaddr_for(family, jkt_kernel_ip(family), *port, &ss);
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

/* ------------------------------------------------------------------------ */
/* 1. Sixteen writers on one stream: whole write_all calls never interleave */
/* ------------------------------------------------------------------------ */

#define REC_WRITERS 16
#define REC_PER_WRITER 16384u
#define REC_SIZE 16u
#define REC_BIG_MIN 2000u /* records in a "big" call: 32..96 KiB, more than SNDBUF */
#define REC_SNDBUF (64 * 1024)

/* One record: word0 = writer << 24 | records in this call, word1 = the
 * writer's sequence number, word2 = index inside the call, word3 = hash. */
static uint32_t rec_hash(uint32_t w0, uint32_t seq, uint32_t idx)
{
    uint32_t h = 0x9e3779b9u ^ w0;
    h = (h ^ seq) * 0x85ebca6bu;
    h ^= h >> 13;
    h = (h ^ idx) * 0xc2b2ae35u;
    h ^= h >> 16;
    return h ^ 0x7f4a7c15u;
}

struct rec_writer {
    jktcp_stream s; /* the writer's own reference */
    uint32_t id;
    unsigned calls, big_calls;
    pthread_t th;
};

static void *rec_writer_main(void *arg)
{
    struct rec_writer *w = arg;
    uint32_t *buf = malloc((size_t)6000 * REC_SIZE);
    TCHECK(buf, "malloc");
    uint32_t rng = 0x2545f491u * (w->id + 1);
    uint32_t seq = 0;
    while (seq < REC_PER_WRITER) {
        rng = rng * 1103515245u + 12345u;
        uint32_t r = rng >> 8;
        uint32_t n = (r % 64 == 0) ? REC_BIG_MIN + (r >> 6) % 4000 : 1 + (r >> 6) % 64;
        if (n > REC_PER_WRITER - seq)
            n = REC_PER_WRITER - seq;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t w0 = w->id << 24 | n;
            buf[4 * i] = w0;
            buf[4 * i + 1] = seq + i;
            buf[4 * i + 2] = i;
            buf[4 * i + 3] = rec_hash(w0, seq + i, i);
        }
        ssize_t wr = jktcp_stream_write_all(w->s, buf, (size_t)n * REC_SIZE, IO_TIMEOUT);
        if (wr != (ssize_t)(n * REC_SIZE)) {
            free(buf);
            TCHECK(0, "writer %u: write_all(%u records) = %zd (%s)", w->id, n, wr, err_name(wr));
        }
        seq += n;
        w->calls++;
        if (n >= REC_BIG_MIN)
            w->big_calls++;
    }
    free(buf);
    return NULL;
}

struct rec_sink {
    int lfd;
    uint8_t *buf;
    size_t cap, len;
    uint64_t extra; /* bytes beyond cap (duplicates) */
    int err;
    pthread_t th;
};

static void *rec_sink_main(void *arg)
{
    struct rec_sink *k = arg;
    int fd = accept4(k->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        k->err = errno;
        return NULL;
    }
    for (;;) {
        uint8_t spill[4096];
        bool full = k->len == k->cap;
        ssize_t n = full ? read(fd, spill, sizeof spill) : read(fd, k->buf + k->len, k->cap - k->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            k->err = errno;
            break;
        }
        if (n == 0)
            break;
        if (full)
            k->extra += (uint64_t)n;
        else
            k->len += (size_t)n;
    }
    close(fd);
    return NULL;
}

/* Walk the byte stream; false with a reason at the first violation. */
static bool rec_verify(const uint8_t *p, size_t len, char *why, size_t cap)
{
    uint32_t next_seq[REC_WRITERS] = {0};
    uint32_t cur = UINT32_MAX, call_len = 0, left = 0;
    if (len % REC_SIZE) {
        snprintf(why, cap, "stream length %zu is not a multiple of %u", len, REC_SIZE);
        return false;
    }
    for (size_t off = 0; off < len; off += REC_SIZE) {
        uint32_t r[4];
        memcpy(r, p + off, sizeof r);
        uint32_t wid = r[0] >> 24, n = r[0] & 0xffffff;
        if (r[3] != rec_hash(r[0], r[1], r[2]) || wid >= REC_WRITERS) {
            snprintf(why, cap, "torn or corrupt record at byte %zu", off);
            return false;
        }
        if (left == 0) {
            if (r[2] != 0) {
                snprintf(why, cap, "byte %zu: writer %u call starts at index %u", off, wid, r[2]);
                return false;
            }
            cur = wid;
            call_len = left = n;
        } else if (wid != cur || n != call_len || r[2] != call_len - left) {
            snprintf(why, cap,
                     "byte %zu: call of writer %u (%u records) interleaved with writer %u "
                     "(index %u, %u records left)",
                     off, cur, call_len, wid, r[2], left);
            return false;
        }
        left--;
        if (r[1] != next_seq[wid]) {
            snprintf(why, cap, "byte %zu: writer %u seq %u, expected %u (lost/dup/reordered)", off,
                     wid, r[1], next_seq[wid]);
            return false;
        }
        next_seq[wid]++;
    }
    if (left) {
        snprintf(why, cap, "stream ends inside a call of writer %u", cur);
        return false;
    }
    for (uint32_t w = 0; w < REC_WRITERS; w++) {
        if (next_seq[w] != REC_PER_WRITER) {
            snprintf(why, cap, "writer %u: %u records arrived, expected %u", w, next_seq[w],
                     REC_PER_WRITER);
            return false;
        }
    }
    return true;
}

JT_TEST(thread, writers16_records_atomic, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, REC_SNDBUF, 0);

    struct rec_sink k = {.cap = (size_t)REC_WRITERS * REC_PER_WRITER * REC_SIZE};
    uint16_t port = 0;
    k.lfd = kernel_listen(AF_INET, &port, 4);
    JT_ASSERT(k.lfd >= 0, "listen: %s", strerror(-k.lfd));
    k.buf = malloc(k.cap);
    JT_ASSERT(k.buf, "malloc");
    start_thread(&k.th, rec_sink_main, &k);

    jktcp_stream s = connect_ok(h, port);
    static struct rec_writer w[REC_WRITERS];
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < REC_WRITERS; i++) {
        w[i] = (struct rec_writer){.s = s, .id = i};
        start_thread(&w[i].th, rec_writer_main, &w[i]);
    }
    for (int i = 0; i < REC_WRITERS; i++)
        join_or_fail(w[i].th, 60000 * SLOW_FACTOR, "writer");
    assert_no_thread_failures();
    JT_ASSERT(jktcp_stream_shutdown(s) == 0, "shutdown");
    join_or_fail(k.th, 30000, "kernel sink");
    double dt = ms_since(t0, now_ns());
    uint8_t b[16];
    ssize_t r = jktcp_stream_read(s, b, sizeof b, IO_TIMEOUT);
    JT_ASSERT(r == 0, "read after the sink closed: %zd (%s), expected EOF", r, err_name(r));
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");

    unsigned calls = 0, big = 0;
    for (int i = 0; i < REC_WRITERS; i++) {
        calls += w[i].calls;
        big += w[i].big_calls;
    }
    JT_ASSERT(k.err == 0, "sink: %s", strerror(k.err));
    JT_ASSERT(k.extra == 0, "sink got %llu bytes more than written (duplicates)",
              (unsigned long long)k.extra);
    JT_ASSERT(k.len == k.cap, "sink got %zu of %zu bytes", k.len, k.cap);
    char why[256];
    bool ok = rec_verify(k.buf, k.len, why, sizeof why);
    JT_ASSERT(ok, "record stream: %s", why);
    JT_ASSERT(big > 0, "no write_all call was larger than the send buffer");
    JT_LOG("16 writers: %u write_all calls (%u larger than SNDBUF) = %zu bytes in %.0f ms, "
           "no call interleaved", calls, big, k.len, dt);
    free(k.buf);
    close(k.lfd);
    tt_down(&t);
}

/* ------------------------------------------------------------------------ */
/* 2. Eight threads pass streams to each other through queues               */
/* ------------------------------------------------------------------------ */

#define HQ_THREADS 8
#define HQ_PER_THREAD 8
#define HQ_TOTAL (HQ_THREADS * HQ_PER_THREAD)
#define HQ_HOPS 3

struct hq_item {
    jktcp_stream s;
    uint32_t id;
    int creator, last, hops;
};

struct hq_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hq_item items[HQ_TOTAL];
    int n;
};

struct hq {
    jktcp_handle h;
    uint16_t port;
    struct hq_queue q[HQ_THREADS];
    atomic_int done, used_by_other;
};

struct hq_thread {
    struct hq *x;
    int id;
    pthread_t th;
};

static void hq_push(struct hq *x, int to, struct hq_item it)
{
    struct hq_queue *q = &x->q[to];
    pthread_mutex_lock(&q->mu);
    q->items[q->n++] = it;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static bool hq_pop(struct hq *x, int me, struct hq_item *out)
{
    struct hq_queue *q = &x->q[me];
    bool got = false;
    pthread_mutex_lock(&q->mu);
    if (q->n == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    if (q->n > 0) {
        *out = q->items[0];
        memmove(q->items, q->items + 1, (size_t)(q->n - 1) * sizeof q->items[0]);
        q->n--;
        got = true;
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

static void *hq_main(void *arg)
{
    struct hq_thread *me = arg;
    struct hq *x = me->x;
    for (int i = 0; i < HQ_PER_THREAD; i++) {
        jktcp_stream s = {0};
        int rc = jktcp_handle_connect(x->h, x->port, 10000, &s);
        TCHECK(rc == 0, "thread %d: connect: %s", me->id, err_name(rc));
        struct hq_item it = {.s = s, .id = (uint32_t)(me->id * HQ_PER_THREAD + i),
                             .creator = me->id, .last = me->id};
        hq_push(x, (me->id + 1) % HQ_THREADS, it);
    }
    uint64_t end = now_ns() + 60ull * 1000000000u * SLOW_FACTOR;
    while (atomic_load(&x->done) < HQ_TOTAL) {
        TCHECK(now_ns() < end, "thread %d: streams stopped arriving", me->id);
        struct hq_item it;
        if (!hq_pop(x, me->id, &it))
            continue;
        TCHECK(it.last != me->id, "stream %u handed to its own thread", it.id);
        if (it.creator != me->id)
            atomic_fetch_add(&x->used_by_other, 1);
        char msg[48], back[48];
        int len = snprintf(msg, sizeof msg, "stream %04u hop %d thread %d.", it.id, it.hops, me->id);
        ssize_t r = jktcp_stream_write_all(it.s, msg, (size_t)len, IO_TIMEOUT);
        TCHECK(r == len, "stream %u: write %zd (%s)", it.id, r, err_name(r));
        r = read_exact(it.s, back, (size_t)len, IO_TIMEOUT);
        TCHECK(r == len, "stream %u: read %zd (%s)", it.id, r, err_name(r));
        TCHECK(memcmp(msg, back, (size_t)len) == 0, "stream %u: echo mismatch", it.id);
        it.hops++;
        it.last = me->id;
        if (it.hops == HQ_HOPS) {
            int rc = jktcp_stream_close(it.s);
            TCHECK(rc == 0, "stream %u: close %s", it.id, err_name(rc));
            atomic_fetch_add(&x->done, 1);
        } else {
            hq_push(x, (me->id + 1 + it.hops) % HQ_THREADS, it);
        }
    }
    return NULL;
}

JT_TEST(thread, handoff_8_threads, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    struct jkt_server srv = {0};
    server_up(&t, &srv, JKT_SRV_ECHO);
    static struct hq x;
    memset(&x, 0, sizeof x);
    x.h = h;
    x.port = srv.port;
    for (int i = 0; i < HQ_THREADS; i++) {
        pthread_mutex_init(&x.q[i].mu, NULL);
        pthread_cond_init(&x.q[i].cv, NULL);
    }
    struct hq_thread th[HQ_THREADS];
    for (int i = 0; i < HQ_THREADS; i++) {
        th[i] = (struct hq_thread){.x = &x, .id = i};
        start_thread(&th[i].th, hq_main, &th[i]);
    }
    for (int i = 0; i < HQ_THREADS; i++)
        join_or_fail(th[i].th, 90000 * SLOW_FACTOR, "hand-off thread");
    assert_no_thread_failures();
    JT_ASSERT(atomic_load(&x.done) == HQ_TOTAL, "%d of %d streams finished",
              atomic_load(&x.done), HQ_TOTAL);
    JT_ASSERT(atomic_load(&x.used_by_other) == HQ_TOTAL * HQ_HOPS,
              "uses by a thread other than the creator: %d", atomic_load(&x.used_by_other));
    int rc = jkt_server_wait_done(&srv, HQ_TOTAL, 10000);
    char d[256];
    jkt_server_describe(&srv, d, sizeof d);
    JT_ASSERT(rc == 0 && atomic_load(&srv.eofs) == HQ_TOTAL, "kernel did not see %d clean closes: %s",
              HQ_TOTAL, d);
    tt_down(&t);
    jkt_server_stop(&srv);
}

/* ------------------------------------------------------------------------ */
/* 3. Created in one thread, read in a second, closed in a third            */
/* ------------------------------------------------------------------------ */

struct crc {
    jktcp_handle h;
    uint16_t port;
    uint64_t nbytes;
    uint32_t seed;
    jktcp_stream s;
    int connect_rc, close_rc;
    ssize_t read_end;
    uint64_t got, bad_at;
};

static void *crc_create(void *arg)
{
    struct crc *c = arg;
    c->connect_rc = jktcp_handle_connect(c->h, c->port, 5000, &c->s);
    return NULL;
}

static void *crc_read(void *arg)
{
    struct crc *c = arg;
    size_t cap = 256 * KiB;
    uint8_t *buf = malloc(cap);
    TCHECK(buf, "malloc");
    c->bad_at = UINT64_MAX;
    for (;;) {
        ssize_t r = jktcp_stream_read(c->s, buf, cap, IO_TIMEOUT);
        if (r <= 0) {
            c->read_end = r;
            break;
        }
        size_t at = jkt_pattern_check(buf, (size_t)r, c->got, c->seed);
        if (at != (size_t)r && c->bad_at == UINT64_MAX)
            c->bad_at = c->got + at;
        c->got += (uint64_t)r;
    }
    free(buf);
    return NULL;
}

static void *crc_close(void *arg)
{
    struct crc *c = arg;
    c->close_rc = jktcp_stream_close(c->s);
    return NULL;
}

JT_TEST(thread, create_read_close_3_threads, 30)
{
    struct tt t;
    tt_up(&t, AF_INET6, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    struct jkt_server srv = {.nbytes = 4 * MiB, .seed = 0xC0FFEE};
    server_up(&t, &srv, JKT_SRV_SOURCE);
    struct crc c = {.h = h, .port = srv.port, .nbytes = srv.nbytes, .seed = srv.seed};
    pthread_t th;
    start_thread(&th, crc_create, &c);
    join_or_fail(th, 10000, "creator");
    JT_ASSERT(c.connect_rc == 0 && c.s.id, "connect: %s", err_name(c.connect_rc));
    start_thread(&th, crc_read, &c);
    join_or_fail(th, 30000 * SLOW_FACTOR, "reader");
    assert_no_thread_failures();
    JT_ASSERT(c.read_end == 0, "reader ended with %zd (%s), expected EOF", c.read_end,
              err_name(c.read_end));
    JT_ASSERT(c.got == c.nbytes, "read %llu of %llu bytes", (unsigned long long)c.got,
              (unsigned long long)c.nbytes);
    JT_ASSERT(c.bad_at == UINT64_MAX, "data differs from the pattern at byte %llu",
              (unsigned long long)c.bad_at);
    jktcp_stream probe = c.s;
    start_thread(&th, crc_close, &c);
    join_or_fail(th, 10000, "closer");
    JT_ASSERT(c.close_rc == 0, "close in the third thread: %s", err_name(c.close_rc));
    uint8_t b[8];
    ssize_t r = jktcp_stream_read(probe, b, sizeof b, 0);
    JT_ASSERT(r == -EBADF, "read through a held reference after close: %zd (%s)", r, err_name(r));
    r = jktcp_stream_write(probe, b, sizeof b, 0);
    JT_ASSERT(r == -EBADF, "write through a held reference after close: %zd (%s)", r, err_name(r));
    int rc = jktcp_stream_close(probe); /* releases the probe reference */
    JT_ASSERT(rc == -EBADF, "second close: %s", err_name(rc));
    tt_down(&t);
    jkt_server_stop(&srv);
}

/* ------------------------------------------------------------------------ */
/* 4. A thousand streams open at once                                       */
/* ------------------------------------------------------------------------ */

/* Kernel echo server on one epoll thread (cheap for many connections). */
struct eecho {
    int lfd, ep, stopfd;
    pthread_t th;
    char *open_fds;
    atomic_ulong accepted, closed, bytes;
    atomic_int err;
};

#define EECHO_MAXFD 65536

static void *eecho_main(void *arg)
{
    struct eecho *e = arg;
    struct epoll_event ev[64];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(e->ep, ev, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            atomic_store(&e->err, errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == e->stopfd)
                goto out;
            if (fd == e->lfd) {
                int c;
                while ((c = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (c >= EECHO_MAXFD) {
                        atomic_store(&e->err, EMFILE);
                        close(c);
                        continue;
                    }
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(e->ep, EPOLL_CTL_ADD, c, &ce);
                    e->open_fds[c] = 1;
                    atomic_fetch_add(&e->accepted, 1);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) {
                atomic_fetch_add(&e->bytes, (unsigned long)r);
                ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w != r)
                    atomic_store(&e->err, w < 0 ? errno : EIO);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                epoll_ctl(e->ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                e->open_fds[fd] = 0;
                atomic_fetch_add(&e->closed, 1);
            }
        }
    }
out:
    for (int fd = 0; fd < EECHO_MAXFD; fd++)
        if (e->open_fds[fd])
            close(fd);
    return NULL;
}

static void eecho_start(struct eecho *e, int family, uint16_t *port)
{
    memset(e, 0, sizeof *e);
    e->lfd = kernel_listen(family, port, 4096);
    JT_ASSERT(e->lfd >= 0, "listen: %s", strerror(-e->lfd));
    fcntl(e->lfd, F_SETFL, fcntl(e->lfd, F_GETFL) | O_NONBLOCK);
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    e->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    e->open_fds = calloc(EECHO_MAXFD, 1);
    JT_ASSERT(e->ep >= 0 && e->stopfd >= 0 && e->open_fds, "epoll setup");
    struct epoll_event le = {.events = EPOLLIN, .data.fd = e->lfd};
    struct epoll_event se = {.events = EPOLLIN, .data.fd = e->stopfd};
    epoll_ctl(e->ep, EPOLL_CTL_ADD, e->lfd, &le);
    epoll_ctl(e->ep, EPOLL_CTL_ADD, e->stopfd, &se);
    start_thread(&e->th, eecho_main, e);
}

static void eecho_stop(struct eecho *e)
{
    uint64_t one = 1;
    if (write(e->stopfd, &one, sizeof one) < 0) {
    }
    join_within(e->th, 5000);
    close(e->ep);
    close(e->stopfd);
    close(e->lfd);
    free(e->open_fds);
}

#define MANY_STREAMS 1000
#define MANY_THREADS 8

struct many {
    jktcp_handle h;
    uint16_t port;
    jktcp_stream s[MANY_STREAMS];
    uint16_t lport[MANY_STREAMS];
};

struct many_thread {
    struct many *m;
    int id, phase;
    pthread_t th;
};

static void *many_main(void *arg)
{
    struct many_thread *mt = arg;
    struct many *m = mt->m;
    /* each phase runs in fresh threads, with a different slice per thread */
    for (int i = (mt->id + mt->phase) % MANY_THREADS; i < MANY_STREAMS; i += MANY_THREADS) {
        if (mt->phase == 0) {
            int rc = jktcp_handle_connect(m->h, m->port, 10000 * SLOW_FACTOR, &m->s[i]);
            TCHECK(rc == 0, "stream %d: connect %s", i, err_name(rc));
            jktcp_info info;
            rc = jktcp_stream_info(m->s[i], &info, sizeof info);
            TCHECK(rc == 0 && info.state == JKTCP_ESTABLISHED, "stream %d: info %s state %s", i,
                   err_name(rc), jktcp_state_name(info.state));
            m->lport[i] = info.local_port;
        } else if (mt->phase == 1) {
            char msg[24], back[24];
            int len = snprintf(msg, sizeof msg, "hello from %05d", i);
            ssize_t r = jktcp_stream_write(m->s[i], msg, (size_t)len, IO_TIMEOUT);
            TCHECK(r == len, "stream %d: write %zd (%s)", i, r, err_name(r));
            r = read_exact(m->s[i], back, (size_t)len, IO_TIMEOUT);
            TCHECK(r == len, "stream %d: read %zd (%s)", i, r, err_name(r));
            TCHECK(memcmp(msg, back, (size_t)len) == 0, "stream %d: echo mismatch", i);
        } else {
            int rc = jktcp_stream_close(m->s[i]);
            m->s[i] = (jktcp_stream){0};
            TCHECK(rc == 0, "stream %d: close %s", i, err_name(rc));
        }
    }
    return NULL;
}

static void many_phase(struct many *m, int phase, const char *what)
{
    struct many_thread mt[MANY_THREADS];
    for (int i = 0; i < MANY_THREADS; i++) {
        mt[i] = (struct many_thread){.m = m, .id = i, .phase = phase};
        start_thread(&mt[i].th, many_main, &mt[i]);
    }
    for (int i = 0; i < MANY_THREADS; i++)
        join_or_fail(mt[i].th, 60000 * SLOW_FACTOR, what);
    assert_no_thread_failures();
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

JT_TEST(thread, streams_1000_open_at_once, 90)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 64 * KiB, 64 * KiB);
    static struct eecho e;
    static struct many m;
    memset(&m, 0, sizeof m);
    m.h = h;
    eecho_start(&e, AF_INET, &m.port);
    long rss0 = rss_bytes();
    uint64_t t0 = now_ns();
    many_phase(&m, 0, "connect");
    double t_conn = ms_since(t0, now_ns());

    jktcp_stats st;
    JT_ASSERT(jktcp_handle_stats(h, &st, sizeof st) == 0, "stats");
    JT_ASSERT(st.conns_active >= MANY_STREAMS, "conns_active %llu",
              (unsigned long long)st.conns_active);
    uint16_t ports[MANY_STREAMS];
    memcpy(ports, m.lport, sizeof ports);
    qsort(ports, MANY_STREAMS, sizeof ports[0], cmp_u16);
    for (int i = 1; i < MANY_STREAMS; i++)
        JT_ASSERT(ports[i] != ports[i - 1] && ports[i] != 0, "local port %u used twice", ports[i]);
    for (int i = 0; i < 2000 && atomic_load(&e.accepted) < MANY_STREAMS; i++)
        sleep_ms(5);
    JT_ASSERT(atomic_load(&e.accepted) == MANY_STREAMS, "kernel accepted %lu",
              (unsigned long)atomic_load(&e.accepted));

    t0 = now_ns();
    many_phase(&m, 1, "echo");
    double t_echo = ms_since(t0, now_ns());
    long rss1 = rss_bytes();
    JT_ASSERT(atomic_load(&e.closed) == 0, "kernel saw %lu closes while all should be open",
              (unsigned long)atomic_load(&e.closed));

    t0 = now_ns();
    many_phase(&m, 2, "close");
    for (int i = 0; i < 4000 && atomic_load(&e.closed) < MANY_STREAMS; i++)
        sleep_ms(5);
    double t_close = ms_since(t0, now_ns());
    JT_ASSERT(atomic_load(&e.closed) == MANY_STREAMS, "kernel saw %lu of %d closes",
              (unsigned long)atomic_load(&e.closed), MANY_STREAMS);
    JT_ASSERT(atomic_load(&e.err) == 0, "echo server: %s", strerror(atomic_load(&e.err)));
    JT_LOG("1000 streams: connect %.0f ms, echo %.0f ms, close %.0f ms; RSS +%ld KiB while open",
           t_conn, t_echo, t_close, (rss1 - rss0) / 1024);
    tt_down(&t);
    eecho_stop(&e);
}

/* ------------------------------------------------------------------------ */
/* 5. Bulk: 64 MiB each way on one stream, 8 MiB each way on 8 at once      */
/* ------------------------------------------------------------------------ */

struct bulk {
    jktcp_stream s;
    uint32_t seed;
    uint64_t n;
    ssize_t werr, rend;
    uint64_t got, bad_at;
    pthread_t tw, tr;
};

static void *bulk_writer(void *arg)
{
    struct bulk *b = arg;
    size_t chunk = 256 * KiB;
    uint8_t *buf = malloc(chunk);
    TCHECK(buf, "malloc");
    uint64_t off = 0;
    while (off < b->n) {
        size_t k = b->n - off < chunk ? (size_t)(b->n - off) : chunk;
        jkt_pattern_fill(buf, k, off, b->seed);
        ssize_t r = jktcp_stream_write_all(b->s, buf, k, IO_TIMEOUT);
        if (r != (ssize_t)k) {
            b->werr = r;
            break;
        }
        off += k;
    }
    free(buf);
    if (!b->werr)
        b->werr = jktcp_stream_shutdown(b->s);
    return NULL;
}

static void *bulk_reader(void *arg)
{
    struct bulk *b = arg;
    size_t cap = 1 * MiB;
    uint8_t *buf = malloc(cap);
    TCHECK(buf, "malloc");
    b->bad_at = UINT64_MAX;
    for (;;) {
        ssize_t r = jktcp_stream_read(b->s, buf, cap, IO_TIMEOUT);
        if (r <= 0) {
            b->rend = r;
            break;
        }
        if (b->bad_at == UINT64_MAX) {
            size_t at = jkt_pattern_check(buf, (size_t)r, b->got, b->seed);
            if (at != (size_t)r)
                b->bad_at = b->got + at;
        }
        b->got += (uint64_t)r;
    }
    free(buf);
    return NULL;
}

static void bulk_run(unsigned mtu, int nstreams, uint64_t each)
{
    struct tt t;
    tt_up(&t, AF_INET, mtu);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    struct jkt_server srv = {0};
    server_up(&t, &srv, JKT_SRV_ECHO);
    struct bulk b[8];
    JT_ASSERT(nstreams <= 8, "nstreams");
    for (int i = 0; i < nstreams; i++) {
        b[i] = (struct bulk){.seed = 0xB0000 + (uint32_t)i, .n = each};
        b[i].s = connect_ok(h, srv.port);
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < nstreams; i++) {
        start_thread(&b[i].tw, bulk_writer, &b[i]);
        start_thread(&b[i].tr, bulk_reader, &b[i]);
    }
    for (int i = 0; i < nstreams; i++) {
        join_or_fail(b[i].tw, 120000 * SLOW_FACTOR, "bulk writer");
        join_or_fail(b[i].tr, 120000 * SLOW_FACTOR, "bulk reader");
    }
    double dt = (double)(now_ns() - t0) / 1e9;
    assert_no_thread_failures();
    bool stalled = false;
    for (int i = 0; i < nstreams; i++)
        stalled |= b[i].werr != 0 || b[i].rend != 0;
    if (stalled) { /* diagnostics before failing: both ends of every stream */
        for (int i = 0; i < nstreams; i++) {
            jktcp_info f;
            if (jktcp_stream_info(b[i].s, &f, sizeof f) != 0)
                continue;
            JT_LOG("stream %d (port %u): write %zd read %zd got %llu | %s sent %llu queued %llu "
                   "readable %llu srtt %u rto %u rexmit %u cwnd %u ssthresh %u snd_wnd %u "
                   "rcv_wnd %u mss %u sack %u ts %u",
                   i, f.local_port, b[i].werr, b[i].rend, (unsigned long long)b[i].got,
                   jktcp_state_name(f.state), (unsigned long long)f.bytes_sent,
                   (unsigned long long)f.bytes_queued, (unsigned long long)f.bytes_readable,
                   f.srtt_us, f.rto_us, f.retransmits, f.cwnd, f.ssthresh, f.snd_wnd, f.rcv_wnd,
                   f.mss, f.sack, f.timestamps);
        }
        static char ss[16384];
        if (jkt_sh("ss -tinoH", ss, sizeof ss) == 0)
            JT_LOG("kernel sockets:\n%s", ss);
        jktcp_stats st;
        if (jktcp_handle_stats(h, &st, sizeof st) == 0)
            JT_LOG("handle: frames in %llu out %llu retransmits %llu drop_invalid %llu "
                   "drop_checksum %llu rst_sent %llu",
                   (unsigned long long)st.frames_in, (unsigned long long)st.frames_out,
                   (unsigned long long)st.retransmits, (unsigned long long)st.drop_invalid,
                   (unsigned long long)st.drop_checksum, (unsigned long long)st.rst_sent);
    }
    uint32_t rexmit = 0;
    for (int i = 0; i < nstreams; i++) {
        JT_ASSERT(b[i].werr == 0, "stream %d: write %zd (%s)", i, b[i].werr, err_name(b[i].werr));
        JT_ASSERT(b[i].rend == 0, "stream %d: read ended with %zd (%s) after %llu bytes", i,
                  b[i].rend, err_name(b[i].rend), (unsigned long long)b[i].got);
        JT_ASSERT(b[i].got == each, "stream %d: %llu of %llu bytes echoed", i,
                  (unsigned long long)b[i].got, (unsigned long long)each);
        JT_ASSERT(b[i].bad_at == UINT64_MAX, "stream %d: echo differs at byte %llu", i,
                  (unsigned long long)b[i].bad_at);
        jktcp_info info;
        if (jktcp_stream_info(b[i].s, &info, sizeof info) == 0)
            rexmit += info.retransmits;
        JT_ASSERT(jktcp_stream_close(b[i].s) == 0, "close");
    }
    double mb = (double)each * nstreams / 1e6;
    JT_LOG("bulk %d stream(s) x %llu MiB each way, MTU %u: %.2f s, %.1f MB/s each way "
           "(%.1f MB/s both), %u retransmits",
           nstreams, (unsigned long long)(each / MiB), mtu, dt, mb / dt, 2 * mb / dt, rexmit);
    JT_ASSERT(jkt_server_wait_done(&srv, (unsigned long)nstreams, 10000) == 0, "server done");
    tt_down(&t);
    jkt_server_stop(&srv);
}

JT_TEST(thread, bulk_1x64MiB_mtu1500, 120)
{
    bulk_run(1500, 1, 64ull * MiB);
}

JT_TEST(thread, bulk_1x64MiB_mtu16000, 120)
{
    bulk_run(16000, 1, 64ull * MiB);
}

JT_TEST(thread, bulk_8x8MiB_mtu1500, 120)
{
    bulk_run(1500, 8, 8ull * MiB);
}

JT_TEST(thread, bulk_8x8MiB_mtu16000, 120)
{
    bulk_run(16000, 8, 8ull * MiB);
}

/* ------------------------------------------------------------------------ */
/* 6. Connects racing with stream closes and with jktcp_handle_close        */
/* ------------------------------------------------------------------------ */

#define RACE_THREADS 8

struct race {
    jktcp_handle h;
    uint16_t port;
    _Atomic uint64_t slot[RACE_THREADS]; /* streams handed to the closer */
    atomic_bool stop_closer;
    atomic_ulong connects, handed, calls;
};

struct racer {
    struct race *r;
    int id;
    /* an open stream of its own, left open across the handle's close:
     * it must still close cleanly afterwards */
    jktcp_stream pin;
    int final;
    pthread_t th;
};

static void *racer_main(void *arg)
{
    struct racer *me = arg;
    struct race *x = me->r;
    me->final = 1;
    for (unsigned iter = (unsigned)me->id;; iter++) {
        jktcp_stream s = {0};
        int rc = jktcp_handle_connect(x->h, x->port, 5000, &s);
        atomic_fetch_add(&x->calls, 1);
        if (rc == -ESHUTDOWN || rc == -EBADF) { /* the handle is stopping / gone */
            TEXPECT(s.id == 0, "failed connect set *out");
            me->final = rc;
            break;
        }
        TCHECK(rc == 0 || rc == -ECONNREFUSED || rc == -ECONNRESET,
               "connect: %d (%s)", rc, err_name(rc));
        if (rc)
            continue;
        atomic_fetch_add(&x->connects, 1);
        int pfd = jktcp_stream_poll_fd(s, JKTCP_POLL_READ); /* an eventfd: leaks become visible */
        TEXPECT(pfd >= 0 || pfd == -ESHUTDOWN, "poll_fd: %d", pfd);
        char msg[16] = "race-race-race!";
        ssize_t w = jktcp_stream_write(s, msg, sizeof msg, 5000);
        TEXPECT(w == (ssize_t)sizeof msg || w == -ESHUTDOWN || w == -ECONNRESET,
                "write: %zd (%s)", w, err_name(w));
        char back[16];
        ssize_t r;
        switch (iter % 4) {
        case 0:
            r = read_exact(s, back, sizeof back, 5000);
            TEXPECT(r == (ssize_t)sizeof back || r == -ESHUTDOWN || r == -ECONNRESET,
                    "read: %zd (%s)", r, err_name(r));
            rc = jktcp_stream_close(s);
            TEXPECT(rc == 0, "close: %s", err_name(rc));
            break;
        case 1:
            rc = jktcp_stream_abort(s);
            TEXPECT(rc == 0, "abort: %s", err_name(rc));
            break;
        case 2:
            rc = jktcp_stream_close(s);
            TEXPECT(rc == 0, "close: %s", err_name(rc));
            rc = jktcp_stream_close(s);
            TEXPECT(rc == -EBADF, "second close: %s", err_name(rc));
            break;
        default: {
            /* the closer thread closes the stream while this thread reads */
            atomic_store(&x->slot[me->id], s.id);
            atomic_fetch_add(&x->handed, 1);
            do
                r = jktcp_stream_read(s, back, sizeof back, 5000);
            while (r > 0);
            if (r == -EAGAIN) {
                jktcp_stream back_s = {atomic_exchange(&x->slot[me->id], 0)};
                if (back_s.id)
                    jktcp_stream_close(back_s);
            }
            TEXPECT(r == -EBADF || r == -ESHUTDOWN || r == -ECONNRESET || r == 0,
                    "read while another thread closes: %zd (%s)", r, err_name(r));
            break;
        }
        }
    }
    int prc = jktcp_stream_close(me->pin);
    TEXPECT(prc == 0, "closing the pin after the handle stopped: %s", err_name(prc));
    return NULL;
}

static void *race_closer(void *arg)
{
    struct race *x = arg;
    for (;;) {
        bool stop = atomic_load(&x->stop_closer);
        for (int i = 0; i < RACE_THREADS; i++) {
            jktcp_stream s = {atomic_exchange(&x->slot[i], 0)};
            if (s.id) {
                int rc = jktcp_stream_close(s);
                TEXPECT(rc == 0, "closer: close %s", err_name(rc));
            }
        }
        if (stop)
            break;
        sleep_ms(1);
    }
    return NULL;
}

JT_TEST(thread, connect_races_close_and_handle_close, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    struct jkt_server srv = {0};
    server_up(&t, &srv, JKT_SRV_ECHO);
    int efd0 = count_eventfds();
    static const int delay_ms[] = {30, 150, 400};
    static const int linger[] = {0, -1, 200};
    unsigned long total_connects = 0, total_calls = 0, total_handed = 0;
    for (int round = 0; round < 3; round++) {
        jktcp_handle h = tt_handle(&t, NULL, 256 * KiB, 256 * KiB);
        static struct race x;
        memset(&x, 0, sizeof x);
        x.h = h;
        x.port = srv.port;
        struct racer rc[RACE_THREADS];
        for (int i = 0; i < RACE_THREADS; i++) {
            rc[i] = (struct racer){.r = &x, .id = i, .pin = connect_ok(h, srv.port)};
        }
        pthread_t closer;
        start_thread(&closer, race_closer, &x);
        for (int i = 0; i < RACE_THREADS; i++)
            start_thread(&rc[i].th, racer_main, &rc[i]);
        sleep_ms(delay_ms[round]);
        t.h = (jktcp_handle){0};
        uint64_t t0 = now_ns();
        int r = jktcp_handle_close(h, linger[round]);
        double dt = ms_since(t0, now_ns());
        JT_ASSERT(r == 0, "round %d: handle_close: %s", round, err_name(r));
        int limit = (linger[round] < 0 ? 1000 : linger[round]) + 1000 * SLOW_FACTOR;
        JT_ASSERT(dt < limit, "round %d: handle_close took %.0f ms (linger %d)", round, dt,
                  linger[round]);
        for (int i = 0; i < RACE_THREADS; i++)
            join_or_fail(rc[i].th, 15000 * SLOW_FACTOR, "racer after handle close");
        atomic_store(&x.stop_closer, true);
        join_or_fail(closer, 10000, "closer");
        assert_no_thread_failures();
        for (int i = 0; i < RACE_THREADS; i++)
            JT_ASSERT(rc[i].final == -ESHUTDOWN || rc[i].final == -EBADF,
                      "round %d racer %d ended with %d", round, i, rc[i].final);
        JT_ASSERT(atomic_load(&x.connects) > 0, "round %d: no connect succeeded", round);
        total_connects += atomic_load(&x.connects);
        total_calls += atomic_load(&x.calls);
        total_handed += atomic_load(&x.handed);
        JT_LOG("race round %d: %lu connects (%lu calls, %lu closed by another thread), "
               "handle_close(linger %d) %.1f ms",
               round, (unsigned long)atomic_load(&x.connects), (unsigned long)atomic_load(&x.calls),
               (unsigned long)atomic_load(&x.handed), linger[round], dt);
    }
    /* records (and their readiness fds) go after a grace period, soon
     * after their close (lifetime rule 7) */
    int efd1 = count_eventfds();
    for (int i = 0; i < 200 && efd1 != efd0; i++) {
        sleep_ms(10);
        efd1 = count_eventfds();
    }
    JT_ASSERT(efd1 == efd0, "eventfds: %d before, %d 2 s after every handle closed (leak)", efd0,
              efd1);
    JT_ASSERT(total_handed > 0, "no stream was closed by another thread");
    (void)total_calls;
    (void)total_connects;
    jkt_server_stop(&srv);
    jkt_tun_close(&t.tun);
}

/* ------------------------------------------------------------------------ */
/* 7. Closing wakes blocked read / write / accept / connect                 */
/* ------------------------------------------------------------------------ */

enum { OP_READ, OP_WRITE, OP_ACCEPT, OP_CONNECT };
static const char *const op_names[] = {"read", "write", "accept", "connect"};

struct blocked {
    int op;
    jktcp_stream s; /* READ/WRITE: the thread's own reference */
    jktcp_listener l;
    jktcp_handle h;
    uint16_t port;
    int timeout_ms;
    atomic_bool started, returned;
    long result;
    uint64_t t_ret;
    pthread_t th;
};

static void *blocked_main(void *arg)
{
    struct blocked *b = arg;
    static uint8_t wbuf[64 * 1024];
    uint8_t rbuf[4096];
    jktcp_stream out = {0};
    long r = -1;
    atomic_store(&b->started, true);
    switch (b->op) {
    case OP_READ:
        r = jktcp_stream_read(b->s, rbuf, sizeof rbuf, b->timeout_ms);
        break;
    case OP_WRITE:
        r = jktcp_stream_write(b->s, wbuf, sizeof wbuf, b->timeout_ms);
        break;
    case OP_ACCEPT:
        r = jktcp_listener_accept(b->l, b->timeout_ms, &out);
        break;
    case OP_CONNECT:
        r = jktcp_handle_connect(b->h, b->port, b->timeout_ms, &out);
        break;
    }
    b->t_ret = now_ns();
    b->result = r;
    atomic_store(&b->returned, true);
    if (r == 0 && out.id)
        jktcp_stream_abort(out);
    return NULL;
}

static void blocked_start(struct blocked *b)
{
    b->timeout_ms = 4000; /* a missed wake-up fails (-EAGAIN), not hangs */
    start_thread(&b->th, blocked_main, b);
}

/* Wait until every thread is (very likely) parked inside its call. */
static void blocked_settle(struct blocked *b, int n)
{
    for (int i = 0; i < n; i++)
        while (!atomic_load(&b[i].started))
            sleep_ms(1);
    sleep_ms(300);
    for (int i = 0; i < n; i++)
        JT_ASSERT(!atomic_load(&b[i].returned), "%s returned %ld (%s) before any close",
                  op_names[b[i].op], b[i].result, err_name(b[i].result));
}

static void blocked_check(struct blocked *b, uint64_t t_close, long expect)
{
    join_or_fail(b->th, 15000 * SLOW_FACTOR, op_names[b->op]);
    double dt = ms_since(t_close, b->t_ret);
    JT_LOG("blocked %s woke after %.2f ms with %ld (%s)", op_names[b->op], dt, b->result,
           err_name(b->result));
    JT_ASSERT(b->result == expect, "blocked %s returned %ld (%s), expected %ld (%s)",
              op_names[b->op], b->result, err_name(b->result), expect, err_name(expect));
    JT_ASSERT(dt < WAKE_LIMIT_MS, "blocked %s returned %.1f ms after the close (limit %d ms)",
              op_names[b->op], dt, WAKE_LIMIT_MS);
}

struct close_setup {
    struct tt t;
    struct jkt_server echo, noread;
    jktcp_stream sr, sw;
    jktcp_listener l;
    struct blocked b[3];
};

static void close_setup(struct close_setup *c)
{
    memset(c, 0, sizeof *c);
    tt_up(&c->t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&c->t, NULL, 64 * KiB, 64 * KiB);
    server_up(&c->t, &c->echo, JKT_SRV_ECHO);
    c->noread.rcvbuf = 4096;
    server_up(&c->t, &c->noread, JKT_SRV_NOREAD);
    c->sr = connect_ok(h, c->echo.port);
    c->sw = connect_ok(h, c->noread.port);
    int rc = jktcp_handle_listen(h, 7000, 4, &c->l);
    JT_ASSERT(rc == 0, "listen: %s", err_name(rc));
    rig_fill(c->sw); /* the peer is a NOREAD server */
    c->b[0] = (struct blocked){.op = OP_READ, .s = c->sr};
    c->b[1] = (struct blocked){.op = OP_WRITE, .s = c->sw};
    c->b[2] = (struct blocked){.op = OP_ACCEPT, .l = c->l};
    for (int i = 0; i < 3; i++)
        blocked_start(&c->b[i]);
    blocked_settle(c->b, 3);
}

JT_TEST(thread_close, stream_close_wakes_read_write_accept, 60)
{
    static struct close_setup c;
    close_setup(&c);
    uint64_t t_r = now_ns();
    JT_ASSERT(jktcp_stream_close(c.sr) == 0, "close sr");
    uint64_t t_w = now_ns();
    JT_ASSERT(jktcp_stream_close(c.sw) == 0, "close sw");
    uint64_t t_a = now_ns();
    jktcp_listener_close(c.l);
    blocked_check(&c.b[0], t_r, -EBADF);
    blocked_check(&c.b[1], t_w, -EBADF);
    blocked_check(&c.b[2], t_a, -EBADF);
    tt_down(&c.t);
    jkt_server_stop(&c.echo);
    jkt_server_stop(&c.noread);
}

JT_TEST(thread_close, handle_close_wakes_read_write_accept, 60)
{
    static struct close_setup c;
    close_setup(&c);
    jktcp_handle h = c.t.h;
    c.t.h = (jktcp_handle){0};
    uint64_t t0 = now_ns();
    int rc = jktcp_handle_close(h, 0);
    double dt = ms_since(t0, now_ns());
    JT_ASSERT(rc == 0, "handle_close: %s", err_name(rc));
    for (int i = 0; i < 3; i++)
        blocked_check(&c.b[i], t0, -ESHUTDOWN);
    JT_ASSERT(dt < WAKE_LIMIT_MS, "handle_close itself took %.1f ms", dt);
    /* ids outlive the handle and fail cleanly until closed (rule 5) */
    uint8_t b[4];
    ssize_t r = jktcp_stream_read(c.sr, b, sizeof b, 0);
    JT_ASSERT(r == -ESHUTDOWN, "read after handle close: %zd (%s)", r, err_name(r));
    rc = jktcp_stream_close(c.sr);
    JT_ASSERT(rc == 0, "stream close after handle close: %s", err_name(rc));
    rc = jktcp_stream_close(c.sr);
    JT_ASSERT(rc == -EBADF, "second stream close after handle close: %s", err_name(rc));
    rc = jktcp_stream_close(c.sw);
    JT_ASSERT(rc == 0, "stream close after handle close: %s", err_name(rc));
    rc = jktcp_listener_close(c.l);
    JT_ASSERT(rc == 0, "listener close after handle close: %s", err_name(rc));
    tt_down(&c.t);
    jkt_server_stop(&c.echo);
    jkt_server_stop(&c.noread);
}

/* A connection the engine accepted and queued before the handle closed:
 * the listener is dead with the handle, so accept reports -ESHUTDOWN (and
 * must not touch the freed adapter). */
JT_TEST(thread_close, accept_after_handle_close, 30)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    jktcp_listener l = {0};
    int rc = jktcp_handle_listen(h, 7001, 4, &l);
    JT_ASSERT(rc == 0, "listen: %s", err_name(rc));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl = sockaddr_for(AF_INET, JKT_LOCAL_IP4, 7001, &ss);
    JT_ASSERT(connect(fd, (struct sockaddr *)&ss, sl) == 0, "kernel connect: %s", strerror(errno));
    sleep_ms(100); /* the engine sees the final ACK and queues the stream */
    t.h = (jktcp_handle){0};
    rc = jktcp_handle_close(h, 0);
    JT_ASSERT(rc == 0, "handle_close: %s", err_name(rc));
    jktcp_stream s = {0};
    rc = jktcp_listener_accept(l, 0, &s);
    if (rc == 0 && s.id)
        jktcp_stream_abort(s);
    JT_ASSERT(rc == -ESHUTDOWN, "accept after handle close: %s, expected %s", err_name(rc),
              err_name(-ESHUTDOWN));
    jktcp_listener_close(l);
    close(fd);
    tt_down(&t);
}

/* A connect to 198.18.0.77: inside the test's private /24, owned by nobody,
 * and the namespace does not forward, so the SYNs go unanswered. */
#define BLACKHOLE_IP4 "198.18.0.77"

JT_TEST(thread_close, handle_close_wakes_connect, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, BLACKHOLE_IP4, 0, 0);
    /* the timeout alone ends an unanswered connect */
    jktcp_stream s = {0};
    uint64_t t0 = now_ns();
    int rc = jktcp_handle_connect(h, 80, 300, &s);
    double dt = ms_since(t0, now_ns());
    JT_ASSERT(rc == -ETIMEDOUT && !s.id, "connect to a silent peer: %s", err_name(rc));
    JT_ASSERT(dt >= 290 && dt < 300 + WAKE_LIMIT_MS, "connect timeout 300 ms took %.1f ms", dt);

    struct blocked b[2] = {{.op = OP_CONNECT, .h = h, .port = 80},
                           {.op = OP_CONNECT, .h = h, .port = 443}};
    blocked_start(&b[0]);
    blocked_start(&b[1]);
    blocked_settle(b, 2);
    t.h = (jktcp_handle){0};
    t0 = now_ns();
    rc = jktcp_handle_close(h, 0);
    JT_ASSERT(rc == 0, "handle_close: %s", err_name(rc));
    blocked_check(&b[0], t0, -ESHUTDOWN);
    blocked_check(&b[1], t0, -ESHUTDOWN);
    tt_down(&t);
}

/* ------------------------------------------------------------------------ */
/* 8. Back-pressure                                                         */
/* ------------------------------------------------------------------------ */

#define BP_SNDBUF (1 * MiB)
#define BP_CHUNK (4 * MiB)

JT_TEST(thread, backpressure_writer_blocks_memory_bounded, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, BP_SNDBUF, 256 * KiB);
    struct jkt_server srv = {.rcvbuf = 64 * 1024};
    server_up(&t, &srv, JKT_SRV_NOREAD);
    uint8_t *chunk = malloc(BP_CHUNK);
    JT_ASSERT(chunk, "malloc");
    jkt_pattern_fill(chunk, BP_CHUNK, 0, 5); /* touched before the baseline */
    jktcp_stream s = connect_ok(h, srv.port);
    long rss0 = rss_bytes();
    const int timeout = 25;
    uint64_t accepted = 0, tried = 0;
    int eagain = 0, shorts = 0;
    double slowest = 0;
    uint64_t tstart = now_ns();
    while (tried < 256ull * MiB) {
        uint64_t t0 = now_ns();
        ssize_t r = jktcp_stream_write(s, chunk, BP_CHUNK, timeout);
        double dt = ms_since(t0, now_ns());
        tried += BP_CHUNK;
        if (r > 0) {
            accepted += (uint64_t)r;
            if (r < (ssize_t)BP_CHUNK)
                shorts++;
        } else {
            JT_ASSERT(r == -EAGAIN, "write to a peer that does not read: %zd (%s)", r,
                      err_name(r));
            eagain++;
            JT_ASSERT(dt >= timeout - 1, "-EAGAIN after %.1f ms, before the %d ms timeout", dt,
                      timeout);
        }
        if (dt > slowest)
            slowest = dt;
    }
    double total_ms = ms_since(tstart, now_ns());
    /* write_all: the timeout covers the whole call */
    uint64_t t0 = now_ns();
    ssize_t r = jktcp_stream_write_all(s, chunk, BP_CHUNK, 100);
    double dt_all = ms_since(t0, now_ns());
    long rss1 = rss_bytes();
    JT_ASSERT(r == -EAGAIN, "write_all into a full buffer: %zd (%s)", r, err_name(r));
    JT_ASSERT(dt_all >= 99 && dt_all < 100 + WAKE_LIMIT_MS * 2, "write_all(100 ms) took %.1f ms",
              dt_all);
    JT_ASSERT(eagain > 0, "the writer never blocked");
    JT_ASSERT(slowest < timeout + 200 * SLOW_FACTOR, "a %d ms write took %.1f ms", timeout,
              slowest);
    JT_ASSERT(accepted < BP_SNDBUF + 8 * MiB,
              "%llu bytes accepted by a peer that does not read (send buffer %u)",
              (unsigned long long)accepted, BP_SNDBUF);
    long growth = rss1 - rss0;
    JT_ASSERT(growth < (long)(32 * MiB + BP_SNDBUF + 256 * KiB),
              "RSS grew by %ld KiB while writing 256 MiB into a stalled stream", growth / 1024);
    jktcp_info info;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    JT_LOG("back-pressure: tried 256 MiB in %.0f ms, accepted %llu KiB (%d short, %d EAGAIN), "
           "queued %llu KiB, snd_wnd %u, RSS +%ld KiB",
           total_ms, (unsigned long long)(accepted / 1024), shorts, eagain,
           (unsigned long long)(info.bytes_queued / 1024), info.snd_wnd, growth / 1024);
    JT_ASSERT(info.bytes_queued <= BP_SNDBUF, "bytes_queued %llu > SNDBUF",
              (unsigned long long)info.bytes_queued);
    jktcp_stream_abort(s);
    free(chunk);
    tt_down(&t);
    jkt_server_stop(&srv);
}

/* Kernel source that writes with MSG_DONTWAIT and notices when it blocks. */
struct wsrc {
    int lfd;
    uint32_t seed;
    atomic_bool blocked, resume, eagain_seen;
    atomic_ulong sent;
    uint64_t tail; /* bytes sent after resume */
    int err;
    pthread_t th;
};

static void *wsrc_main(void *arg)
{
    struct wsrc *w = arg;
    int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        w->err = errno;
        return NULL;
    }
    int sb = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    uint8_t *buf = malloc(64 * KiB);
    uint64_t off = 0, stall_ms = 0;
    while (stall_ms < 1000) {
        jkt_pattern_fill(buf, 64 * KiB, off, w->seed);
        ssize_t n = send(fd, buf, 64 * KiB, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (uint64_t)n;
            atomic_store(&w->sent, off);
            stall_ms = 0;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            w->err = errno;
            goto out;
        }
        atomic_store(&w->eagain_seen, true);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 100) == 0)
            stall_ms += 100;
    }
    atomic_store(&w->blocked, true);
    while (!atomic_load(&w->resume))
        sleep_ms(2);
    /* blocking now: the reader drains, the window must open again */
    for (uint64_t end = off + 2 * MiB; off < end;) {
        jkt_pattern_fill(buf, 64 * KiB, off, w->seed);
        ssize_t n = send(fd, buf, 64 * KiB, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = n < 0 ? errno : EIO;
            goto out;
        }
        off += (uint64_t)n;
        w->tail += (uint64_t)n;
    }
    atomic_store(&w->sent, off);
out:
    free(buf);
    close(fd);
    return NULL;
}

#define WIN_RCVBUF (256 * 1024)

JT_TEST(thread, backpressure_reader_closes_window, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, WIN_RCVBUF);
    static struct wsrc w;
    memset(&w, 0, sizeof w);
    w.seed = 0x51DE;
    uint16_t port = 0;
    w.lfd = kernel_listen(AF_INET, &port, 4);
    JT_ASSERT(w.lfd >= 0, "listen: %s", strerror(-w.lfd));
    start_thread(&w.th, wsrc_main, &w);
    jktcp_stream s = connect_ok(h, port);
    for (int i = 0; i < 3000 * SLOW_FACTOR && !atomic_load(&w.blocked) && !w.err; i++)
        sleep_ms(5);
    JT_ASSERT(atomic_load(&w.blocked), "the kernel source never blocked (sent %lu, err %d)",
              (unsigned long)atomic_load(&w.sent), w.err);
    JT_ASSERT(atomic_load(&w.eagain_seen), "send(MSG_DONTWAIT) never returned EAGAIN");
    unsigned long sent = atomic_load(&w.sent);
    jktcp_info info;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    JT_LOG("reader stopped: kernel sent %lu KiB before blocking; readable %llu KiB, rcv_wnd %u",
           sent / 1024, (unsigned long long)(info.bytes_readable / 1024), info.rcv_wnd);
    JT_ASSERT(info.rcv_wnd == 0, "rcv_wnd %u with a full receive buffer", info.rcv_wnd);
    JT_ASSERT(info.bytes_readable <= WIN_RCVBUF && info.bytes_readable >= WIN_RCVBUF / 2,
              "bytes_readable %llu (RCVBUF %u)", (unsigned long long)info.bytes_readable,
              WIN_RCVBUF);
    JT_ASSERT(sent < WIN_RCVBUF + 8 * MiB, "kernel pushed %lu bytes into a stalled reader", sent);
    sleep_ms(200);
    JT_ASSERT(atomic_load(&w.sent) == sent, "the kernel kept sending into a zero window");

    atomic_store(&w.resume, true);
    size_t cap = 128 * KiB;
    uint8_t *buf = malloc(cap);
    uint64_t got = 0, bad = UINT64_MAX;
    ssize_t r;
    while ((r = jktcp_stream_read(s, buf, cap, IO_TIMEOUT)) > 0) {
        size_t at = jkt_pattern_check(buf, (size_t)r, got, w.seed);
        if (at != (size_t)r && bad == UINT64_MAX)
            bad = got + at;
        got += (uint64_t)r;
    }
    free(buf);
    join_or_fail(w.th, 10000, "kernel source");
    JT_ASSERT(r == 0, "read ended with %zd (%s) after %llu bytes", r, err_name(r),
              (unsigned long long)got);
    JT_ASSERT(w.err == 0, "kernel source: %s", strerror(w.err));
    JT_ASSERT(w.tail == 2 * MiB, "kernel sent only %llu bytes after the window reopened",
              (unsigned long long)w.tail);
    JT_ASSERT(got == atomic_load(&w.sent), "read %llu of %lu bytes", (unsigned long long)got,
              (unsigned long)atomic_load(&w.sent));
    JT_ASSERT(bad == UINT64_MAX, "data differs at byte %llu", (unsigned long long)bad);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    close(w.lfd);
    tt_down(&t);
}

/* ------------------------------------------------------------------------ */
/* 9. An idle handle does not spin                                          */
/* ------------------------------------------------------------------------ */

JT_TEST(thread, idle_handle_sleeps, 30)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    struct jkt_server srv = {0};
    server_up(&t, &srv, JKT_SRV_ECHO);
    jktcp_stream s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = connect_ok(h, srv.port);
        char msg[100], back[100];
        memset(msg, 'a' + i, sizeof msg);
        JT_ASSERT(jktcp_stream_write_all(s[i], msg, sizeof msg, IO_TIMEOUT) == sizeof msg, "write");
        JT_ASSERT(read_exact(s[i], back, sizeof back, IO_TIMEOUT) == sizeof back, "read");
    }
    sleep_ms(500); /* delayed ACKs on both sides settle */
    jktcp_stats a, b;
    JT_ASSERT(jktcp_handle_stats(h, &a, sizeof a) == 0, "stats");
    double cpu0 = cpu_seconds();
    sleep_ms(1000);
    double cpu1 = cpu_seconds();
    JT_ASSERT(jktcp_handle_stats(h, &b, sizeof b) == 0, "stats");
    /* the second stats call wakes the I/O thread once itself */
    long idle = (long)(b.io_wakeups - a.io_wakeups) - 1;
    JT_LOG("idle 1 s with 4 open streams: %ld I/O-thread wake-ups, %.1f ms CPU", idle,
           (cpu1 - cpu0) * 1e3);
    JT_ASSERT(idle < 5, "%ld wake-ups in 1 s idle", idle);
    JT_ASSERT(cpu1 - cpu0 < 0.05 * SLOW_FACTOR, "%.1f ms CPU in 1 s idle", (cpu1 - cpu0) * 1e3);
    for (int i = 0; i < 4; i++)
        JT_ASSERT(jktcp_stream_close(s[i]) == 0, "close");
    tt_down(&t);
    jkt_server_stop(&srv);
}

/* ------------------------------------------------------------------------ */
/* 10. jktcp_stream_poll_fd                                                 */
/* ------------------------------------------------------------------------ */

struct poller {
    int fd;
    bool woke;
    uint64_t t_wake;
    pthread_t th;
};

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    p->woke = rig_fd_readable(p->fd, 10000);
    p->t_wake = now_ns();
    return NULL;
}

JT_TEST(thread, poll_fd_readiness, 30)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    struct jkt_server srv = {0};
    server_up(&t, &srv, JKT_SRV_ECHO);
    jktcp_stream s = connect_ok(h, srv.port);
    int fd = jktcp_stream_poll_fd(s, JKTCP_POLL_READ);
    JT_ASSERT(fd >= 0, "poll_fd: %s", err_name(fd));
    JT_ASSERT(jktcp_stream_poll_fd(s, JKTCP_POLL_READ) == fd, "poll_fd changed between calls");
    sleep_ms(20);
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable before any data");

    const char msg[] = "hello, poll fd!";
    size_t n = sizeof msg - 1;
    JT_ASSERT(jktcp_stream_write(s, msg, n, IO_TIMEOUT) == (ssize_t)n, "write");
    JT_ASSERT(rig_fd_readable(fd, 5000), "not readable after the echo arrived");
    char back[64];
    JT_ASSERT(jktcp_stream_read(s, back, 5, IO_TIMEOUT) == 5, "read 5");
    jktcp_info info;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    if (info.bytes_readable > 0)
        JT_ASSERT(rig_fd_readable(fd, 0), "not readable with %llu bytes left",
                  (unsigned long long)info.bytes_readable);
    JT_ASSERT(read_exact(s, back + 5, n - 5, IO_TIMEOUT) == (ssize_t)(n - 5), "read rest");
    JT_ASSERT(memcmp(back, msg, n) == 0, "echo mismatch");
    JT_ASSERT(!rig_fd_readable(fd, 0), "still readable after draining");
    sleep_ms(50);
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable again without new data");

    /* a thread parked in poll() wakes when data arrives */
    struct poller p = {.fd = fd};
    start_thread(&p.th, poller_main, &p);
    sleep_ms(100);
    uint64_t t0 = now_ns();
    JT_ASSERT(jktcp_stream_write(s, "x", 1, IO_TIMEOUT) == 1, "write x");
    join_or_fail(p.th, 15000, "poller");
    JT_ASSERT(p.woke, "poll() in another thread did not wake for data");
    JT_LOG("poll fd: woke %.2f ms after the write (one round trip)", ms_since(t0, p.t_wake));
    JT_ASSERT(jktcp_stream_read(s, back, sizeof back, IO_TIMEOUT) == 1, "read x");
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable after draining x");

    /* end of stream: readable, and stays readable (level-triggered) */
    JT_ASSERT(jktcp_stream_shutdown(s) == 0, "shutdown");
    JT_ASSERT(rig_fd_readable(fd, 5000), "not readable at end of stream");
    JT_ASSERT(jktcp_stream_read(s, back, sizeof back, 0) == 0, "EOF");
    JT_ASSERT(rig_fd_readable(fd, 0), "not readable after EOF was read (EOF is permanent)");
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    tt_down(&t);
    jkt_server_stop(&srv);
}

/* ------------------------------------------------------------------------ */
/* 11. Listener: kernel clients connect to jktcp                            */
/* ------------------------------------------------------------------------ */

#define LS_PORT 8080
#define LS_CLIENTS 4
#define LS_BYTES (256 * KiB)

struct ls_client {
    int family, id;
    uint64_t got, bad_at;
    int err;
    pthread_t th;
};

static void *ls_client_main(void *arg)
{
    struct ls_client *c = arg;
    c->bad_at = UINT64_MAX;
    int fd = socket(c->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TCHECK(fd >= 0, "socket");
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_storage ss;
    socklen_t sl = sockaddr_for(c->family, jkt_local_ip(c->family), LS_PORT, &ss);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        c->err = errno;
        close(fd);
        return NULL;
    }
    uint8_t *buf = malloc(LS_BYTES);
    jkt_pattern_fill(buf, LS_BYTES, 0, 0x1000u + (uint32_t)c->id);
    size_t off = 0;
    while (off < LS_BYTES) {
        ssize_t n = send(fd, buf + off, LS_BYTES - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->err = errno;
            goto out;
        }
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = read(fd, buf, LS_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            c->err = errno;
            break;
        }
        if (n == 0)
            break;
        size_t at = jkt_pattern_check(buf, (size_t)n, c->got, 0x1000u + (uint32_t)c->id);
        if (at != (size_t)n && c->bad_at == UINT64_MAX)
            c->bad_at = c->got + at;
        c->got += (uint64_t)n;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

struct ls_echo {
    jktcp_stream s;
    uint64_t echoed;
    pthread_t th;
};

static void *ls_echo_main(void *arg)
{
    struct ls_echo *e = arg;
    uint8_t buf[16 * 1024];
    for (;;) {
        ssize_t r = jktcp_stream_read(e->s, buf, sizeof buf, IO_TIMEOUT);
        if (r == 0)
            break;
        TCHECK(r > 0, "echo read: %zd (%s)", r, err_name(r));
        ssize_t w = jktcp_stream_write_all(e->s, buf, (size_t)r, IO_TIMEOUT);
        TCHECK(w == r, "echo write: %zd (%s)", w, err_name(w));
        e->echoed += (uint64_t)r;
    }
    int rc = jktcp_stream_close(e->s);
    TCHECK(rc == 0, "close: %s", err_name(rc));
    return NULL;
}

static void listener_run(int family)
{
    struct tt t;
    tt_up(&t, family, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    jktcp_listener l = {0}, l2 = {0};
    int rc = jktcp_handle_listen(h, LS_PORT, 16, &l);
    JT_ASSERT(rc == 0, "listen: %s", err_name(rc));
    rc = jktcp_handle_listen(h, LS_PORT, 16, &l2);
    JT_ASSERT(rc == -EADDRINUSE, "second listen on the port: %s", err_name(rc));
    jktcp_stream none = {0};
    rc = jktcp_listener_accept(l, 0, &none);
    JT_ASSERT(rc == -EAGAIN, "accept with nothing pending: %s", err_name(rc));

    struct ls_client c[LS_CLIENTS];
    for (int i = 0; i < LS_CLIENTS; i++) {
        c[i] = (struct ls_client){.family = family, .id = i};
        start_thread(&c[i].th, ls_client_main, &c[i]);
    }
    struct ls_echo e[LS_CLIENTS];
    for (int i = 0; i < LS_CLIENTS; i++) {
        e[i] = (struct ls_echo){0};
        rc = jktcp_listener_accept(l, 10000 * SLOW_FACTOR, &e[i].s);
        JT_ASSERT(rc == 0 && e[i].s.id, "accept %d: %s", i, err_name(rc));
        jktcp_info info;
        JT_ASSERT(jktcp_stream_info(e[i].s, &info, sizeof info) == 0, "info");
        JT_ASSERT(info.local_port == LS_PORT, "accepted stream's local port %u", info.local_port);
        start_thread(&e[i].th, ls_echo_main, &e[i]);
    }
    for (int i = 0; i < LS_CLIENTS; i++) {
        join_or_fail(c[i].th, 30000 * SLOW_FACTOR, "kernel client");
        join_or_fail(e[i].th, 30000 * SLOW_FACTOR, "jktcp echo");
    }
    assert_no_thread_failures();
    for (int i = 0; i < LS_CLIENTS; i++) {
        JT_ASSERT(c[i].err == 0, "client %d: %s", i, strerror(c[i].err));
        JT_ASSERT(c[i].got == LS_BYTES, "client %d: %llu of %u bytes echoed", i,
                  (unsigned long long)c[i].got, LS_BYTES);
        JT_ASSERT(c[i].bad_at == UINT64_MAX, "client %d: echo differs at %llu", i,
                  (unsigned long long)c[i].bad_at);
    }
    /* a port nobody listens on is refused */
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl = sockaddr_for(family, jkt_local_ip(family), LS_PORT + 1, &ss);
    int cr = connect(fd, (struct sockaddr *)&ss, sl);
    int ce = errno;
    close(fd);
    JT_ASSERT(cr != 0 && ce == ECONNREFUSED, "kernel connect to a closed jktcp port: %s",
              cr == 0 ? "connected" : strerror(ce));
    jktcp_listener_close(l);
    tt_down(&t);
}

JT_TEST(thread, listener_accept_v4, 60)
{
    listener_run(AF_INET);
}

JT_TEST(thread, listener_accept_v6, 60)
{
    listener_run(AF_INET6);
}

/* ------------------------------------------------------------------------ */
/* 12. 64-byte ping-pong latency                                            */
/* ------------------------------------------------------------------------ */

#define PP_ROUNDS 2000

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

JT_TEST(thread, pingpong_64B_latency, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    struct jkt_server srv = {0};
    server_up(&t, &srv, JKT_SRV_ECHO);
    jktcp_stream s = connect_ok(h, srv.port);
    static uint64_t rtt[PP_ROUNDS];
    uint8_t msg[64], back[64];
    for (int i = 0; i < PP_ROUNDS; i++) {
        jkt_pattern_fill(msg, sizeof msg, (uint64_t)i * 64, 0x99);
        uint64_t t0 = now_ns();
        ssize_t w = jktcp_stream_write(s, msg, sizeof msg, IO_TIMEOUT);
        JT_ASSERT(w == 64, "round %d: write %zd (%s)", i, w, err_name(w));
        ssize_t r = read_exact(s, back, sizeof back, IO_TIMEOUT);
        rtt[i] = now_ns() - t0;
        JT_ASSERT(r == 64, "round %d: read %zd (%s)", i, r, err_name(r));
        JT_ASSERT(memcmp(msg, back, 64) == 0, "round %d: echo mismatch", i);
    }
    qsort(rtt, PP_ROUNDS, sizeof rtt[0], cmp_u64);
    double p50 = (double)rtt[PP_ROUNDS / 2] / 1e3, p99 = (double)rtt[PP_ROUNDS * 99 / 100] / 1e3,
           mx = (double)rtt[PP_ROUNDS - 1] / 1e3, mn = (double)rtt[0] / 1e3;
    JT_LOG("ping-pong 64 B x %d: min %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us", PP_ROUNDS,
           mn, p50, p99, mx);
    JT_ASSERT(p50 < 20000.0 * SLOW_FACTOR, "p50 round trip %.1f us", p50);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    tt_down(&t);
    jkt_server_stop(&srv);
}
