/* SPDX-License-Identifier: MIT */
/* The TCP engine on its own (lib/tcp.h): no adapter, no transport, no
 * clock of its own. A fake environment records every frame, reset and
 * event the engine produces, and the test plays the peer by feeding
 * parsed segments to jk_tcp_input. Shows what the engine's contract with
 * its owner is: it only calls env->ops, reports through events, and keeps
 * its timers as deadlines the owner fires with jk_tcp_timers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "packet.h"
#include "tcp.h"

#define MAX_FRAMES 64

struct fake {
    struct jk_tcp_env env;
    jktcp_stats st;
    uint8_t txbuf[JK_MAX_FRAME];
    uint8_t frames[MAX_FRAMES][2048];
    size_t nframes;
    struct jk_rst rsts[8];
    int nrst;
    int events[8];   /* count per enum jk_tcp_event */
    int busy;        /* sends to refuse with -EAGAIN */
    uint32_t pmtu_set;
};

static struct fake F;

static uint32_t f_random(struct jk_tcp_env *e)
{
    (void)e;
    return 1000000;
}

static int f_send(struct jk_tcp_env *e, const uint8_t *frame, size_t len)
{
    (void)e;
    if (F.busy) {
        F.busy--;
        return -EAGAIN;
    }
    cr_assert_lt(F.nframes, MAX_FRAMES);
    cr_assert_leq(len, sizeof F.frames[0]);
    memcpy(F.frames[F.nframes++], frame, len);
    return 0;
}

static void f_rst(struct jk_tcp_env *e, const struct jk_rst *r)
{
    (void)e;
    F.rsts[F.nrst++] = *r;
}

static void f_event(struct jk_tcp_env *e, struct jk_tcp *c, enum jk_tcp_event ev)
{
    (void)e;
    (void)c;
    F.events[ev]++;
}

static void f_set_pmtu(struct jk_tcp_env *e, uint32_t mtu)
{
    e->pmtu = F.pmtu_set = mtu;
}

static const struct jk_tcp_env_ops f_ops = {f_random, f_send, f_rst, f_event, f_set_pmtu};

static void setup_env(void)
{
    memset(&F, 0, sizeof F);
    struct jk_tcp_env *e = &F.env;
    e->ops = &f_ops;
    e->now = 5000000;
    jk_addr_parse("198.18.0.1", &e->local);
    jk_addr_parse("198.18.0.2", &e->peer);
    e->mtu = e->pmtu = 1500;
    e->txbuf = F.txbuf;
    e->st = &F.st;
    e->cfg = (struct jk_cfg){.sndbuf = 65536, .rcvbuf = 65536, .delack_us = 1000,
                             .timewait_us = 1000000, .rto_min_us = 200000,
                             .rto_max_us = 60000000, .rto_init_us = 1000000,
                             .max_retries = 3, .max_ooo = 16, .nodelay = true,
                             .congestion = true, .sack = true, .timestamps = false,
                             .tlp = true};
}

/* The i-th frame the engine sent, parsed. */
static struct jk_seg frame(size_t i)
{
    struct jk_seg s;
    cr_assert_lt(i, F.nframes, "frame %zu not sent (%zu sent)", i, F.nframes);
    cr_assert_eq(jk_parse_frame(F.frames[i], sizeof F.frames[i], &s), JK_PARSE_TCP);
    return s;
}

/* A segment from the peer (198.18.0.2:80) to us (:40000). */
static struct jk_seg peer(uint8_t flags, uint32_t seq, uint32_t ack)
{
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    s.src = F.env.peer;
    s.dst = F.env.local;
    s.sport = 80;
    s.dport = 40000;
    s.seq = seq;
    s.ack = ack;
    s.flags = flags;
    s.wnd = 65535;
    return s;
}

/* Active open up to ESTABLISHED: our ISS is 1000000, the peer's 7000. */
static struct jk_tcp *open_active(void)
{
    struct jk_tcp *c = calloc(1, sizeof *c);
    cr_assert_eq(jk_tcp_init_conn(c, &F.env, 40000, 80), 0);
    jk_tcp_connect(c);
    cr_assert_eq(jk_tcp_output(c), 0);
    struct jk_seg syn_ack = peer(JK_SYN | JK_ACK, 7000, 1000001);
    syn_ack.opt.has_mss = true;
    syn_ack.opt.mss = 1460;
    jk_tcp_input(c, &syn_ack);
    cr_assert_eq(c->state, JKTCP_ESTABLISHED);
    cr_assert_eq(jk_tcp_output(c), 0);
    return c;
}

TestSuite(engine, .init = setup_env);

Test(engine, active_open_through_the_environment_only)
{
    struct jk_tcp *c = calloc(1, sizeof *c);
    cr_assert_eq(jk_tcp_init_conn(c, &F.env, 40000, 80), 0);
    cr_assert_eq(c->iss, 1000000, "the ISS comes from env->ops->random");
    jk_tcp_connect(c);
    cr_assert_eq(F.events[JK_TCP_CHANGED], 1, "connect asks for an output pass");
    cr_assert_eq(F.nframes, 0, "the engine sends only when the owner runs output");
    cr_assert_eq(jk_tcp_output(c), 0);
    struct jk_seg syn = frame(0);
    cr_assert_eq(syn.flags, JK_SYN);
    cr_assert_eq(syn.seq, 1000000);
    cr_assert(syn.opt.has_mss && syn.opt.mss == 1460, "MSS from env->mtu");
    cr_assert_eq(jk_tcp_deadline(c), 5000000 + 1000000, "the SYN's RTO, as a deadline");
    struct jk_seg syn_ack = peer(JK_SYN | JK_ACK, 7000, 1000001);
    jk_tcp_input(c, &syn_ack);
    cr_assert_eq(c->state, JKTCP_ESTABLISHED);
    cr_assert_eq(F.events[JK_TCP_ESTABLISHED], 0, "reported for passive opens only");
    cr_assert_eq(jk_tcp_output(c), 0);
    struct jk_seg ack = frame(1);
    cr_assert_eq(ack.flags, JK_ACK);
    cr_assert_eq(ack.ack, 7001);
    jk_tcp_free_buffers(c);
    free(c);
}

Test(engine, passive_open_reports_established)
{
    struct jk_tcp *c = calloc(1, sizeof *c);
    cr_assert_eq(jk_tcp_init_conn(c, &F.env, 40000, 80), 0);
    struct jk_seg syn = peer(JK_SYN, 7000, 0);
    jk_tcp_accept_syn(c, &syn);
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(frame(0).flags, JK_SYN | JK_ACK);
    struct jk_seg ack = peer(JK_ACK, 7001, 1000001);
    jk_tcp_input(c, &ack);
    cr_assert_eq(c->state, JKTCP_ESTABLISHED);
    cr_assert_eq(F.events[JK_TCP_ESTABLISHED], 1);
    jk_tcp_free_buffers(c);
    free(c);
}

Test(engine, busy_transport_keeps_the_segment_for_the_next_pass)
{
    struct jk_tcp *c = open_active();
    size_t before = F.nframes;
    cr_assert_eq(jk_ring_write(&c->snd, "hello", 5), 5);
    F.busy = 1;
    cr_assert_eq(jk_tcp_output(c), -EAGAIN, "the owner learns the transport is busy");
    cr_assert_eq(F.nframes, before);
    cr_assert_eq(jk_tcp_output(c), 0);
    struct jk_seg d = frame(before);
    cr_assert_eq(d.len, 5);
    cr_assert_eq(memcmp(d.payload, "hello", 5), 0);
    cr_assert_eq(d.seq, 1000001);
    jk_tcp_free_buffers(c);
    free(c);
}

Test(engine, timers_fire_only_when_the_owner_calls)
{
    struct jk_tcp *c = open_active();
    cr_assert_eq(jk_ring_write(&c->snd, "x", 1), 1);
    cr_assert_eq(jk_tcp_output(c), 0);
    size_t sent = F.nframes;
    uint64_t d = jk_tcp_deadline(c);
    cr_assert_gt(d, F.env.now);
    F.env.now = d - 1;
    jk_tcp_timers(c);
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(F.nframes, sent, "nothing before the deadline");
    while (F.nframes == sent) { /* the tail-loss probe or the RTO: a resend */
        F.env.now = jk_tcp_deadline(c);
        jk_tcp_timers(c);
        cr_assert_eq(jk_tcp_output(c), 0);
    }
    struct jk_seg r = frame(sent);
    cr_assert_eq(r.seq, 1000001);
    cr_assert_eq(r.len, 1);
    cr_assert_eq(F.st.retransmits, 1, "counted in env->st");
    jk_tcp_free_buffers(c);
    free(c);
}

Test(engine, abort_queues_a_reset_and_reports_closed)
{
    struct jk_tcp *c = open_active();
    jk_tcp_close(c, true);
    cr_assert_eq(c->state, JKTCP_CLOSED);
    cr_assert_eq(F.nrst, 1);
    cr_assert_eq(F.rsts[0].flags, JK_RST | JK_ACK);
    cr_assert_eq(F.rsts[0].seq, 1000001);
    cr_assert_eq(F.rsts[0].ack, 7001);
    cr_assert_eq(F.events[JK_TCP_CLOSED], 1);
    cr_assert_eq(jk_tcp_deadline(c), 0, "no timer left");
    cr_assert(jk_tcp_orphan(c), "closed and released: the owner may free it");
    free(c);
}

Test(engine, close_sends_fin_and_orphan_bounds_fin_wait_2)
{
    struct jk_tcp *c = open_active();
    size_t n = F.nframes;
    jk_tcp_close(c, false);
    cr_assert_eq(c->state, JKTCP_FIN_WAIT_1);
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(frame(n).flags, JK_FIN | JK_ACK);
    struct jk_seg ack = peer(JK_ACK, 7001, 1000002);
    jk_tcp_input(c, &ack);
    cr_assert_eq(c->state, JKTCP_FIN_WAIT_2);
    cr_assert_not(jk_tcp_orphan(c));
    cr_assert_eq(jk_tcp_deadline(c), F.env.now + JK_FIN_WAIT2_US);
    F.env.now += JK_FIN_WAIT2_US;
    jk_tcp_timers(c);
    cr_assert_eq(c->state, JKTCP_CLOSED);
    cr_assert_eq(c->err, -ETIMEDOUT);
    free(c);
}

Test(engine, rst_for_is_pure)
{
    struct jk_rst r;
    struct jk_seg s = peer(JK_SYN, 7000, 0);
    cr_assert(jk_tcp_rst_for(&s, &r));
    cr_assert_eq(r.flags, JK_RST | JK_ACK);
    cr_assert_eq(r.seq, 0);
    cr_assert_eq(r.ack, 7001, "a SYN occupies one sequence number");
    cr_assert_eq(r.sport, 40000);
    cr_assert_eq(r.dport, 80);
    s = peer(JK_ACK, 7000, 555);
    s.len = 10;
    cr_assert(jk_tcp_rst_for(&s, &r));
    cr_assert_eq(r.flags, JK_RST);
    cr_assert_eq(r.seq, 555);
    s = peer(JK_RST | JK_ACK, 7000, 555);
    cr_assert_not(jk_tcp_rst_for(&s, &r), "a reset is never answered");
    cr_assert_eq(F.nrst, 0, "and nothing was queued");
}

Test(engine, fin_drops_islands_beyond_it)
{
    /* Data the peer sent past its own FIN can never be read: it must not
     * stay SACKed (as Linux's tcp_fin purges its out-of-order queue). */
    F.env.cfg.sack = true;
    struct jk_tcp *c = calloc(1, sizeof *c);
    cr_assert_eq(jk_tcp_init_conn(c, &F.env, 40000, 80), 0);
    jk_tcp_connect(c);
    cr_assert_eq(jk_tcp_output(c), 0);
    struct jk_seg syn_ack = peer(JK_SYN | JK_ACK, 7000, 1000001);
    syn_ack.opt.sack_ok = true;
    jk_tcp_input(c, &syn_ack);
    cr_assert(c->sack_ok);
    cr_assert_eq(jk_tcp_output(c), 0); /* our ACK offers the window */
    static const uint8_t junk[10] = {0};
    struct jk_seg past = peer(JK_ACK, 7101, 1000001);
    past.payload = junk;
    past.len = sizeof junk;
    jk_tcp_input(c, &past);
    cr_assert_eq(c->ooo.n, 1, "held out of order");
    struct jk_seg fin = peer(JK_FIN | JK_ACK, 7001, 1000001);
    jk_tcp_input(c, &fin);
    cr_assert_eq(c->state, JKTCP_CLOSE_WAIT);
    cr_assert_eq(c->ooo.n, 0, "islands beyond the FIN dropped");
    size_t n = F.nframes;
    cr_assert_eq(jk_tcp_output(c), 0);
    struct jk_seg ack = frame(F.nframes - 1);
    cr_assert_gt(F.nframes, n);
    cr_assert_eq(ack.ack, 7002);
    cr_assert_eq(ack.opt.nsack, 0, "no SACK block for bytes past the FIN");
    jk_tcp_free_buffers(c);
    free(c);
}

/* Pages of ring r's buffer in memory. */
static size_t resident(const struct jk_ring *r)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE), n = (r->size + ps - 1) / ps, in = 0;
    unsigned char *v = malloc(n);
    cr_assert_eq(mincore(r->buf, r->size, v), 0);
    for (size_t i = 0; i < n; i++)
        in += v[i] & 1;
    free(v);
    return in;
}

Test(engine, idle_buffers_give_their_pages_back)
{
    struct jk_tcp *c = open_active();
    static uint8_t data[40000], back[40000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    /* the peer sends 40 kB; the application reads all but the last 100 bytes */
    for (uint32_t off = 0; off < sizeof data; off += 1000) {
        struct jk_seg s = peer(JK_ACK, 7001 + off, 1000001);
        s.payload = data + off;
        s.len = 1000;
        jk_tcp_input(c, &s);
    }
    cr_assert_eq(jk_ring_read(&c->rcv, back, sizeof back - 100), sizeof back - 100);
    /* we send 40 kB; the peer acknowledges all of it */
    cr_assert_eq(jk_ring_write(&c->snd, data, sizeof data), sizeof data);
    for (int i = 0; i < 20 && jk_ring_used(&c->snd); i++) { /* a window at a time */
        F.nframes = 0;
        cr_assert_eq(jk_tcp_output(c), 0);
        struct jk_seg ack = peer(JK_ACK, 7001 + sizeof data, c->snd_nxt);
        jk_tcp_input(c, &ack);
    }
    cr_assert_eq(jk_ring_used(&c->snd), 0);
    cr_assert_geq(resident(&c->rcv), 9, "40 kB went through the receive ring");
    cr_assert_geq(resident(&c->snd), 9, "and through the send ring");

    uint64_t moved = F.env.now;
    uint64_t slot = ((moved + JK_TRIM_IDLE_US - 1) | (JK_TRIM_GRAIN_US - 1)) + 1;
    while (jk_tcp_deadline(c) && jk_tcp_deadline(c) < slot) {
        F.env.now = jk_tcp_deadline(c); /* the delayed ACK, nothing else */
        jk_tcp_timers(c);
        jk_tcp_output(c);
    }
    cr_assert_eq(F.events[JK_TCP_IDLE], 0, "busy until JK_TRIM_IDLE_US pass");
    cr_assert_eq(jk_tcp_deadline(c), slot, "on the grain at or after JK_TRIM_IDLE_US");
    F.env.now = jk_tcp_deadline(c);
    jk_tcp_timers(c);
    cr_assert_eq(F.events[JK_TCP_IDLE], 1, "the owner is told (the send ring is its to trim)");
    cr_assert_leq(resident(&c->rcv), 1, "only the page holding the 100 unread bytes stays");
    cr_assert_eq(jk_ring_read(&c->rcv, back + sizeof back - 100, 200), 100);
    cr_assert_eq(memcmp(back, data, sizeof data), 0, "no byte lost to the trim");
    jk_ring_trim(&c->snd);
    cr_assert_eq(resident(&c->snd), 0);
    cr_assert_eq(jk_tcp_deadline(c), 0, "idle: no timer, no wake-up");

    /* busy again: the ring works on fresh pages */
    cr_assert_eq(jk_ring_write(&c->snd, "again", 5), 5);
    cr_assert_eq(jk_tcp_output(c), 0);
    struct jk_seg d = frame(F.nframes - 1);
    cr_assert_eq(d.len, 5);
    cr_assert_eq(memcmp(d.payload, "again", 5), 0);
    jk_tcp_free_buffers(c);
    free(c);
}

/* An established connection that only pacing limits, at bps: the window
 * open, and no tail probe (no ACK comes; one would go after 2 RTTs). */
static struct jk_tcp *open_paced(uint64_t bps)
{
    struct jk_tcp *c = open_active();
    c->cc.cwnd = 1u << 24;
    c->cc.pacing_bps = bps;
    c->cfg.tlp = false;
    return c;
}

/* Pacing (tcp_out.c): at the controller's rate, from a bucket 2 ms deep,
 * in chunks. At 1460 bytes per ms a full bucket lets three segments go at
 * once (two ms of tokens and the one that empties it). Stopped by pacing,
 * the flow resumes only when a chunk is due (here the 2-segment minimum:
 * 2 ms) and then sends back to back what is due: three segments every 3 ms,
 * the rate, each burst at the pacing timer and nothing in between (one
 * segment per ms would wake a reader per segment). */
Test(engine, pacing_spaces_chunks_at_the_rate)
{
    struct jk_tcp *c = open_paced(1460000);
    static uint8_t data[40 * 1460];
    cr_assert_eq(jk_ring_write(&c->snd, data, sizeof data), sizeof data);
    size_t before = F.nframes;
    uint64_t t0 = F.env.now;
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(F.nframes - before, 3, "burst of %zu segments", F.nframes - before);
    for (int i = 0; i < 5; i++) {
        uint64_t due = c->timer[JK_T_PACE];
        cr_assert_eq(due, F.env.now + 3000, "next chunk due in %ld us", (long)(due - F.env.now));
        size_t sent = F.nframes;
        F.env.now = due - 1;
        jk_tcp_timers(c);
        cr_assert_eq(jk_tcp_output(c), 0);
        cr_assert_eq(F.nframes, sent, "round %d: %zu segments left before the chunk was due", i, F.nframes - sent);
        F.env.now = due;
        jk_tcp_timers(c);
        cr_assert_eq(jk_tcp_output(c), 0);
        cr_assert_eq(F.nframes, sent + 3, "%zu segments at the pacing timer", F.nframes - sent);
        for (size_t k = sent; k < F.nframes; k++)
            cr_assert_eq(frame(k).len, 1460);
    }
    /* 18 segments in 15 ms: the bucket's 2 ms and one per ms */
    cr_assert_eq(F.nframes - before, 18);
    cr_assert_eq(F.env.now - t0, 15000);
    jk_tcp_free_buffers(c);
    free(c);
}

/* Pacing holds only a flow with data waiting: one that sent all it had
 * (a reply that emptied the bucket) sends its next write as soon as that
 * segment is due, not a chunk later. */
Test(engine, pacing_does_not_hold_a_flow_that_sent_everything)
{
    struct jk_tcp *c = open_paced(1460000);
    static uint8_t data[3 * 1460];
    cr_assert_eq(jk_ring_write(&c->snd, data, sizeof data), sizeof data);
    size_t before = F.nframes;
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(F.nframes - before, 3, "the bucket's burst, all of it");
    cr_assert_eq(c->timer[JK_T_PACE], 0, "nothing waits: no pacing timer");
    F.env.now += 1000; /* the next segment is due */
    cr_assert_eq(jk_ring_write(&c->snd, data, 1460), 1460);
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(F.nframes - before, 4, "the new write went at once");
    jk_tcp_free_buffers(c);
    free(c);
}

/* A chunk is at most 64 KiB: at 1 GB/s (1 ms = 1 MB) a flow that pacing
 * stopped resumes 64 KiB worth of time later (65 us), not a millisecond
 * later, and then sends what is due back to back. */
Test(engine, pacing_chunk_is_at_most_64k)
{
    struct jk_tcp *c = open_paced(1000000000);
    c->snd_wnd = c->max_snd_wnd = 1u << 24;
    c->cc.pace_next_us = F.env.now; /* the bucket just ran empty */
    static uint8_t data[65536];     /* the fixture's send buffer */
    cr_assert_eq(jk_ring_write(&c->snd, data, sizeof data), sizeof data);
    size_t before = F.nframes;
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(F.nframes - before, 1, "the segment due now goes at once");
    uint64_t due = c->timer[JK_T_PACE];
    uint64_t chunk_us = 65536ull * 1000000u / 1000000000u; /* 65 us */
    cr_assert(due - F.env.now >= chunk_us && due - F.env.now <= chunk_us + 2,
              "resumes %ld us later", (long)(due - F.env.now));
    F.env.now = due;
    jk_tcp_timers(c);
    cr_assert_eq(jk_tcp_output(c), 0);
    cr_assert_eq(c->snd_nxt - c->snd_una, sizeof data, "the rest goes back to back");
    jk_tcp_free_buffers(c);
    free(c);
}
