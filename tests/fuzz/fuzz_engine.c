/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the TCP engine alone (lib/tcp.h), with a fake
 * environment and no adapter. The input opens one connection (actively,
 * or passively from a fuzzed SYN), then is a script of steps: a segment
 * from the peer (flags, sequence and ACK near the live values, window,
 * timestamps, SACK blocks, payload), time passing with the timers fired
 * when due, output passes (sometimes refused as busy), the application
 * writing, reading, shutting down, closing or aborting, an ICMP error.
 * Invariants after every step: sequence space in order, what is in flight
 * is in the send ring, scoreboard and out-of-order ranges within their
 * bounds and windows, rings within capacity, every frame parses as TCP
 * on the connection's ports and fits the MTU, a closed connection has no
 * timer; and nothing leaks (LeakSanitizer). */
#include "fuzz_common.h"

#include "tcp.h"

#include <errno.h>

#define MTU 1500

struct fenv {
    struct jk_tcp_env env;
    jktcp_stats st;
    uint8_t txbuf[JK_MAX_FRAME];
    int busy; /* sends to refuse */
    uint32_t rnd;
};

static struct fenv E;

static uint32_t f_random(struct jk_tcp_env *e)
{
    (void)e;
    E.rnd = E.rnd * 1103515245u + 12345u;
    return E.rnd;
}

static int f_send(struct jk_tcp_env *e, const uint8_t *frame, size_t len)
{
    (void)e;
    struct jk_seg s;
    FZ_CHECK(len <= MTU, "frame of %zu bytes over the MTU", len);
    FZ_CHECK(jk_parse_frame(frame, len, &s) == JK_PARSE_TCP, "the engine sent a bad frame");
    FZ_CHECK(s.sport == 40000 && s.dport == 80, "ports %u -> %u", s.sport, s.dport);
    if (E.busy) {
        E.busy--;
        return -EAGAIN;
    }
    return 0;
}

static void f_rst(struct jk_tcp_env *e, const struct jk_rst *r)
{
    (void)e;
    FZ_CHECK(r->flags & JK_RST, "a reset without RST");
}

static void f_event(struct jk_tcp_env *e, struct jk_tcp *c, enum jk_tcp_event ev)
{
    (void)e;
    FZ_CHECK(ev <= JK_TCP_IDLE, "event %d", ev);
    if (ev == JK_TCP_IDLE) /* as the adapter does: the send ring is the owner's to trim */
        jk_ring_trim(&c->snd);
}

static void f_set_pmtu(struct jk_tcp_env *e, uint32_t mtu)
{
    FZ_CHECK(mtu <= e->mtu && mtu >= 552, "path MTU %u", mtu);
    e->pmtu = mtu;
}

static const struct jk_tcp_env_ops f_ops = {f_random, f_send, f_rst, f_event, f_set_pmtu};

static void env_init(struct fz_in *in)
{
    memset(&E, 0, sizeof E);
    E.rnd = fz_u32(in);
    struct jk_tcp_env *e = &E.env;
    e->ops = &f_ops;
    e->now = 1000000;
    bool v6 = fz_u8(in) & 1;
    jk_addr_parse(v6 ? "fd00::1" : "198.18.0.1", &e->local);
    jk_addr_parse(v6 ? "fd00::2" : "198.18.0.2", &e->peer);
    e->mtu = e->pmtu = MTU;
    e->txbuf = E.txbuf;
    e->st = &E.st;
    uint8_t f = fz_u8(in);
    e->cfg = (struct jk_cfg){.sndbuf = 16384, .rcvbuf = 8192, .delack_us = (f & 1) ? 1000 : 0,
                             .timewait_us = 100000, .keepalive_us = (f & 2) ? 500000 : 0,
                             .rto_min_us = 20000, .rto_max_us = 2000000, .rto_init_us = 100000,
                             .max_retries = 4, .max_ooo = 1 + (f >> 4), .nodelay = !(f & 4),
                             .congestion = !(f & 8), .sack = true, .timestamps = true,
                             .tlp = true};
    e->path.mode = 0;
}

/* A segment from the peer, its numbers near the connection's. */
static void peer_segment(struct jk_tcp *c, struct fz_in *in)
{
    static uint8_t payload[2048];
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    s.src = E.env.peer;
    s.dst = E.env.local;
    s.sport = 80;
    s.dport = 40000;
    s.flags = fz_u8(in) & 0x3f;
    s.seq = c->rcv_nxt + (uint32_t)(int16_t)fz_u16(in);
    s.ack = c->snd_una + (uint32_t)(int16_t)fz_u16(in);
    s.wnd = fz_u16(in);
    uint8_t o = fz_u8(in);
    if (o & 1) {
        s.opt.has_ts = true;
        s.opt.tsval = c->ts_recent + (uint32_t)(int8_t)fz_u8(in);
        s.opt.tsecr = fz_u32(in);
    }
    if (s.flags & JK_SYN) {
        s.opt.has_mss = o & 2;
        s.opt.mss = fz_u16(in);
        s.opt.has_wscale = o & 4;
        s.opt.wscale = fz_u8(in);
        s.opt.sack_ok = o & 8;
    }
    s.opt.nsack = (uint8_t)((o >> 4) % (JK_MAX_SACK + 1));
    for (int i = 0; i < s.opt.nsack; i++) {
        s.opt.sack[i].left = c->snd_una + (uint32_t)(int16_t)fz_u16(in);
        s.opt.sack[i].right = s.opt.sack[i].left + fz_u16(in) % 4096;
    }
    s.len = fz_u16(in) % sizeof payload;
    memset(payload, 'p', s.len);
    s.payload = payload;
    jk_tcp_input(c, &s);
}

static void check(const struct jk_tcp *c)
{
    FZ_CHECK(c->state >= JKTCP_CLOSED && c->state <= JKTCP_LAST_ACK, "state %d", c->state);
    if (c->state == JKTCP_CLOSED) {
        FZ_CHECK(jk_tcp_deadline(c) == 0, "a closed connection keeps a timer");
        return;
    }
    if (c->state >= JKTCP_ESTABLISHED && c->snd.buf) {
        uint32_t used = jk_ring_used((struct jk_ring *)&c->snd);
        FZ_CHECK(seq_le(c->snd_una, c->snd_nxt) && seq_le(c->snd_nxt, c->snd_max),
                 "una %u nxt %u max %u", c->snd_una, c->snd_nxt, c->snd_max);
        FZ_CHECK(c->snd_max - c->snd_una <= used + 2, "%u in flight, %u in the ring",
                 c->snd_max - c->snd_una, used);
        FZ_CHECK(used <= c->snd.cap, "send ring over capacity");
    }
    FZ_CHECK(c->rec.nsack >= 0 && c->rec.nsack <= JK_MAX_PEER_SACK, "%d SACK ranges",
             c->rec.nsack);
    for (int i = 0; i < c->rec.nsack; i++)
        FZ_CHECK(seq_lt(c->rec.sack[i].start, c->rec.sack[i].end) &&
                     seq_le(c->rec.sack[i].end, c->snd_max),
                 "SACK range %u-%u, snd_max %u", c->rec.sack[i].start, c->rec.sack[i].end,
                 c->snd_max);
    FZ_CHECK(c->ooo.n >= 0 && (uint32_t)c->ooo.n <= c->cfg.max_ooo, "%d islands", c->ooo.n);
    for (int i = 0; i < c->ooo.n && c->rcv.buf; i++)
        FZ_CHECK(seq_gt(c->ooo.r[i].start, c->rcv_nxt) &&
                     seq_le(c->ooo.r[i].end, c->rcv_nxt + c->rcv.cap),
                 "island %u-%u, rcv_nxt %u, state %d, fin_rcvd %d", c->ooo.r[i].start, c->ooo.r[i].end,
                 c->rcv_nxt, c->state, c->fin_rcvd);
    if (c->rcv.buf)
        FZ_CHECK(jk_ring_used((struct jk_ring *)&c->rcv) <= c->rcv.cap, "receive ring over capacity");
}

static void step(struct jk_tcp *c, struct fz_in *in, bool *released)
{
    static uint8_t buf[20000];
    uint8_t op = fz_u8(in);
    switch (op % 10) {
    case 0: case 1: case 2:
        peer_segment(c, in);
        break;
    case 3: { /* time passes; due timers fire */
        E.env.now += (uint64_t)fz_u16(in) * 50;
        uint64_t d = jk_tcp_deadline(c);
        if (d && d <= E.env.now)
            jk_tcp_timers(c);
        break;
    }
    case 4:
        E.busy = op >> 7;
        jk_tcp_output(c);
        E.busy = 0;
        break;
    case 5:
        if (!*released && c->snd.buf && c->state != JKTCP_CLOSED && !c->fin_queued)
            jk_ring_write(&c->snd, buf, fz_u16(in) % sizeof buf);
        break;
    case 6:
        if (!*released && c->rcv.buf) {
            jk_ring_read(&c->rcv, buf, fz_u16(in) % sizeof buf);
            jk_tcp_app_read(c);
        }
        break;
    case 7:
        if (!*released && c->state != JKTCP_CLOSED)
            jk_tcp_shutdown(c);
        break;
    case 8:
        if (!*released) {
            jk_tcp_close(c, op & 0x80);
            *released = true;
            jk_tcp_orphan(c);
        }
        break;
    case 9: { /* an ICMP error quoting one of our sequence numbers */
        struct jk_icmp ic;
        memset(&ic, 0, sizeof ic);
        ic.family = E.env.local.family;
        ic.kind = JK_ICMP_UNREACH + fz_u8(in) % JK_ICMP_OTHER;
        ic.type = fz_u8(in);
        ic.code = fz_u8(in);
        ic.seq = c->snd_una + fz_u16(in) % 64;
        ic.mtu = fz_u16(in);
        jk_tcp_icmp(c, &ic);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    env_init(&in);
    struct jk_tcp *c = calloc(1, sizeof *c);
    if (!c || jk_tcp_init_conn(c, &E.env, 40000, 80) < 0) {
        free(c);
        return 0;
    }
    if (fz_u8(&in) & 1) {
        jk_tcp_connect(c);
    } else {
        struct jk_seg syn;
        memset(&syn, 0, sizeof syn);
        syn.src = E.env.peer;
        syn.dst = E.env.local;
        syn.sport = 80;
        syn.dport = 40000;
        syn.flags = JK_SYN;
        syn.seq = fz_u32(&in);
        syn.wnd = fz_u16(&in);
        syn.opt.has_mss = true;
        syn.opt.mss = fz_u16(&in);
        syn.opt.sack_ok = syn.opt.has_ts = syn.opt.has_wscale = true;
        syn.opt.wscale = fz_u8(&in);
        syn.opt.tsval = fz_u32(&in);
        jk_tcp_accept_syn(c, &syn);
    }
    jk_tcp_output(c);
    bool released = false;
    for (int i = 0; i < 2000 && in.n; i++) {
        step(c, &in, &released);
        check(c);
    }
    jk_tcp_free_buffers(c);
    free(c);
    return 0;
}
