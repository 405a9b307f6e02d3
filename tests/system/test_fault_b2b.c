/* SPDX-License-Identifier: MIT */
/*
 * Suite `fault`, b2b_*: two jktcp adapters back to back over a
 * SOCK_SEQPACKET socketpair, each end wrapped in a faulty transport, one
 * thread per adapter (tests/support/faultlink.h): transfers under loss,
 * reordering, duplication, corruption, delay and blackouts, transport
 * failures, and 32 threaded-handle streams echoed by a second handle.
 *
 * Loss tests lower JKTCP_OPT_RTO_MIN_MS to keep them fast. Every failure
 * message carries the seed; JKTCP_FAULT_SEED=<n> in the environment
 * replaces the default seeds. Figures (sizes, times, retransmits, fault
 * counters) go to stderr.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "jktcp.h"
#include "faultlink.h"
#include "netns.h"

/* ====================================================================== */
/* Two adapters back to back                                              */
/* ====================================================================== */

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
        msleep(i ? 150 : 20); /* the first before the transfer can end (0.15 s on a fast host) */
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
    shutdown(b.link.a.fd, SHUT_RDWR); /* the client's socket */
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
    struct b2b_link_flaky fl = {.fd = -1};
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

/* A handle on the end's adapter, with the suite's fast retransmissions. */
static jktcp_handle b2b_handle(struct b2b_link_end *e)
{
    jktcp_adapter *a = b2b_link_take(e);
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
    seed = seed_or(seed);
    jktcp_fault_config cs = {.out = loss_faults(drop), .seed = seed}; /* see b2b_lossy */
    jktcp_fault_config cc = cs;
    cc.seed = seed ^ 0x5555;
    struct b2b_link l;
    b2b_fault_link(&l, &cs, &cc, NULL, NULL);
    jktcp_handle hs = b2b_handle(&l.b);
    jktcp_handle hc = b2b_handle(&l.a);
    static struct b2b_acceptor ac;
    memset(&ac, 0, sizeof ac);
    cr_assert_eq(jktcp_handle_listen(hs, B2B_PORT, HSTREAMS, &ac.l), 0);
    pthread_t at;
    cr_assert_eq(pthread_create(&at, NULL, b2b_accept_thread, &ac), 0);
    run_32_clients(name, hc, B2B_PORT, per_stream, seed, l.a.ft);
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
    b2b_link_down(&l); /* the sockets */
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
