/* SPDX-License-Identifier: MIT */
/*
 * Many threads on the same streams: whole write_all calls never interleave,
 * streams handed between threads, created / read / closed in three
 * threads, connects racing with closes and with jktcp_handle_close.
 *
 * Suite `thread`: the threaded handle (jktcp_handle, jktcp_stream,
 * jktcp_listener) against the Linux kernel's TCP in a private network
 * namespace over TUN (thread_test.h). Written against tests/support/minitest.h:
 * the same source runs under Criterion and under ThreadSanitizer
 * (`make test-tsan`). Skipped (not failed) without network namespaces or
 * /dev/net/tun.
 */
#include "minitest.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "thread_test.h"

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

/* ------------------------------------------------------------------------ */
/* Sixteen writers on one stream: whole write_all calls never interleave    */
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
/* Eight threads pass streams to each other through queues                  */
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
/* Created in one thread, read in a second, closed in a third               */
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
/* Connects racing with stream closes and with jktcp_handle_close           */
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
