/* SPDX-License-Identifier: MIT */
/*
 * Suite `fault`, unit_*: the fault-injecting transport
 * (jktcp_transport_faulty) alone over a SOCK_SEQPACKET socketpair: drop,
 * duplicate, reorder, corrupt, truncate, delay, blackout, its frame pool,
 * and the same faults again for the same seed. The rest of the suite
 * (jktcp under these faults, back to back and against the kernel) is in
 * tests/system/test_fault_*.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jktcp.h"
#include "faultlink.h"
#include "netns.h"
#include "transport.h"

/* ====================================================================== */
/* Unit tests: the wrapper over a socketpair                              */
/* ====================================================================== */

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

/* The peer sends three frames inbound: none comes through at once, all
 * three within 2 s and no sooner than min_us. Returns what came. */
static struct got *three_in_after(struct upair *u, uint64_t min_us)
{
    struct got *g = got_new();
    peer_send(u, 0, 3);
    uint64_t t0 = jkt_now_us();
    wrap_recv_all(u, g, 0);
    cr_assert_eq(g->n, 0, "a frame came through at once");
    wrap_recv_until(u, g, 3, 2000);
    uint64_t dt = jkt_now_us() - t0;
    cr_assert_eq(g->n, 3);
    cr_assert(dt >= min_us && dt < 1000000, "inbound delay %" PRIu64 " us", dt);
    return g;
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
    struct got *g = three_in_after(&u, 29000);

    struct got *h = got_new();
    uint8_t b[UFRAME];
    uframe(b, 9);
    uint64_t t0 = jkt_now_us(), dt;
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
/* The bottleneck link (jktcp_fault_link)                                 */
/* ====================================================================== */

/* Drive the wrapper as the adapter would (a recv on every wake-up, which
 * also sends what the outbound link released) and note when each frame
 * reached the peer, until n came or wait_ms passed. */
static uint32_t peer_times(struct upair *u, uint64_t *at, uint32_t n, int wait_ms)
{
    static uint8_t b[65536];
    uint32_t got = 0;
    uint64_t end = jkt_now_us() + (uint64_t)wait_ms * 1000u;
    while (got < n && jkt_now_us() < end) {
        const uint8_t *p;
        size_t len;
        while (jk_transport_recv(u->t, &p, &len) == 1)
            ;
        while (got < n && read(u->peer, b, sizeof b) > 0)
            at[got++] = jkt_now_us();
        struct pollfd pf[2] = {{jk_transport_poll_fd(u->t), POLLIN, 0}, {u->peer, POLLIN, 0}};
        poll(pf, 2, 20);
    }
    return got;
}

/* A frame is held for delay_us in both directions, in order, and the poll
 * fd wakes the adapter for it; once all is out the timer is disarmed. */
Test(fault, unit_link_delay)
{
    jktcp_fault_config cfg = {.seed = seed_or(20)};
    cfg.link_in.delay_us = cfg.link_out.delay_us = 20000;
    struct upair u;
    upair_open(&u, &cfg);
    struct got *g = three_in_after(&u, 19000);
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_eq(g->id[i], i, "out of order");

    uint8_t b[UFRAME];
    uframe(b, 7);
    uint64_t t0 = jkt_now_us();
    cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    cr_assert_eq(jk_transport_flush(u.t), 0);
    uint64_t at;
    cr_assert_eq(peer_times(&u, &at, 1, 2000), 1);
    cr_assert(at - t0 >= 19000, "outbound delay %" PRIu64 " us", at - t0);
    jktcp_fault_stats st;
    cr_assert_eq(jktcp_transport_fault_stats(u.t, &st, sizeof st), 0);
    cr_assert_eq(st.link_in.frames, 3);
    cr_assert_eq(st.link_out.frames, 1);
    cr_assert_eq(st.in.passed, 3);
    cr_assert_eq(st.out.passed, 1);
    struct pollfd pf = {jk_transport_poll_fd(u.t), POLLIN, 0};
    cr_assert_eq(poll(&pf, 1, 50), 0, "the timer fires with nothing held");
    upair_close(&u);
    free(g);
}

/* Back-to-back frames leave the queue len * 8 / rate apart: at 1.6 Mbit/s
 * a 200-byte frame takes 1 ms, so frame i cannot arrive before
 * t0 + delay + (i + 1) ms, and with nothing else running the last is not
 * much later. */
Test(fault, unit_link_rate)
{
    jktcp_fault_config cfg = {.seed = seed_or(21)};
    cfg.link_out = (jktcp_fault_link){.rate_bps = 1600000, .delay_us = 5000};
    struct upair u;
    upair_open(&u, &cfg);
    uint8_t b[UFRAME];
    enum { N = 10 };
    uint64_t t0 = jkt_now_us();
    for (uint32_t i = 0; i < N; i++) {
        uframe(b, i);
        cr_assert_eq(jk_transport_send(u.t, b, UFRAME), 0);
    }
    uint64_t at[N];
    cr_assert_eq(peer_times(&u, at, N, 3000), N);
    for (uint32_t i = 0; i < N; i++)
        cr_assert(at[i] - t0 >= 5000 + (i + 1) * 1000 - 100, "frame %u after %" PRIu64 " us", i,
                  at[i] - t0);
    cr_assert_lt(at[N - 1] - t0, 5000 + N * 1000 + 200000, "the link is far slower than its rate");
    jktcp_fault_stats st;
    jktcp_transport_fault_stats(u.t, &st, sizeof st);
    cr_assert_eq(st.link_out.queue_drops, 0);
    cr_assert_geq(st.link_out.max_queue_bytes, (N - 1) * UFRAME);
    /* frame i waited ~ (i + 1) ms in the queue: ~55 ms in all */
    cr_assert(st.link_out.queue_us_total >= 50000 && st.link_out.queue_us_total <= 56000,
              "queue time %" PRIu64 " us", st.link_out.queue_us_total);
    upair_close(&u);
}

/* A frame that does not fit in the queue is dropped and counted; the rest
 * arrive. At 1 ms a frame, five 200-byte frames fill a 1000-byte queue. */
Test(fault, unit_link_tail_drop)
{
    jktcp_fault_config cfg = {.seed = seed_or(22)};
    cfg.link_in = (jktcp_fault_link){.rate_bps = 1600000, .queue_bytes = 1000};
    struct upair u;
    upair_open(&u, &cfg);
    peer_send(&u, 0, 10);
    struct got *g = got_new();
    wrap_recv_until(&u, g, 10, 300);
    jktcp_fault_stats st;
    jktcp_transport_fault_stats(u.t, &st, sizeof st);
    cr_assert(st.link_in.queue_drops >= 3 && st.link_in.queue_drops <= 5,
              "%" PRIu64 " tail drops", st.link_in.queue_drops);
    cr_assert_eq(st.link_in.frames + st.link_in.queue_drops, 10);
    cr_assert_eq(g->n, st.link_in.frames);
    cr_assert_leq(st.link_in.max_queue_bytes, 1000);
    for (uint32_t i = 0; i < g->n; i++)
        cr_assert_eq(g->id[i], i, "the queue kept the first frames, in order");
    upair_close(&u);
    free(g);
}

/* A caller built against the header before the link passes the old size:
 * whatever lies beyond it is not read, so no link; the old stats size is
 * filled as before. Settings out of range are refused. */
Test(fault, unit_link_old_size_and_limits)
{
    jktcp_fault_config cfg = {.seed = seed_or(23)};
    cfg.link_in.delay_us = 500000; /* beyond the old size: must be ignored */
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
    jktcp_transport *inner, *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_PACKET, &inner), 0);
    cr_assert_eq(jktcp_transport_faulty(inner, &cfg, offsetof(jktcp_fault_config, link_in), &t), 0);
    uint8_t b[UFRAME];
    uframe(b, 1);
    cr_assert_eq(write(sv[1], b, UFRAME), UFRAME);
    const uint8_t *p;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &p, &len), 1, "held by a link the caller never asked for");
    jktcp_fault_stats st;
    memset(&st, 0xee, sizeof st);
    cr_assert_eq(jktcp_transport_fault_stats(t, &st, offsetof(jktcp_fault_stats, link_in)), 0);
    cr_assert_eq(st.in.passed, 1);
    cr_assert_eq(st.link_in.frames, 0xeeeeeeeeeeeeeeeeull, "wrote past the old size");
    jktcp_transport_free(t);
    close(sv[0]);
    close(sv[1]);

    jktcp_fault_link bad[] = {
        {.delay_us = 10000001},                       /* over 10 s */
        {.rate_bps = 2000000000000ull},               /* 2 Tbit/s */
        {.rate_bps = 100000000, .queue_bytes = 300u << 20},
        {.rate_bps = 10000000000ull, .delay_us = 1000000}, /* 1.25 GB in flight */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jktcp_fault_config c = {.link_out = bad[i]};
        cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_PACKET, &inner), 0);
        jktcp_transport *o = (jktcp_transport *)1;
        cr_assert_eq(jktcp_transport_faulty(inner, &c, sizeof c, &o), -EINVAL, "case %zu", i);
        cr_assert_null(o);
        close(sv[0]);
        close(sv[1]);
    }
}
