/* SPDX-License-Identifier: MIT */
/*
 * Suite `fault`: the fault-injecting transport (jktcp_transport_faulty)
 * and jktcp under loss, reordering, duplication, corruption, blackouts and
 * transport failures.
 *
 *  - unit_*: the wrapper alone over a SOCK_SEQPACKET socketpair.
 *  - b2b_*: two jktcp adapters back to back over a SOCK_SEQPACKET
 *    socketpair, each end wrapped in a faulty transport, one thread per
 *    adapter (198.18.0.1 listens, 198.18.0.2 connects).
 *  - kernel_*: jktcp against the Linux kernel over TUN in a private
 *    network namespace (tests/netns.c), the TUN transport wrapped.
 *
 * Loss tests lower JKTCP_OPT_RTO_MIN_MS to 20 (and the kernel's route
 * rto_min to 20ms inside the namespace) to keep them fast. Every failure
 * message carries the seed; JKTCP_FAULT_SEED=<n> in the environment
 * replaces the default seeds. Figures (sizes, times, retransmits, fault
 * counters) go to stderr.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "transport.h"
#include "tuntest.h"

#define MiB (1024u * 1024u)

static uint64_t seed_or(uint64_t dflt)
{
    const char *e = getenv("JKTCP_FAULT_SEED");
    return e && *e ? strtoull(e, NULL, 0) : dflt;
}

static void msleep(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ====================================================================== */
/* Unit tests: the wrapper over a socketpair                              */
/* ====================================================================== */

#define UFRAME 200

struct upair {
    jktcp_transport *t; /* faulty, over sv[0] */
    int peer;           /* sv[1]: the test plays the other end */
    int sv0;
};

static void upair_open(struct upair *u, const jktcp_fault_config *cfg)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
    jktcp_transport *inner;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_PACKET, &inner), 0);
    cr_assert_eq(jktcp_transport_set_flags(inner, JKTCP_TRANSPORT_CLOSE_FD), 0);
    int r = jktcp_transport_faulty(inner, cfg, sizeof *cfg, &u->t);
    cr_assert_eq(r, 0, "jktcp_transport_faulty: %s", jktcp_strerror(r));
    u->peer = sv[1];
    u->sv0 = sv[0];
    int sz = 4 << 20;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
    }
}

static void upair_close(struct upair *u)
{
    jktcp_transport_free(u->t);
    close(u->peer);
}

static void uframe(uint8_t *buf, uint32_t i)
{
    for (int k = 0; k < UFRAME; k++)
        buf[k] = (uint8_t)(i * 7 + k);
    memcpy(buf, &i, sizeof i);
}

/* Write n frames into the peer end (toward the wrapper's recv). */
static void peer_send(struct upair *u, uint32_t first, uint32_t n)
{
    uint8_t b[UFRAME];
    for (uint32_t i = first; i < first + n; i++) {
        uframe(b, i);
        cr_assert_eq(write(u->peer, b, UFRAME), UFRAME);
    }
}

struct got {
    uint32_t n;
    uint32_t id[4096];
    size_t len[4096];
    uint8_t data[4096][UFRAME];
};

static void got_add(struct got *g, const uint8_t *p, size_t len)
{
    cr_assert_lt(g->n, 4096);
    uint32_t id = 0xffffffffu;
    if (len >= 4)
        memcpy(&id, p, 4);
    g->id[g->n] = id;
    g->len[g->n] = len;
    memset(g->data[g->n], 0, UFRAME);
    memcpy(g->data[g->n], p, len < UFRAME ? len : UFRAME);
    g->n++;
}

/* recv until the wrapper has nothing; with want > 0, until want frames
 * came, waiting on its poll fd for held frames (at most wait_ms in all). */
static void wrap_recv_until(struct upair *u, struct got *g, uint32_t want, int wait_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)(wait_ms > 0 ? wait_ms : 0) * 1000u;
    for (;;) {
        const uint8_t *p;
        size_t len;
        int r = jk_transport_recv(u->t, &p, &len);
        cr_assert_geq(r, 0, "recv: %s", jktcp_strerror(r));
        if (r == 1) {
            got_add(g, p, len);
            continue;
        }
        uint64_t now = jkt_now_us();
        if (g->n >= want || now >= end)
            return;
        struct pollfd pf = {jk_transport_poll_fd(u->t), jk_transport_poll_events(u->t), 0};
        if (poll(&pf, 1, (int)((end - now) / 1000u) + 1) <= 0)
            return;
    }
}

static void wrap_recv_all(struct upair *u, struct got *g, int wait_ms)
{
    wrap_recv_until(u, g, 0, wait_ms);
}

static void peer_recv_all(struct upair *u, struct got *g)
{
    static uint8_t b[65536];
    ssize_t n;
    while ((n = read(u->peer, b, sizeof b)) > 0)
        got_add(g, b, (size_t)n);
}

static struct got *got_new(void)
{
    struct got *g = calloc(1, sizeof *g);
    cr_assert_not_null(g);
    return g;
}

Test(fault, unit_drop_all)
{
    jktcp_fault_config cfg = {.in.drop = 1.0, .out.drop = 1.0, .seed = seed_or(1)};
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 100);
    wrap_recv_all(&u, g, 0);
    cr_assert_eq(g->n, 0, "seed %" PRIu64 ": %u frames passed a 100%% drop", cfg.seed, g->n);
    uint8_t b[UFRAME];
    for (uint32_t i = 0; i < 100; i++) {
        uframe(b, i);
        cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    }
    cr_assert_eq(jk_transport_flush(u.t), 0);
    peer_recv_all(&u, g);
    cr_assert_eq(g->n, 0, "seed %" PRIu64 ": %u frames sent through a 100%% drop", cfg.seed, g->n);
    jktcp_fault_stats st;
    cr_assert_eq(jktcp_transport_fault_stats(u.t, &st, sizeof st), 0);
    cr_assert_eq(st.in.frames, 100);
    cr_assert_eq(st.in.dropped, 100);
    cr_assert_eq(st.out.frames, 100);
    cr_assert_eq(st.out.dropped, 100);
    cr_assert_eq(st.in.passed + st.out.passed, 0);
    upair_close(&u);
    free(g);
}

Test(fault, unit_duplicate_all)
{
    jktcp_fault_config cfg = {.in.duplicate = 1.0, .out.duplicate = 1.0, .seed = seed_or(2)};
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 50);
    wrap_recv_all(&u, g, 0);
    cr_assert_eq(g->n, 100, "seed %" PRIu64 ": got %u frames, want 100", cfg.seed, g->n);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(g->id[i], i / 2, "seed %" PRIu64 ": frame %u is #%u", cfg.seed, i, g->id[i]);
    struct got *h = got_new();
    uint8_t b[UFRAME];
    for (uint32_t i = 0; i < 50; i++) {
        uframe(b, i);
        cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    }
    cr_assert_eq(jk_transport_flush(u.t), 0);
    peer_recv_all(&u, h);
    cr_assert_eq(h->n, 100, "seed %" PRIu64 ": peer got %u frames, want 100", cfg.seed, h->n);
    for (uint32_t i = 0; i < 100; i++) {
        cr_assert_eq(h->id[i], i / 2);
        uframe(b, i / 2);
        cr_assert_eq(memcmp(h->data[i], b, UFRAME), 0);
    }
    jktcp_fault_stats st;
    jktcp_transport_fault_stats(u.t, &st, sizeof st);
    cr_assert_eq(st.in.duplicated, 50);
    cr_assert_eq(st.out.duplicated, 50);
    cr_assert_eq(st.in.passed, 100);
    cr_assert_eq(st.out.passed, 100);
    upair_close(&u);
    free(g);
    free(h);
}

/* Every id 0..n-1 exactly once; returns the number of inversions. */
static unsigned check_permutation(const struct got *g, uint32_t n, uint64_t seed)
{
    cr_assert_eq(g->n, n, "seed %" PRIu64 ": got %u frames, want %u", seed, g->n, n);
    static bool seen[4096];
    memset(seen, 0, sizeof seen);
    unsigned inv = 0;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_lt(g->id[i], n, "seed %" PRIu64 ": bad id", seed);
        cr_assert(!seen[g->id[i]], "seed %" PRIu64 ": #%u twice", seed, g->id[i]);
        seen[g->id[i]] = true;
        if (i && g->id[i] < g->id[i - 1])
            inv++;
    }
    return inv;
}

Test(fault, unit_reorder)
{
    jktcp_fault_config cfg = {.seed = seed_or(3)};
    cfg.in.reorder = cfg.out.reorder = 0.3;
    cfg.in.reorder_frames = cfg.out.reorder_frames = 3;
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 200);
    wrap_recv_all(&u, g, 0);
    unsigned inv = check_permutation(g, 200, cfg.seed);
    cr_assert_gt(inv, 10, "seed %" PRIu64 ": only %u inversions", cfg.seed, inv);
    /* Held for 3 later frames: no frame is more than a few places late. */
    for (uint32_t i = 0; i < 200; i++)
        cr_assert_lt(abs((int)g->id[i] - (int)i), 20, "seed %" PRIu64, cfg.seed);

    struct got *h = got_new();
    uint8_t b[UFRAME];
    for (uint32_t i = 0; i < 200; i++) {
        uframe(b, i);
        cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
        if (i % 50 == 49)
            cr_assert_eq(jk_transport_flush(u.t), 0);
    }
    peer_recv_all(&u, h);
    inv = check_permutation(h, 200, cfg.seed);
    cr_assert_gt(inv, 10, "seed %" PRIu64 ": only %u outbound inversions", cfg.seed, inv);
    jktcp_fault_stats st;
    jktcp_transport_fault_stats(u.t, &st, sizeof st);
    cr_assert_gt(st.in.reordered, 30);
    cr_assert_gt(st.out.reordered, 30);
    upair_close(&u);
    free(g);
    free(h);
}

/* reorder_max_us == 0: held frames come out when the burst ends, even if
 * fewer than reorder_frames later frames followed. */
Test(fault, unit_reorder_end_of_burst)
{
    jktcp_fault_config cfg = {.seed = seed_or(4)};
    cfg.in.reorder = 1.0;
    cfg.in.reorder_frames = 100;
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 5);
    wrap_recv_all(&u, g, 0); /* no waiting: must all come out now */
    check_permutation(g, 5, cfg.seed);
    upair_close(&u);
    free(g);
}

/* reorder_max_us > 0: a held frame at the end of a burst comes out on the
 * timer (the poll fd wakes), not only when more frames arrive. */
Test(fault, unit_reorder_timed)
{
    jktcp_fault_config cfg = {.seed = seed_or(5)};
    cfg.in.reorder = 1.0;
    cfg.in.reorder_frames = 100;
    cfg.in.reorder_max_us = 20000;
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 5);
    uint64_t t0 = jkt_now_us();
    wrap_recv_all(&u, g, 0);
    cr_assert_eq(g->n, 0);
    wrap_recv_until(&u, g, 5, 1000);
    uint64_t dt = jkt_now_us() - t0;
    check_permutation(g, 5, cfg.seed);
    cr_assert_geq(dt, 19000, "released after %" PRIu64 " us", dt);
    upair_close(&u);
    free(g);
}

static unsigned bit_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    unsigned d = 0;
    for (size_t i = 0; i < n; i++)
        d += (unsigned)__builtin_popcount((unsigned)(a[i] ^ b[i]));
    return d;
}

Test(fault, unit_corrupt)
{
    jktcp_fault_config cfg = {.seed = seed_or(6)};
    cfg.in.corrupt = 1.0;
    cfg.in.corrupt_bits = 1;
    cfg.out.corrupt = 1.0;
    cfg.out.corrupt_bits = 4;
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 100);
    wrap_recv_all(&u, g, 0);
    cr_assert_eq(g->n, 100);
    uint8_t b[UFRAME];
    for (uint32_t i = 0; i < 100; i++) {
        cr_assert_eq(g->len[i], UFRAME);
        uframe(b, i);
        unsigned d = bit_diff(g->data[i], b, UFRAME);
        cr_assert_eq(d, 1, "seed %" PRIu64 ": frame %u differs in %u bits", cfg.seed, i, d);
    }
    struct got *h = got_new();
    unsigned seen[5] = {0};
    for (uint32_t i = 0; i < 100; i++) {
        uframe(b, i);
        cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    }
    peer_recv_all(&u, h);
    cr_assert_eq(h->n, 100);
    for (uint32_t i = 0; i < 100; i++) {
        uframe(b, i);
        unsigned d = bit_diff(h->data[i], b, UFRAME);
        cr_assert(d >= 1 && d <= 4, "seed %" PRIu64 ": frame %u differs in %u bits", cfg.seed, i, d);
        seen[d]++;
    }
    cr_assert(seen[1] && seen[4], "seed %" PRIu64 ": bit counts not spread", cfg.seed);
    jktcp_fault_stats st;
    jktcp_transport_fault_stats(u.t, &st, sizeof st);
    cr_assert_eq(st.in.corrupted, 100);
    cr_assert_eq(st.out.corrupted, 100);
    upair_close(&u);
    free(g);
    free(h);
}

Test(fault, unit_truncate)
{
    jktcp_fault_config cfg = {.in.truncate = 1.0, .seed = seed_or(7)};
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 100);
    wrap_recv_all(&u, g, 0);
    cr_assert_eq(g->n, 100);
    uint8_t b[UFRAME];
    for (uint32_t i = 0; i < 100; i++) {
        cr_assert(g->len[i] >= 1 && g->len[i] < UFRAME, "seed %" PRIu64 ": len %zu", cfg.seed,
                  g->len[i]);
        uframe(b, i);
        cr_assert_eq(memcmp(g->data[i], b, g->len[i]), 0);
    }
    upair_close(&u);
    free(g);
}

/* Same seed and frames -> same faults; another seed -> other faults. */
static void mixed_run(uint64_t seed, struct got *g)
{
    jktcp_fault_config cfg = {.seed = seed};
    jktcp_fault_dir d = {.drop = 0.2, .duplicate = 0.2, .reorder = 0.2, .corrupt = 0.2,
                         .truncate = 0.2, .reorder_frames = 2, .corrupt_bits = 3};
    cfg.in = cfg.out = d;
    struct upair u;
    upair_open(&u, &cfg);
    for (int round = 0; round < 10; round++) {
        peer_send(&u, (uint32_t)round * 30, 30);
        wrap_recv_all(&u, g, 0);
    }
    uint8_t b[UFRAME];
    for (uint32_t i = 0; i < 300; i++) {
        uframe(b, i);
        cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
        if (i % 30 == 29)
            jk_transport_flush(u.t);
    }
    peer_recv_all(&u, g);
    upair_close(&u);
}

static bool got_eq(const struct got *a, const struct got *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->len[i] != b->len[i] || memcmp(a->data[i], b->data[i], UFRAME))
            return false;
    return true;
}

Test(fault, unit_deterministic)
{
    uint64_t seed = seed_or(0xfa17);
    struct got *a = got_new(), *b = got_new(), *c = got_new();
    mixed_run(seed, a);
    mixed_run(seed, b);
    mixed_run(seed + 1, c);
    cr_assert(got_eq(a, b), "seed %" PRIu64 ": two runs differ", seed);
    cr_assert(!got_eq(a, c), "seeds %" PRIu64 " and +1 gave the same faults", seed);
    cr_assert(a->n > 400 && a->n < 800, "seed %" PRIu64 ": %u frames", seed, a->n);
    free(a);
    free(b);
    free(c);
}

/* Delayed frames come out on time through the poll fd's timer, both ways
 * (outbound ones at the recv call that follows the wake-up, as the
 * adapter makes one on every wake-up). */
Test(fault, unit_delay)
{
    jktcp_fault_config cfg = {.seed = seed_or(8)};
    cfg.in.delay = cfg.out.delay = 1.0;
    cfg.in.delay_us = cfg.out.delay_us = 30000;
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 3);
    uint64_t t0 = jkt_now_us();
    wrap_recv_all(&u, g, 0);
    cr_assert_eq(g->n, 0);
    wrap_recv_until(&u, g, 3, 2000);
    uint64_t dt = jkt_now_us() - t0;
    cr_assert_eq(g->n, 3);
    cr_assert(dt >= 29000 && dt < 1000000, "inbound delay %" PRIu64 " us", dt);

    struct got *h = got_new();
    uint8_t b[UFRAME];
    uframe(b, 9);
    t0 = jkt_now_us();
    cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    cr_assert_eq(jk_transport_flush(u.t), 0);
    peer_recv_all(&u, h);
    cr_assert_eq(h->n, 0);
    struct pollfd pf = {jk_transport_poll_fd(u.t), jk_transport_poll_events(u.t), 0};
    cr_assert_eq(poll(&pf, 1, 2000), 1);
    wrap_recv_all(&u, g, 0);
    dt = jkt_now_us() - t0;
    peer_recv_all(&u, h);
    cr_assert_eq(h->n, 1);
    cr_assert(dt >= 29000 && dt < 1000000, "outbound delay %" PRIu64 " us", dt);
    /* Nothing held: the poll fd is quiet again (the timer was disarmed). */
    cr_assert_eq(poll(&pf, 1, 50), 0);
    upair_close(&u);
    free(g);
    free(h);
}

Test(fault, unit_blackout_and_pool)
{
    jktcp_fault_config cfg = {.seed = seed_or(9), .pool_frames = 4};
    cfg.in.delay = 1.0;
    cfg.in.delay_us = 10000000; /* longer than the test: only pool pressure releases */
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = got_new();
    peer_send(&u, 0, 10);
    wrap_recv_all(&u, g, 0);
    /* The pool stays full with 4; a frame that found it full pushed the
     * oldest out early and went through unheld. */
    cr_assert_eq(g->n, 6, "seed %" PRIu64, cfg.seed);
    jktcp_fault_stats st;
    jktcp_transport_fault_stats(u.t, &st, sizeof st);
    cr_assert_gt(st.in.pool_full, 0);
    cr_assert_eq(st.in.pool_full + st.in.delayed, 10);

    cr_assert_eq(jktcp_transport_fault_blackout(u.t, 1), 0);
    uint8_t b[UFRAME];
    uframe(b, 1);
    cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    struct got *h = got_new();
    peer_recv_all(&u, h);
    cr_assert_eq(h->n, 0);
    cr_assert_eq(jktcp_transport_fault_blackout(u.t, 0), 0);
    cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    peer_recv_all(&u, h);
    cr_assert_eq(h->n, 1);
    jktcp_transport_fault_stats(u.t, &st, sizeof st);
    cr_assert_eq(st.out.blackout, 1);
    cr_assert_eq(st.out.passed, 1);
    /* Not a faulty transport / bad arguments. */
    jktcp_transport *plain;
    int sv[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    jktcp_transport_fd(sv[0], JKTCP_FRAMING_PACKET, &plain);
    cr_assert_eq(jktcp_transport_fault_blackout(plain, 1), -EINVAL);
    cr_assert_eq(jktcp_transport_fault_stats(plain, &st, sizeof st), -EINVAL);
    jktcp_fault_config bad = {.in.drop = 1.5};
    jktcp_transport *out = (jktcp_transport *)1;
    cr_assert_eq(jktcp_transport_faulty(plain, &bad, sizeof bad, &out), -EINVAL); /* frees plain */
    cr_assert_null(out);
    close(sv[0]);
    close(sv[1]);
    upair_close(&u);
    free(g);
    free(h);
}

/* ====================================================================== */
/* Driving a connection: a duplex pattern transfer                        */
/* ====================================================================== */

#define CHUNK (64u * 1024u)

struct xfer {
    uint64_t send_bytes, recv_bytes; /* what to send / expect */
    uint32_t send_seed, recv_seed;
    int timeout_ms;                  /* whole transfer */
    /* results */
    uint64_t sent, got;
    int err;          /* 0, or the error that ended it */
    uint64_t mismatch; /* stream offset of the first bad byte, UINT64_MAX if none */
    double secs;
    jktcp_info info;
};

/* Write send_bytes, shutdown, read recv_bytes and EOF, verifying. */
static void run_xfer(jktcp_adapter *a, jktcp_conn *c, struct xfer *x)
{
    uint8_t *wb = malloc(CHUNK), *rb = malloc(CHUNK);
    uint64_t t0 = jkt_now_us(), end = t0 + (uint64_t)x->timeout_ms * 1000u;
    bool shut = false, eof = false;
    x->mismatch = UINT64_MAX;
    x->err = 0;
    while (!(shut && eof)) {
        bool progress = false;
        if (x->sent < x->send_bytes) {
            size_t n = x->send_bytes - x->sent > CHUNK ? CHUNK : (size_t)(x->send_bytes - x->sent);
            jkt_pattern_fill(wb, n, x->sent, x->send_seed);
            ssize_t w = jktcp_conn_write(c, wb, n, 0);
            if (w > 0) {
                x->sent += (uint64_t)w;
                progress = true;
            } else if (w != -EAGAIN) {
                x->err = (int)w;
                break;
            }
        } else if (!shut) {
            int r = jktcp_conn_shutdown(c);
            if (r < 0) {
                x->err = r;
                break;
            }
            shut = true;
        }
        if (!eof) {
            ssize_t n = jktcp_conn_read(c, rb, CHUNK, 0);
            if (n > 0) {
                size_t k = jkt_pattern_check(rb, (size_t)n, x->got, x->recv_seed);
                if (k != (size_t)n && x->mismatch == UINT64_MAX)
                    x->mismatch = x->got + k;
                x->got += (uint64_t)n;
                progress = true;
            } else if (n == 0) {
                eof = true;
            } else if (n != -EAGAIN) {
                x->err = (int)n;
                break;
            }
        }
        if (jkt_now_us() > end) {
            x->err = -ETIME;
            break;
        }
        if (!progress) {
            int r = jktcp_adapter_poll(a, 10);
            if (r < 0) {
                x->err = r;
                break;
            }
        }
    }
    x->secs = (double)(jkt_now_us() - t0) / 1e6;
    jktcp_conn_info(c, &x->info, sizeof x->info);
    free(wb);
    free(rb);
}

static void set_fast(jktcp_adapter *a, long rto_min, long retries, long rto_max)
{
    cr_assert_eq(jktcp_adapter_set_option(a, JKTCP_OPT_RTO_MIN_MS, rto_min), 0);
    cr_assert_eq(jktcp_adapter_set_option(a, JKTCP_OPT_RTO_INIT_MS, 100), 0);
    if (retries)
        cr_assert_eq(jktcp_adapter_set_option(a, JKTCP_OPT_MAX_RETRIES, retries), 0);
    if (rto_max)
        cr_assert_eq(jktcp_adapter_set_option(a, JKTCP_OPT_RTO_MAX_MS, rto_max), 0);
}

static void print_info(const char *tag, const jktcp_info *n)
{
    fprintf(stderr,
            "  %s conn %u->%u: %s rexmit %u rto %u tlp %u recoveries %u; srtt %u us rto %u us"
            " cwnd %u ssthresh %u snd_wnd %u rcv_wnd %u queued %" PRIu64 "\n",
            tag, n->local_port, n->remote_port, jktcp_state_name(n->state), n->retransmits, n->timeouts, n->tail_probes,
            n->recoveries, n->srtt_us, n->rto_us, n->cwnd, n->ssthresh, n->snd_wnd,
            n->rcv_wnd, n->bytes_queued);
}

static void print_fault_stats(const char *tag, jktcp_transport *t)
{
    jktcp_fault_stats s;
    if (jktcp_transport_fault_stats(t, &s, sizeof s) < 0)
        return;
    fprintf(stderr,
            "  %s faults in: frames %" PRIu64 " dropped %" PRIu64 " dup %" PRIu64
            " reord %" PRIu64 " corrupt %" PRIu64 " trunc %" PRIu64 " delay %" PRIu64
            " blackout %" PRIu64 " poolfull %" PRIu64 "\n",
            tag, s.in.frames, s.in.dropped, s.in.duplicated, s.in.reordered, s.in.corrupted,
            s.in.truncated, s.in.delayed, s.in.blackout, s.in.pool_full);
    fprintf(stderr,
            "  %s faults out: frames %" PRIu64 " dropped %" PRIu64 " dup %" PRIu64
            " reord %" PRIu64 " corrupt %" PRIu64 " trunc %" PRIu64 " delay %" PRIu64
            " blackout %" PRIu64 " poolfull %" PRIu64 "\n",
            tag, s.out.frames, s.out.dropped, s.out.duplicated, s.out.reordered, s.out.corrupted,
            s.out.truncated, s.out.delayed, s.out.blackout, s.out.pool_full);
}

static void print_adapter(const char *tag, jktcp_adapter *a)
{
    jktcp_stats st;
    if (jktcp_adapter_stats(a, &st, sizeof st) < 0)
        return;
    fprintf(stderr,
            "  %s adapter: frames in %" PRIu64 " out %" PRIu64 " retransmits %" PRIu64
            " drop_checksum %" PRIu64 " drop_length %" PRIu64 " drop_short %" PRIu64
            " drop_invalid %" PRIu64 " rst_sent %" PRIu64 "\n",
            tag, st.frames_in, st.frames_out, st.retransmits, st.drop_checksum, st.drop_length,
            st.drop_short, st.drop_invalid, st.rst_sent);
}

/* ====================================================================== */
/* Two adapters back to back                                              */
/* ====================================================================== */

#define B2B_SERVER_IP "198.18.0.1"
#define B2B_CLIENT_IP "198.18.0.2"
#define B2B_PORT 5001
/* The retransmission floor on these sub-millisecond links (both ends). */
#define B2B_RTO_MIN_MS 5

struct b2b_side {
    jktcp_adapter *a;
    jktcp_transport *ft; /* the faulty wrapper (owned by a) */
    bool server;
    struct xfer x;
    int setup_err;
    int read_block_ms; /* >0: instead of a transfer, block in one read this long */
    ssize_t block_result;
    atomic_bool done;  /* this side's calls have returned */
    atomic_bool *stop; /* keep driving the adapter until the test says stop */
    jktcp_conn_listener *l;
};

struct b2b {
    int sv[2];
    struct b2b_side s, c;
    uint64_t seed;
    atomic_bool stop;
};

/* Inner transport with switchable read/write errors (ops over an fd). */
struct flaky {
    int fd;
    atomic_int rerr, werr;
};

static ssize_t flaky_read(void *ctx, void *buf, size_t len)
{
    struct flaky *f = ctx;
    int e = atomic_load(&f->rerr);
    if (e)
        return e;
    ssize_t n = read(f->fd, buf, len);
    return n < 0 ? -errno : n;
}

static ssize_t flaky_write(void *ctx, const void *buf, size_t len)
{
    struct flaky *f = ctx;
    int e = atomic_load(&f->werr);
    if (e)
        return e;
    ssize_t n = send(f->fd, buf, len, MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
}

/* One end of a back-to-back link: fd (through fl's switchable errors if
 * given) wrapped in the fault transport, an adapter on it, and a pcap if
 * JKTCP_FAULT_PCAP names one. */
static jktcp_adapter *b2b_adapter(int fd, const jktcp_fault_config *cfg, bool server,
                                  struct flaky *fl, jktcp_transport **ft)
{
    jktcp_transport *inner;
    jktcp_adapter *a;
    int r;
    if (fl) {
        fl->fd = fd;
        cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
        jktcp_io_ops ops = {.read = flaky_read, .write = flaky_write, .poll_fd = fd};
        r = jktcp_transport_ops(&ops, sizeof ops, fl, JKTCP_FRAMING_PACKET, &inner);
    } else {
        r = jktcp_transport_fd(fd, JKTCP_FRAMING_PACKET, &inner);
    }
    cr_assert_eq(r, 0);
    r = jktcp_transport_faulty(inner, cfg, sizeof *cfg, ft);
    cr_assert_eq(r, 0, "faulty: %s", jktcp_strerror(r));
    r = jktcp_adapter_new(*ft, server ? B2B_SERVER_IP : B2B_CLIENT_IP,
                          server ? B2B_CLIENT_IP : B2B_SERVER_IP, &a);
    cr_assert_eq(r, 0);
    const char *pc = getenv("JKTCP_FAULT_PCAP");
    if (pc && *pc) {
        char path[512];
        snprintf(path, sizeof path, "%s-%s.pcap", pc, server ? "server" : "client");
        jktcp_adapter_pcap(a, path);
    }
    return a;
}

static void b2b_side_up(struct b2b_side *sd, int fd, const jktcp_fault_config *cfg, bool server,
                        struct flaky *fl)
{
    sd->a = b2b_adapter(fd, cfg, server, fl, &sd->ft);
    sd->server = server;
    if (server) {
        int r;
        r = jktcp_adapter_listen(sd->a, B2B_PORT, 16, &sd->l);
        cr_assert_eq(r, 0);
    }
}

/* A socketpair with room for a full window of 1500-byte frames in flight. */
static void b2b_socketpair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    int sz = 4 << 20;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
    }
}

/* cfg_s / cfg_c: faults on the server's / client's transport. */
static void b2b_up(struct b2b *b, const jktcp_fault_config *cfg_s, const jktcp_fault_config *cfg_c,
                   struct flaky *fl_s, struct flaky *fl_c)
{
    memset(b, 0, sizeof *b);
    b2b_socketpair(b->sv);
    b2b_side_up(&b->s, b->sv[0], cfg_s, true, fl_s);
    b2b_side_up(&b->c, b->sv[1], cfg_c, false, fl_c);
}

static void *b2b_thread(void *arg)
{
    struct b2b_side *sd = arg;
    jktcp_conn *c = NULL;
    int r;
    if (sd->server)
        r = jktcp_adapter_accept(sd->l, 10000, &c);
    else
        r = jktcp_conn_connect(sd->a, B2B_PORT, 10000, &c);
    if (r < 0) {
        sd->setup_err = r;
        atomic_store(&sd->done, true);
        return NULL;
    }
    if (sd->read_block_ms) {
        uint8_t b[100];
        sd->block_result = jktcp_conn_read(c, b, sizeof b, sd->read_block_ms);
    } else {
        run_xfer(sd->a, c, &sd->x);
    }
    jktcp_conn_info(c, &sd->x.info, sizeof sd->x.info);
    jktcp_conn_close(c);
    atomic_store(&sd->done, true);
    /* The other side may still need this one's retransmissions (its data,
     * or the ACKs and FIN it is waiting for): keep the adapter moving. */
    while (!atomic_load(sd->stop))
        if (jktcp_adapter_poll(sd->a, 10) < 0)
            msleep(10);
    return NULL;
}

static void b2b_start(struct b2b *b, pthread_t th[2])
{
    atomic_store(&b->stop, false);
    b->s.stop = b->c.stop = &b->stop;
    cr_assert_eq(pthread_create(&th[0], NULL, b2b_thread, &b->s), 0);
    cr_assert_eq(pthread_create(&th[1], NULL, b2b_thread, &b->c), 0);
}

/* Join within limit_ms (the test fails rather than hangs). */
static void b2b_join(struct b2b *b, pthread_t th[2], int limit_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)limit_ms * 1000u;
    while ((!atomic_load(&b->s.done) || !atomic_load(&b->c.done)) && jkt_now_us() < end)
        msleep(5);
    bool both = atomic_load(&b->s.done) && atomic_load(&b->c.done);
    atomic_store(&b->stop, true);
    if (both) {
        pthread_join(th[0], NULL);
        pthread_join(th[1], NULL);
    }
    cr_assert(both,
              "seed %" PRIu64 ": adapters still running after %d ms (server sent %" PRIu64
              " got %" PRIu64 ", client sent %" PRIu64 " got %" PRIu64 ")",
              b->seed, limit_ms, b->s.x.sent, b->s.x.got, b->c.x.sent, b->c.x.got);
}

static void b2b_down(struct b2b *b)
{
    jktcp_adapter_free(b->s.a);
    jktcp_adapter_free(b->c.a);
    close(b->sv[0]);
    close(b->sv[1]);
}

static void b2b_report(const char *name, struct b2b *b)
{
    fprintf(stderr,
            "fault/%s seed %" PRIu64 ": client->server %" PRIu64 " B, server->client %" PRIu64
            " B in %.2f s; retransmits client %u server %u; srtt %u/%u us\n",
            name, b->seed, b->c.x.sent, b->s.x.sent,
            b->c.x.secs > b->s.x.secs ? b->c.x.secs : b->s.x.secs, b->c.x.info.retransmits,
            b->s.x.info.retransmits, b->c.x.info.srtt_us, b->s.x.info.srtt_us);
    print_info("client", &b->c.x.info);
    print_info("server", &b->s.x.info);
    print_fault_stats("client", b->c.ft);
    print_fault_stats("server", b->s.ft);
    print_adapter("client", b->c.a);
    print_adapter("server", b->s.a);
}

static void b2b_check(struct b2b *b, struct b2b_side *sd, const char *who)
{
    cr_assert_eq(sd->setup_err, 0, "seed %" PRIu64 ": %s setup: %s", b->seed, who,
                 jktcp_strerror(sd->setup_err));
    cr_assert_eq(sd->x.err, 0, "seed %" PRIu64 ": %s transfer ended with %s (sent %" PRIu64
                 " got %" PRIu64 ")", b->seed, who, jktcp_strerror(sd->x.err), sd->x.sent, sd->x.got);
    cr_assert_eq(sd->x.mismatch, UINT64_MAX, "seed %" PRIu64 ": %s DATA CORRUPTION at offset %" PRIu64,
                 b->seed, who, sd->x.mismatch);
    cr_assert_eq(sd->x.sent, sd->x.send_bytes);
    cr_assert_eq(sd->x.got, sd->x.recv_bytes, "seed %" PRIu64 ": %s got %" PRIu64 " of %" PRIu64,
                 b->seed, who, sd->x.got, sd->x.recv_bytes);
}

static void b2b_xfer_setup(struct b2b *b, uint64_t bytes, int timeout_ms)
{
    b->c.x = (struct xfer){.send_bytes = bytes, .recv_bytes = bytes, .send_seed = 11,
                           .recv_seed = 22, .timeout_ms = timeout_ms};
    b->s.x = (struct xfer){.send_bytes = bytes, .recv_bytes = bytes, .send_seed = 22,
                           .recv_seed = 11, .timeout_ms = timeout_ms};
}

static void b2b_lossy(const char *name, jktcp_fault_dir d, uint64_t bytes, uint64_t seed,
                      int limit_ms)
{
    struct b2b b;
    /* Faults on each side's outgoing frames only, so each direction of
     * the link crosses one wrapper: d's rates are the link's rates (faults
     * on both wrappers would compound 20% into 36%). It also keeps a frame
     * from being corrupted twice: two flipped bits can cancel in the
     * ones'-complement checksum (same bit, same byte lane, 0->1 and 1->0). */
    jktcp_fault_config cs = {.out = d, .seed = seed};
    jktcp_fault_config cc = {.out = d, .seed = seed ^ 0x5555};
    b2b_up(&b, &cs, &cc, NULL, NULL);
    b.seed = seed;
    /* a sub-millisecond link: cap the backoff at 1 s so a run of lost
     * retransmissions (36% each at 20% loss both ways) cannot stall the
     * transfer for tens of seconds; 15 retries keep -ETIMEDOUT out of reach */
    set_fast(b.s.a, B2B_RTO_MIN_MS, 15, 1000);
    set_fast(b.c.a, B2B_RTO_MIN_MS, 15, 1000);
    b2b_xfer_setup(&b, bytes, limit_ms);
    pthread_t th[2];
    b2b_start(&b, th);
    b2b_join(&b, th, limit_ms + 5000);
    b2b_report(name, &b);
    b2b_down(&b); /* first: a failed assert must not lose the pcap's tail */
    b2b_check(&b, &b.c, "client");
    b2b_check(&b, &b.s, "server");
}

Test(fault, b2b_clean, .timeout = 60)
{
    jktcp_fault_dir d = {0};
    b2b_lossy("b2b_clean", d, 16 * MiB, seed_or(100), 30000);
}

/* The loss matrix's profile: drop `loss` of the frames, and duplicate and
 * reorder half as many (a reordered frame goes out after three later
 * ones, or after 2 ms). */
static jktcp_fault_dir loss_faults(double loss)
{
    return (jktcp_fault_dir){.drop = loss, .duplicate = loss / 2, .reorder = loss / 2,
                             .reorder_frames = 3, .reorder_max_us = 2000};
}

static void b2b_loss_matrix(const char *name, double loss, uint64_t bytes, uint64_t seed)
{
    b2b_lossy(name, loss_faults(loss), bytes, seed_or(seed), 240000);
}

Test(fault, b2b_loss1_reorder_dup, .timeout = 120)
{
    b2b_loss_matrix("b2b_loss1_reorder_dup", 0.01, 64 * MiB, 106);
}

Test(fault, b2b_loss5_reorder_dup, .timeout = 120)
{
    b2b_loss_matrix("b2b_loss5_reorder_dup", 0.05, 64 * MiB, 101);
}

Test(fault, b2b_loss20_reorder_dup, .timeout = 300)
{
    b2b_loss_matrix("b2b_loss20_reorder_dup", 0.20, 64 * MiB, 107);
}

/* Corruption with one flipped bit is always caught by a checksum, so the
 * data must arrive intact; truncation is caught by the length checks. */
Test(fault, b2b_corrupt_truncate, .timeout = 90)
{
    jktcp_fault_dir d = {.drop = 0.02, .duplicate = 0.02, .reorder = 0.05, .reorder_frames = 2,
                         .corrupt = 0.05, .corrupt_bits = 1, .truncate = 0.02};
    b2b_lossy("b2b_corrupt_truncate", d, 4 * MiB, seed_or(102), 60000);
}

Test(fault, b2b_loss20_delay, .timeout = 90)
{
    jktcp_fault_dir d = {.drop = 0.20, .duplicate = 0.05, .reorder = 0.10, .reorder_frames = 4,
                         .reorder_max_us = 5000, .delay = 0.05, .delay_us = 3000};
    b2b_lossy("b2b_loss20_delay", d, 512 * 1024, seed_or(103), 60000);
}

/* Blackout longer than the retry budget: both ends give up with
 * -ETIMEDOUT in bounded time. */
Test(fault, b2b_blackout_timeout, .timeout = 60)
{
    struct b2b b;
    jktcp_fault_config cfg = {.seed = seed_or(104)};
    b2b_up(&b, &cfg, &cfg, NULL, NULL);
    b.seed = cfg.seed;
    /* budget: RTOs 20+40+80+160+200+200 ms ~ 0.7 s */
    set_fast(b.s.a, 20, 5, 200);
    set_fast(b.c.a, 20, 5, 200);
    b2b_xfer_setup(&b, 1024 * MiB, 30000);
    pthread_t th[2];
    b2b_start(&b, th);
    msleep(300);
    cr_assert(b.c.x.got > 0 || b.s.x.got > 0 || true);
    jktcp_transport_fault_blackout(b.s.ft, 1);
    jktcp_transport_fault_blackout(b.c.ft, 1);
    uint64_t t0 = jkt_now_us();
    b2b_join(&b, th, 10000);
    double dt = (double)(jkt_now_us() - t0) / 1e6;
    b2b_report("b2b_blackout_timeout", &b);
    fprintf(stderr, "  both ends ended %.2f s after the blackout began: client %s, server %s\n", dt,
            jktcp_strerror(b.c.x.err), jktcp_strerror(b.s.x.err));
    cr_assert_eq(b.c.setup_err, 0);
    cr_assert_eq(b.s.setup_err, 0);
    cr_assert_eq(b.c.x.err, -ETIMEDOUT, "seed %" PRIu64 ": client ended with %s", b.seed,
                 jktcp_strerror(b.c.x.err));
    cr_assert_eq(b.s.x.err, -ETIMEDOUT, "seed %" PRIu64 ": server ended with %s", b.seed,
                 jktcp_strerror(b.s.x.err));
    cr_assert_lt(dt, 5.0, "timeout took %.2f s", dt);
    b2b_down(&b);
}

/* Blackout shorter than the budget: the transfer recovers intact. */
Test(fault, b2b_blackout_recover, .timeout = 60)
{
    struct b2b b;
    jktcp_fault_config cfg = {.seed = seed_or(105)};
    b2b_up(&b, &cfg, &cfg, NULL, NULL);
    b.seed = cfg.seed;
    set_fast(b.s.a, 20, 8, 200);
    set_fast(b.c.a, 20, 8, 200);
    b2b_xfer_setup(&b, 32 * MiB, 30000);
    pthread_t th[2];
    b2b_start(&b, th);
    for (int i = 0; i < 3; i++) {
        msleep(150);
        jktcp_transport_fault_blackout(b.s.ft, 1);
        jktcp_transport_fault_blackout(b.c.ft, 1);
        msleep(250);
        jktcp_transport_fault_blackout(b.s.ft, 0);
        jktcp_transport_fault_blackout(b.c.ft, 0);
    }
    b2b_join(&b, th, 40000);
    b2b_report("b2b_blackout_recover", &b);
    b2b_check(&b, &b.c, "client");
    b2b_check(&b, &b.s, "server");
    jktcp_fault_stats st;
    jktcp_transport_fault_stats(b.c.ft, &st, sizeof st);
    cr_assert_gt(st.out.blackout + st.in.blackout, 0, "the blackouts hit no frame");
    b2b_down(&b);
}

/* ---- transport failures ------------------------------------------------ */

/* The peer end shut down (EOF on the inner transport): both adapters'
 * calls blocked in an unbounded read fail at once with the transport's
 * error. */
Test(fault, b2b_inner_eof, .timeout = 30)
{
    struct b2b b;
    jktcp_fault_config cfg = {.seed = seed_or(106)};
    b2b_up(&b, &cfg, &cfg, NULL, NULL);
    b.seed = cfg.seed;
    b.s.read_block_ms = -1;
    b.c.read_block_ms = -1;
    pthread_t th[2];
    b2b_start(&b, th);
    msleep(300);
    cr_assert(!atomic_load(&b.s.done) && !atomic_load(&b.c.done), "a read returned early: %zd %zd",
              b.s.block_result, b.c.block_result);
    uint64_t t0 = jkt_now_us();
    shutdown(b.sv[1], SHUT_RDWR);
    b2b_join(&b, th, 3000);
    double dt = (double)(jkt_now_us() - t0) / 1e6;
    fprintf(stderr, "fault/b2b_inner_eof: reads returned after %.3f s: server %s, client %s\n", dt,
            jktcp_strerror((int)b.s.block_result), jktcp_strerror((int)b.c.block_result));
    cr_assert_eq(b.s.setup_err, 0);
    cr_assert_eq(b.c.setup_err, 0);
    /* connections fail with -ENETDOWN (no TCP event gives it); the
     * adapter keeps the transport's own error: end of stream, -EPIPE */
    cr_assert_eq(b.s.block_result, -ENETDOWN, "server read: %s",
                 jktcp_strerror((int)b.s.block_result));
    cr_assert_eq(b.c.block_result, -ENETDOWN, "client read: %s",
                 jktcp_strerror((int)b.c.block_result));
    cr_assert_eq(jktcp_adapter_poll(b.s.a, 0), -EPIPE);
    cr_assert_eq(jktcp_adapter_poll(b.c.a, 0), -EPIPE);
    jktcp_conn *c;
    cr_assert_eq(jktcp_conn_connect(b.c.a, B2B_PORT, 1000, &c), -ENETDOWN);
    jktcp_conn_listener *l;
    cr_assert_eq(jktcp_adapter_listen(b.c.a, B2B_PORT + 1, 0, &l), -ENETDOWN);
    b2b_down(&b);
}

/* Read or write error in the inner transport in the middle of a transfer:
 * that side fails with the error; the other side (whose peer went silent)
 * times out within its retry budget. */
static void b2b_inner_error(const char *name, bool write_err)
{
    struct b2b b;
    struct flaky fl = {.fd = -1};
    jktcp_fault_config cfg = {.seed = seed_or(107)};
    b2b_up(&b, &cfg, &cfg, NULL, &fl);
    b.seed = cfg.seed;
    set_fast(b.s.a, 20, 5, 200);
    set_fast(b.c.a, 20, 5, 200);
    b2b_xfer_setup(&b, 1024 * MiB, 30000);
    pthread_t th[2];
    b2b_start(&b, th);
    msleep(300);
    uint64_t t0 = jkt_now_us();
    if (write_err)
        atomic_store(&fl.werr, -EIO);
    else
        atomic_store(&fl.rerr, -EIO);
    b2b_join(&b, th, 10000);
    double dt = (double)(jkt_now_us() - t0) / 1e6;
    fprintf(stderr, "fault/%s: ended %.2f s after the error: client %s (sent %" PRIu64
            "), server %s\n", name, dt, jktcp_strerror(b.c.x.err), b.c.x.sent,
            jktcp_strerror(b.s.x.err));
    cr_assert_eq(b.c.setup_err, 0);
    /* the connection's calls say -ENETDOWN, the adapter's poll the
     * transport's own error; the loop stops at whichever it meets first */
    cr_assert(b.c.x.err == -ENETDOWN || b.c.x.err == -EIO, "client ended with %s",
              jktcp_strerror(b.c.x.err));
    cr_assert(b.s.x.err == -ETIMEDOUT || b.s.x.err == -ECONNRESET, "server ended with %s",
              jktcp_strerror(b.s.x.err));
    cr_assert_lt(dt, 5.0);
    cr_assert_eq(jktcp_adapter_poll(b.c.a, 0), -EIO);
    b2b_down(&b);
}

Test(fault, b2b_inner_read_error, .timeout = 30) { b2b_inner_error("b2b_inner_read_error", false); }
Test(fault, b2b_inner_write_error, .timeout = 30) { b2b_inner_error("b2b_inner_write_error", true); }

/* ====================================================================== */
/* Against the Linux kernel over TUN                                      */
/* ====================================================================== */

struct kf {
    int family;
    struct jkt_tun tun;
    jktcp_transport *ft;
    jktcp_adapter *a;
    uint64_t seed;
    char cc[32]; /* the kernel peer's congestion control */
};

static void kf_up(struct kf *k, const jktcp_fault_config *cfg)
{
    memset(k, 0, sizeof *k);
    k->family = AF_INET;
    k->tun.fd = -1;
    k->seed = cfg->seed;
    jkt_tun_up_or_skip("fault", "jkt0", 1500, JKT_FAM_IPV4, &k->tun);
    /* The kernel peer is set up, inside our namespace, so that what is
     * measured is jktcp and not the kernel's own limits:
     * - its retransmission floor and ceiling (rto_min 20 ms, rto_max 1 s):
     *   its backoff would otherwise reach 120 s;
     * - congestion control bbr: a new namespace inherits the host's default,
     *   and cubic (Debian's) does not move 64 MiB at 20% loss even from one
     *   kernel to another (a lossy userspace bridge: under 30 MB in 300 s);
     * - tcp_retries2 255, and TCP_USER_TIMEOUT on the servers' sockets
     *   (kf_server): the kernel's give-up budget runs from the first resend
     *   of a recovery, and at 20% loss its recoveries run into each other
     *   for longer than that; once it dropped a healthy connection silently
     *   (no RST) and the test waited out its limit. */
    char out[512] = "";
    int rc = jkt_sh("ip route replace 198.18.0.0/24 dev jkt0 proto kernel scope link src 198.18.0.1 "
                "rto_min 20ms 2>&1; sysctl -qw net.ipv4.tcp_rto_max_ms=1000 2>&1; "
                "sysctl -qw net.ipv4.tcp_retries2=255 2>&1; "
                "sysctl -qw net.ipv4.tcp_congestion_control=bbr 2>&1; "
                "ip route show dev jkt0 2>&1",
                out, sizeof out);
    fprintf(stderr, "fault: kernel route (rc %d): %s", rc, out);
    jkt_sh("sysctl -n net.ipv4.tcp_congestion_control", k->cc, sizeof k->cc);
    k->cc[strcspn(k->cc, "\n")] = 0;
    jktcp_transport *inner;
    rc = jktcp_transport_fd(k->tun.fd, JKTCP_FRAMING_PACKET, &inner);
    cr_assert_eq(rc, 0);
    rc = jktcp_transport_faulty(inner, cfg, sizeof *cfg, &k->ft);
    cr_assert_eq(rc, 0, "faulty: %s", jktcp_strerror(rc));
    rc = jktcp_adapter_new(k->ft, JKT_LOCAL_IP4, JKT_KERNEL_IP4, &k->a);
    cr_assert_eq(rc, 0);
    const char *pc = getenv("JKTCP_FAULT_PCAP");
    if (pc && *pc) {
        char path[512];
        snprintf(path, sizeof path, "%s-kernel.pcap", pc);
        jktcp_adapter_pcap(k->a, path);
    }
    set_fast(k->a, 20, 15, 1000); /* the kernel's floor; see b2b_lossy */
}

static void kf_down(struct kf *k)
{
    jktcp_adapter_free(k->a);
    jkt_tun_close(&k->tun);
}

/* Longer than any test's limit: the kernel must not give up first (kf_up). */
#define KF_USER_TIMEOUT_MS 600000u

/* At 20% loss only a loss-tolerant kernel sender finishes (kf_up). */
static void kf_need_bbr(struct kf *k, double loss)
{
    if (loss < 0.2 || strcmp(k->cc, "bbr") == 0)
        return;
    kf_down(k);
    cr_skip_test("fault: the kernel peer runs '%s', not bbr (no tcp_bbr module?): at %.0f%% "
                 "loss it cannot move the data even to another kernel",
                 k->cc, loss * 100);
}

/* Upload to a verifying SINK and download from a SOURCE at the same time
 * (two connections, one single-threaded adapter), bytes each way. */
static void kernel_lossy(const char *name, double loss, uint64_t bytes, uint64_t seed,
                         int limit_s)
{
    jktcp_fault_config cfg = {.in = loss_faults(loss), .out = loss_faults(loss), .seed = seed};
    struct kf k;
    kf_up(&k, &cfg);
    kf_need_bbr(&k, loss);
    struct jkt_server sink = {.kind = JKT_SRV_SINK, .family = AF_INET, .verify = true,
                              .in_seed = 31, .user_timeout_ms = KF_USER_TIMEOUT_MS};
    struct jkt_server src = {.kind = JKT_SRV_SOURCE, .family = AF_INET, .nbytes = bytes,
                             .seed = 32, .user_timeout_ms = KF_USER_TIMEOUT_MS};
    cr_assert_eq(jkt_server_start(&sink), 0);
    cr_assert_eq(jkt_server_start(&src), 0);
    jktcp_conn *up, *down;
    int rc = jktcp_conn_connect(k.a, sink.port, 10000, &up);
    cr_assert_eq(rc, 0, "seed %" PRIu64 ": connect sink: %s", seed, jktcp_strerror(rc));
    rc = jktcp_conn_connect(k.a, src.port, 10000, &down);
    cr_assert_eq(rc, 0, "seed %" PRIu64 ": connect source: %s", seed, jktcp_strerror(rc));

    uint8_t *wb = malloc(CHUNK), *rb = malloc(CHUNK);
    uint64_t sent = 0, got = 0, mismatch = UINT64_MAX;
    bool shut = false, eof = false;
    int err = 0;
    uint64_t t0 = jkt_now_us(), end = t0 + (uint64_t)limit_s * 1000000u;
    double t_up = 0, t_down = 0;
    while (!(shut && eof) && !err) {
        bool progress = false;
        if (sent < bytes) {
            size_t n = bytes - sent > CHUNK ? CHUNK : (size_t)(bytes - sent);
            jkt_pattern_fill(wb, n, sent, 31);
            ssize_t w = jktcp_conn_write(up, wb, n, 0);
            if (w > 0) {
                sent += (uint64_t)w;
                progress = true;
            } else if (w != -EAGAIN) {
                err = (int)w;
            }
        } else if (!shut) {
            err = jktcp_conn_shutdown(up);
            shut = true;
        }
        if (!eof && !err) {
            ssize_t n = jktcp_conn_read(down, rb, CHUNK, 0);
            if (n > 0) {
                size_t m = jkt_pattern_check(rb, (size_t)n, got, 32);
                if (m != (size_t)n && mismatch == UINT64_MAX)
                    mismatch = got + m;
                got += (uint64_t)n;
                progress = true;
            } else if (n == 0) {
                eof = true;
                t_down = (double)(jkt_now_us() - t0) / 1e6;
            } else if (n != -EAGAIN) {
                err = (int)n;
            }
        }
        if (!progress && !err)
            jktcp_adapter_poll(k.a, 10);
        if (!t_up && atomic_load(&sink.bytes_in) == bytes)
            t_up = (double)(jkt_now_us() - t0) / 1e6;
        if (jkt_now_us() > end)
            err = -ETIME;
    }
    if (err) { /* what the kernel's side looks like when a run stalls */
        char ss[4096] = "";
        jkt_sh("ss -tinoe 2>&1 | head -40; nstat -az 2>&1 | "
               "grep -i -E 'paws|undo|spurious|timeout|dsack|abort' | grep -v ' 0 '",
               ss, sizeof ss);
        fprintf(stderr, "fault/%s: kernel sockets (source send failures: %lu):\n%s", name,
                (unsigned long)atomic_load(&src.resets), ss);
    }
    jktcp_info iu, id;
    jktcp_conn_info(up, &iu, sizeof iu);
    jktcp_conn_info(down, &id, sizeof id);
    /* The upload is complete when the sink has read it all. */
    jktcp_conn_close(down);
    while (!err && atomic_load(&sink.done) < 1 && jkt_now_us() < end)
        jktcp_adapter_poll(k.a, 10);
    if (!t_up)
        t_up = (double)(jkt_now_us() - t0) / 1e6;
    jktcp_conn_info(up, &iu, sizeof iu);
    jktcp_conn_close(up);
    jktcp_adapter_flush(k.a, 3000);
    jkt_server_stop(&sink);
    jkt_server_stop(&src);

    fprintf(stderr,
            "fault/%s seed %" PRIu64 ": loss %.0f%% each way (+dup %.1f%% reorder %.1f%%): "
            "upload %" PRIu64 " B in %.2f s (%.2f MB/s, %u rexmit), download %" PRIu64
            " B in %.2f s (%.2f MB/s); kernel sink got %lu B, mismatches %lu\n",
            name, seed, loss * 100, loss * 50, loss * 50, sent, t_up, (double)sent / t_up / 1e6,
            iu.retransmits, got, t_down, t_down > 0 ? (double)got / t_down / 1e6 : 0.0,
            (unsigned long)atomic_load(&sink.bytes_in), (unsigned long)atomic_load(&sink.mismatches));
    print_info("upload", &iu);
    print_info("download", &id);
    print_fault_stats("jktcp", k.ft);
    print_adapter("jktcp", k.a);
    free(wb);
    free(rb);
    kf_down(&k); /* first: a failed assert must not lose the pcap's tail */
    cr_assert_eq(err, 0, "seed %" PRIu64 ": transfer failed: %s (sent %" PRIu64 " got %" PRIu64 ")",
                 seed, jktcp_strerror(err), sent, got);
    cr_assert_eq(mismatch, UINT64_MAX, "seed %" PRIu64 ": DATA CORRUPTION downloading at %" PRIu64,
                 seed, mismatch);
    cr_assert_eq(got, bytes, "seed %" PRIu64 ": downloaded %" PRIu64 " of %" PRIu64, seed, got, bytes);
    cr_assert_eq(atomic_load(&sink.mismatches), 0, "seed %" PRIu64 ": DATA CORRUPTION uploading at %" PRIu64,
                 seed, sink.first_mismatch);
    cr_assert_eq(atomic_load(&sink.bytes_in), bytes, "seed %" PRIu64 ": sink got %lu of %" PRIu64,
                 seed, (unsigned long)atomic_load(&sink.bytes_in), bytes);
}

Test(fault, kernel_loss1, .timeout = 120)
{
    kernel_lossy("kernel_loss1", 0.01, 64 * MiB, seed_or(201), 90);
}
Test(fault, kernel_loss5, .timeout = 120)
{
    kernel_lossy("kernel_loss5", 0.05, 64 * MiB, seed_or(202), 90);
}
/* 20% each way: the case that found the receiver faults the kernel as
 * sender stalled on (one ACK per input batch, an old TSecr on the ACK for
 * a resent duplicate, reneging on SACKed islands) and what it lacked
 * (D-SACK: without it the kernel's download took 7-37 s, once over 4
 * minutes; with it 4-17 s). jktcp as sender takes 9-100 s: at 20% loss a
 * loss-halving sender keeps a window of about two segments and lives on
 * its timeouts (the kernel with cubic does not finish at all; kf_up). */
Test(fault, kernel_loss20, .timeout = 600)
{
    kernel_lossy("kernel_loss20", 0.20, 64 * MiB, seed_or(203), 500);
}

/* ---- threaded handle: 32 streams at once through a lossy link ---------- */

#define HSTREAMS 32
#define HCHUNK (16u * 1024u)

struct hstream {
    jktcp_handle h;
    uint16_t port;
    uint64_t bytes;
    uint32_t seed;
    int err;
    uint64_t echoed, mismatch;
    jktcp_info info;
};

/* Ping-pong through the kernel echo server: write a chunk, read it back. */
static void *hstream_thread(void *arg)
{
    struct hstream *hs = arg;
    jktcp_stream s;
    hs->mismatch = UINT64_MAX;
    hs->err = jktcp_handle_connect(hs->h, hs->port, 20000, &s);
    if (hs->err)
        return NULL;
    uint8_t *wb = malloc(HCHUNK), *rb = malloc(HCHUNK);
    uint64_t off = 0;
    while (off < hs->bytes && !hs->err) {
        size_t n = hs->bytes - off > HCHUNK ? HCHUNK : (size_t)(hs->bytes - off);
        jkt_pattern_fill(wb, n, off, hs->seed);
        ssize_t w = jktcp_stream_write_all(s, wb, n, 30000);
        if (w != (ssize_t)n) {
            hs->err = w < 0 ? (int)w : -EIO;
            break;
        }
        size_t got = 0;
        while (got < n) {
            ssize_t r = jktcp_stream_read(s, rb + got, n - got, 30000);
            if (r <= 0) {
                hs->err = r < 0 ? (int)r : -ECONNRESET;
                break;
            }
            got += (size_t)r;
        }
        if (hs->err)
            break;
        size_t k = jkt_pattern_check(rb, n, off, hs->seed);
        if (k != n && hs->mismatch == UINT64_MAX)
            hs->mismatch = off + k;
        off += n;
        hs->echoed = off;
    }
    jktcp_stream_info(s, &hs->info, sizeof hs->info);
    jktcp_stream_close(s);
    free(wb);
    free(rb);
    return NULL;
}

/* 32 client threads, each echoing `per_stream` bytes through port. */
static void run_32_clients(const char *name, jktcp_handle h, uint16_t port, uint64_t per_stream,
                           uint64_t seed, jktcp_transport *ft)
{
    static struct hstream hs[HSTREAMS];
    pthread_t th[HSTREAMS];
    uint64_t t0 = jkt_now_us();
    for (int i = 0; i < HSTREAMS; i++) {
        hs[i] = (struct hstream){.h = h, .port = port, .bytes = per_stream,
                                 .seed = 400u + (uint32_t)i};
        cr_assert_eq(pthread_create(&th[i], NULL, hstream_thread, &hs[i]), 0);
    }
    uint32_t rexmit = 0, rto = 0;
    for (int i = 0; i < HSTREAMS; i++) {
        pthread_join(th[i], NULL);
        rexmit += hs[i].info.retransmits;
        rto += hs[i].info.timeouts;
    }
    double dt = (double)(jkt_now_us() - t0) / 1e6;
    jktcp_stats st;
    jktcp_handle_stats(h, &st, sizeof st);
    fprintf(stderr,
            "fault/%s seed %" PRIu64 ": %d streams x %" PRIu64 " KiB echoed "
            "(%.1f MiB each way) in %.2f s; stream retransmits %u (timeouts %u), adapter "
            "retransmits %" PRIu64 ", io wakeups %" PRIu64 "\n",
            name, seed, HSTREAMS, per_stream / 1024, HSTREAMS * per_stream / 1048576.0, dt,
            rexmit, rto, st.retransmits, st.io_wakeups);
    print_fault_stats("client", ft);
    for (int i = 0; i < HSTREAMS; i++)
        if (hs[i].err) {
            char tag[48];
            snprintf(tag, sizeof tag, "failed stream %d", i);
            print_info(tag, &hs[i].info);
        }
    for (int i = 0; i < HSTREAMS; i++) {
        cr_expect_eq(hs[i].err, 0, "seed %" PRIu64 ": stream %d failed after %" PRIu64 " B: %s",
                     seed, i, hs[i].echoed, jktcp_strerror(hs[i].err));
        cr_expect_eq(hs[i].mismatch, UINT64_MAX, "seed %" PRIu64 ": stream %d DATA CORRUPTION at %" PRIu64,
                     seed, i, hs[i].mismatch);
        cr_expect_eq(hs[i].echoed, per_stream, "seed %" PRIu64 ": stream %d echoed %" PRIu64, seed,
                     i, hs[i].echoed);
    }
}

/* 32 streams through the threaded handle, each echoing `per_stream` bytes
 * through the kernel over a link losing `drop` of the frames each way (plus
 * half that duplicated and reordered). */
static void handle_32_streams(const char *name, double drop, uint64_t per_stream, uint64_t seed)
{
    jktcp_fault_config cfg = {.in = loss_faults(drop), .out = loss_faults(drop),
                              .seed = seed_or(seed)};
    struct kf k;
    kf_up(&k, &cfg);
    kf_need_bbr(&k, drop);
    struct jkt_server echo = {.kind = JKT_SRV_ECHO, .family = AF_INET,
                              .user_timeout_ms = KF_USER_TIMEOUT_MS};
    cr_assert_eq(jkt_server_start(&echo), 0);
    jktcp_handle h;
    int rc = jktcp_handle_start(k.a, &h);
    cr_assert_eq(rc, 0, "handle_start: %s", jktcp_strerror(rc));
    k.a = NULL; /* the handle owns it now */
    run_32_clients(name, h, echo.port, per_stream, cfg.seed, k.ft);
    jktcp_handle_close(h, 1000);
    jkt_server_stop(&echo);
    jkt_tun_close(&k.tun);
}

/* ---- two threaded handles back to back: jktcp echoes to jktcp ---------- */

struct b2b_echo {
    jktcp_stream s;
    int err;
    uint64_t bytes;
    jktcp_info info;
};

static void *b2b_echo_thread(void *arg)
{
    struct b2b_echo *e = arg;
    uint8_t *buf = malloc(HCHUNK);
    for (;;) {
        ssize_t r = jktcp_stream_read(e->s, buf, HCHUNK, 60000);
        if (r <= 0) {
            e->err = (int)r;
            break;
        }
        ssize_t w = jktcp_stream_write_all(e->s, buf, (size_t)r, 60000);
        if (w != r) {
            e->err = w < 0 ? (int)w : -EIO;
            break;
        }
        e->bytes += (uint64_t)r;
    }
    jktcp_stream_info(e->s, &e->info, sizeof e->info);
    jktcp_stream_close(e->s);
    free(buf);
    return NULL;
}

struct b2b_acceptor {
    jktcp_listener l;
    struct b2b_echo e[HSTREAMS];
    pthread_t th[HSTREAMS];
    int n, err;
};

static void *b2b_accept_thread(void *arg)
{
    struct b2b_acceptor *ac = arg;
    while (ac->n < HSTREAMS) {
        jktcp_stream s;
        int r = jktcp_listener_accept(ac->l, 30000, &s);
        if (r < 0) {
            ac->err = r;
            break;
        }
        ac->e[ac->n] = (struct b2b_echo){.s = s};
        if (pthread_create(&ac->th[ac->n], NULL, b2b_echo_thread, &ac->e[ac->n]) != 0) {
            jktcp_stream_close(s);
            ac->err = -EAGAIN;
            break;
        }
        ac->n++;
    }
    return NULL;
}

static jktcp_handle b2b_handle(int fd, const jktcp_fault_config *cfg, bool server,
                                jktcp_transport **ft)
{
    jktcp_adapter *a = b2b_adapter(fd, cfg, server, NULL, ft);
    jktcp_handle h;
    set_fast(a, B2B_RTO_MIN_MS, 15, 1000);
    int rc = jktcp_handle_start(a, &h);
    cr_assert_eq(rc, 0, "handle_start: %s", jktcp_strerror(rc));
    return h;
}

/* 32 streams through one handle, echoed by 32 streams of a second handle,
 * over a socketpair with faults on both ends. */
static void b2b_handle_32_streams(const char *name, double drop, uint64_t per_stream,
                                  uint64_t seed)
{
    int sv[2];
    b2b_socketpair(sv);
    seed = seed_or(seed);
    jktcp_fault_config cs = {.out = loss_faults(drop), .seed = seed}; /* see b2b_lossy */
    jktcp_fault_config cc = cs;
    cc.seed = seed ^ 0x5555;
    jktcp_transport *fts, *ftc;
    jktcp_handle hs = b2b_handle(sv[0], &cs, true, &fts);
    jktcp_handle hc = b2b_handle(sv[1], &cc, false, &ftc);
    static struct b2b_acceptor ac;
    memset(&ac, 0, sizeof ac);
    cr_assert_eq(jktcp_handle_listen(hs, B2B_PORT, HSTREAMS, &ac.l), 0);
    pthread_t at;
    cr_assert_eq(pthread_create(&at, NULL, b2b_accept_thread, &ac), 0);
    run_32_clients(name, hc, B2B_PORT, per_stream, seed, ftc);
    pthread_join(at, NULL);
    for (int i = 0; i < ac.n; i++)
        pthread_join(ac.th[i], NULL);
    cr_expect_eq(ac.err, 0, "accept: %s", jktcp_strerror(ac.err));
    cr_expect_eq(ac.n, HSTREAMS);
    for (int i = 0; i < ac.n; i++)
        if (ac.e[i].err) {
            char tag[48];
            snprintf(tag, sizeof tag, "failed server stream %d", i);
            print_info(tag, &ac.e[i].info);
        }
    for (int i = 0; i < ac.n; i++) {
        cr_expect_eq(ac.e[i].err, 0, "server stream %d: %s", i, jktcp_strerror(ac.e[i].err));
        cr_expect_eq(ac.e[i].bytes, per_stream, "server stream %d echoed %" PRIu64, i, ac.e[i].bytes);
    }
    jktcp_handle_close(hc, 1000);
    jktcp_handle_close(hs, 1000);
    close(sv[0]);
    close(sv[1]);
}

Test(fault, kernel_handle_32_streams_loss1, .timeout = 120)
{
    handle_32_streams("kernel_handle_32_streams_loss1", 0.01, 2 * 1024 * 1024, 301);
}

Test(fault, kernel_handle_32_streams_loss5, .timeout = 120)
{
    handle_32_streams("kernel_handle_32_streams_loss5", 0.05, 2 * 1024 * 1024, 302);
}

Test(fault, kernel_handle_32_streams_loss20, .timeout = 300)
{
    handle_32_streams("kernel_handle_32_streams_loss20", 0.20, 2048 * 1024, 303);
}

Test(fault, b2b_handle_32_streams_loss1, .timeout = 120)
{
    b2b_handle_32_streams("b2b_handle_32_streams_loss1", 0.01, 2 * 1024 * 1024, 311);
}

Test(fault, b2b_handle_32_streams_loss5, .timeout = 120)
{
    b2b_handle_32_streams("b2b_handle_32_streams_loss5", 0.05, 2 * 1024 * 1024, 312);
}

/* This case found a handshake bug: a duplicated SYN (or a SYN-ACK
 * timeout) and the final ACK handled before one output pass left a
 * server stream that never sent (hs_syn_rcvd_duplicate_syn_and_ack_in_one_batch). */
Test(fault, b2b_handle_32_streams_loss20, .timeout = 200)
{
    b2b_handle_32_streams("b2b_handle_32_streams_loss20", 0.20, 2048 * 1024, 313);
}
