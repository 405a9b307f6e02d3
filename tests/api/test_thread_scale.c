/* SPDX-License-Identifier: MIT */
/*
 * Scale and cost: a thousand streams at once, bulk transfers (64 MiB on
 * one stream, 8 MiB on eight), an idle handle that does not spin, 64-byte
 * ping-pong latency.
 *
 * Suite `thread`: the threaded handle (jktcp_handle, jktcp_stream,
 * jktcp_listener) against the Linux kernel's TCP in a private network
 * namespace over TUN (thread_test.h). Written against tests/support/minitest.h:
 * the same source runs under Criterion and under ThreadSanitizer
 * (`make test-tsan`). Skipped (not failed) without network namespaces or
 * /dev/net/tun.
 */
#include "minitest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include <unistd.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "thread_test.h"

/* ------------------------------------------------------------------------ */
/* A thousand streams open at once                                          */
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
#define MANY_THREADS 16

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
    /* a loss-free link: every SYN answered the first time (issue 11) */
    JT_LOG("connect phase: %llu retransmits", (unsigned long long)st.retransmits);
    JT_ASSERT(st.retransmits == 0, "%llu SYNs retransmitted", (unsigned long long)st.retransmits);
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
/* Bulk: 64 MiB each way on one stream, 8 MiB each way on 8 at once         */
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
/* 64-byte ping-pong latency                                                */
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
