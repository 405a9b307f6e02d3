/* SPDX-License-Identifier: MIT */
/* Shared machinery of fuzz_adapter_conn and fuzz_adapter_listen: an adapter
 * over a jktcp_port with a fake clock, a model of the fuzzer-side peer of
 * each connection, segment construction relative to the stack's real
 * sequence state, and checks on every frame the stack emits and every
 * byte the application reads.
 *
 * Payload bytes are a function of their absolute sequence number
 * (fz_peer_byte for the peer's, fz_our_byte for what the app writes), so:
 *  - every byte the app reads must equal fz_peer_byte(its seq) and lie
 *    inside what the fuzzer sent on that connection (the union of the
 *    payload ranges of its segments, in or out of window);
 *  - every payload byte the stack sends must equal fz_our_byte(its seq)
 *    and lie inside what the app wrote; a FIN must sit right after the
 *    last byte written before shutdown/close.
 * Raw frames from the input could carry arbitrary payload; once one of
 * them parses as TCP with data for a connection, that connection's read
 * check is switched off ("tainted"). */
#ifndef JK_FUZZ_ADAPTER_H
#define JK_FUZZ_ADAPTER_H

#include "fuzz_common.h"
#include "adapter.h"

#include <errno.h>
#include <sys/uio.h>

#define FZ_MODELS 16
#define FZ_SENT 64
#define FZ_SLOTS 4
#define FZ_MAX_OPS 4000
#define FZ_IO_MAX 70000

/* FZ_TRACE=1 in the environment prints every frame in and out. */
static int fz_trace = -1;

static void fz_trace_frame(const char *dir, const uint8_t *f, size_t n)
{
    if (fz_trace < 0)
        fz_trace = getenv("FZ_TRACE") != NULL;
    if (!fz_trace)
        return;
    struct jk_seg s;
    enum jk_parse p = jk_parse_frame(f, n, &s);
    if (p != JK_PARSE_TCP) {
        fprintf(stderr, "%s %zu bytes, parse %d\n", dir, n, p);
        return;
    }
    fprintf(stderr, "%s %u>%u %s%s%s%s%s seq %u ack %u wnd %u len %u%s nsack %u\n", dir, s.sport,
            s.dport, s.flags & JK_SYN ? "S" : "", s.flags & JK_ACK ? "A" : "",
            s.flags & JK_FIN ? "F" : "", s.flags & JK_RST ? "R" : "", s.flags & JK_PSH ? "P" : "",
            s.seq, s.ack, s.wnd, s.len, s.opt.has_ts ? " ts" : "", s.opt.nsack);
}

/* The fuzzer-side peer of one connection (keyed by the port pair). */
struct fz_model {
    bool used;
    bool retired; /* an earlier connection on the same ports */
    uint16_t lport, rport; /* the stack's port, the peer's port */
    /* peer side */
    uint32_t peer_iss;
    struct jk_range sent[FZ_SENT]; /* payload ranges the peer sent, merged */
    int nsent;
    bool sent_unknown; /* too many ranges, or sent before we knew: no check */
    bool tainted;
    /* stack side, learnt from its frames and from the app */
    bool have_iss;
    uint32_t our_iss;
    uint32_t our_max; /* highest end of what the stack sent */
    uint32_t our_ack; /* last ACK the stack sent */
    bool have_ack;
    uint32_t ts_recent; /* the stack's last tsval */
    bool bound;         /* the app has this conn (or had): writes are tracked */
    uint64_t written;
    bool fin_set;
    uint32_t fin_seq;
};

/* An application handle. */
struct fz_slot {
    jktcp_conn *c;
    struct fz_model *m;
    uint16_t lport, rport;
    bool rd_init;
    uint32_t rd_seq; /* sequence of the next byte the app will read */
    uint64_t nread;
};

struct fz_env {
    jktcp_port *port;
    jktcp_adapter *a;
    struct fz_clock clk;
    int fam;
    struct jk_addr local, peer;
    unsigned mtu;
    uint32_t peer_ts;
    struct fz_model m[FZ_MODELS];
    struct fz_slot s[FZ_SLOTS];
    uint64_t frames_out;
    bool freed; /* the adapter is gone: the port may report -EPIPE */
    uint8_t frame[JK_MAX_FRAME];
    uint8_t buf[FZ_IO_MAX + JK_MAX_FRAME];
};

static const char *const fz_local4 = "198.18.0.2", *const fz_peer4 = "198.18.0.1";
static const char *const fz_local6 = "fd00::2", *const fz_peer6 = "fd00::1";

/* The current model of a port pair. */
static struct fz_model *fz_model_find(struct fz_env *e, uint16_t lport, uint16_t rport)
{
    for (int i = 0; i < FZ_MODELS; i++)
        if (e->m[i].used && !e->m[i].retired && e->m[i].lport == lport && e->m[i].rport == rport)
            return &e->m[i];
    return NULL;
}

/* A fresh model for a new connection on the ports; the previous one is
 * retired (an app slot may still read the old connection's data). */
static struct fz_model *fz_model_new(struct fz_env *e, uint16_t lport, uint16_t rport)
{
    struct fz_model *old = fz_model_find(e, lport, rport);
    if (old)
        old->retired = true;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < FZ_MODELS; i++) {
            struct fz_model *m = &e->m[i];
            if (m->used)
                continue;
            memset(m, 0, sizeof *m);
            m->used = true;
            m->lport = lport;
            m->rport = rport;
            return m;
        }
        /* full: forget retired models no slot refers to */
        for (int i = 0; i < FZ_MODELS; i++) {
            bool ref = false;
            for (int j = 0; j < FZ_SLOTS; j++)
                ref |= e->s[j].c && e->s[j].m == &e->m[i];
            if (e->m[i].retired && !ref)
                e->m[i].used = false;
        }
    }
    return NULL;
}

static struct fz_model *fz_model_get(struct fz_env *e, uint16_t lport, uint16_t rport)
{
    struct fz_model *m = fz_model_find(e, lport, rport);
    return m ? m : fz_model_new(e, lport, rport);
}

/* Note payload [start, end) as sent by the peer. */
static void fz_model_sent(struct fz_model *m, uint32_t start, uint32_t end)
{
    for (int i = 0; i < m->nsent;) {
        struct jk_range *r = &m->sent[i];
        if (seq_le(r->start, end) && seq_le(start, r->end)) {
            start = seq_min(start, r->start);
            end = seq_max(end, r->end);
            *r = m->sent[--m->nsent];
            i = 0;
        } else {
            i++;
        }
    }
    if (m->nsent == FZ_SENT) {
        m->sent_unknown = true;
        return;
    }
    m->sent[m->nsent++] = (struct jk_range){start, end};
}

static bool fz_model_covers(const struct fz_model *m, uint32_t start, uint32_t end)
{
    for (int i = 0; i < m->nsent; i++)
        if (seq_le(m->sent[i].start, start) && seq_le(end, m->sent[i].end))
            return true;
    return false;
}

/* The stack's live connection for a model, if it still exists (internal
 * lookup: valid whether or not the app still holds it). */
static struct jktcp_conn *fz_live(struct fz_env *e, const struct fz_model *m)
{
    return jk_adapter_lookup(e->a, m->lport, m->rport);
}

/* ---- setup -------------------------------------------------------------- */

/* Adapter configuration from two input bytes. */
static void fz_env_init(struct fz_env *e, struct fz_in *in)
{
    uint8_t c0 = fz_u8(in), c1 = fz_u8(in);
    memset(e->m, 0, sizeof e->m);
    memset(e->s, 0, sizeof e->s);
    e->frames_out = 0;
    e->freed = false;
    e->fam = (c0 & 1) ? 6 : 4;
    e->clk.now = 1000000;
    e->peer_ts = 12345;
    /* c1 bits 4+5 together also pick a tiny port queue: the stack's output
     * then finds the transport busy (-EAGAIN) and must hold and retry. */
    size_t qbytes = (c1 & 0x30) == 0x30 ? 4096 : 1u << 20;
    FZ_CHECK(jktcp_port_new(qbytes, &e->port) == 0, "port");
    jktcp_transport *t;
    FZ_CHECK(jktcp_port_transport(e->port, &t) == 0, "port transport");
    const char *lo = e->fam == 4 ? fz_local4 : fz_local6, *pe = e->fam == 4 ? fz_peer4 : fz_peer6;
    FZ_CHECK(jktcp_adapter_new(t, lo, pe, &e->a) == 0, "adapter");
    jk_addr_parse(lo, &e->local);
    jk_addr_parse(pe, &e->peer);
    e->a->rng = 0x2545f491u; /* deterministic ISNs and ports */
    FZ_CHECK(jktcp_adapter_set_clock(e->a, fz_clock_now, &e->clk) == 0, "clock");

    jktcp_adapter *a = e->a;
    static const long bufs[4] = {4096, 16384, 65536, 262144};
    jktcp_adapter_set_option(a, JKTCP_OPT_SACK, (c0 >> 1) & 1);
    jktcp_adapter_set_option(a, JKTCP_OPT_TIMESTAMPS, (c0 >> 2) & 1);
    jktcp_adapter_set_option(a, JKTCP_OPT_CONGESTION, !((c0 >> 3) & 1));
    jktcp_adapter_set_option(a, JKTCP_OPT_NODELAY, !((c0 >> 4) & 1));
    jktcp_adapter_set_option(a, JKTCP_OPT_DELACK_US, (c0 >> 5) & 1 ? 0 : 1000);
    jktcp_adapter_set_option(a, JKTCP_OPT_KEEPALIVE_MS, (c0 >> 6) & 1 ? 2000 : 0);
    e->mtu = (c0 >> 7) & 1 ? (e->fam == 4 ? 576 : 1280) : 1500;
    FZ_CHECK(jktcp_adapter_set_mtu(a, e->mtu) == 0, "mtu");
    jktcp_adapter_set_option(a, JKTCP_OPT_SNDBUF, bufs[c1 & 3]);
    jktcp_adapter_set_option(a, JKTCP_OPT_RCVBUF, bufs[(c1 >> 2) & 3]);
    if ((c1 >> 4) & 1)
        jktcp_adapter_set_option(a, JKTCP_OPT_OOO_RANGES, 2);
    if ((c1 >> 5) & 1)
        jktcp_adapter_set_option(a, JKTCP_OPT_MAX_RETRIES, 3);
    if ((c1 >> 6) & 1)
        jktcp_adapter_set_option(a, JKTCP_OPT_TIMEWAIT_MS, 0);
    if ((c1 >> 7) & 1) {
        jktcp_adapter_set_option(a, JKTCP_OPT_RTO_MIN_MS, 1);
        jktcp_adapter_set_option(a, JKTCP_OPT_RTO_INIT_MS, 5);
        jktcp_adapter_set_mss(a, 64);
    }
}

/* ---- the stack's output -------------------------------------------------- */

static void fz_check_out(struct fz_env *e, const uint8_t *f, size_t n)
{
    struct jk_seg s;
    fz_trace_frame("out", f, n);
    enum jk_parse p = jk_parse_frame(f, n, &s);
    FZ_CHECK(p == JK_PARSE_TCP, "the stack sent a frame that parses as %d", p);
    FZ_CHECK(jk_frame_length(f, n) == (long)n, "frame length");
    FZ_CHECK(n <= e->mtu, "frame of %zu bytes, MTU %u", n, e->mtu);
    FZ_CHECK(jk_addr_eq(&s.src, &e->local) && jk_addr_eq(&s.dst, &e->peer), "addresses");
    FZ_CHECK(!((s.flags & JK_SYN) && (s.flags & (JK_RST | JK_FIN))), "flags %#x", s.flags);
    struct fz_model *m = fz_model_find(e, s.sport, s.dport);
    if (s.flags & JK_RST) {
        FZ_CHECK(s.len == 0, "RST with data");
        return;
    }
    if (!m) {
        FZ_CHECK(s.len == 0 && !(s.flags & JK_FIN), "data/FIN on connection %u->%u nobody "
                 "opened", s.sport, s.dport);
        return;
    }
    if (s.flags & JK_SYN) {
        if (m->have_iss && m->our_iss != s.seq) { /* a new connection on these ports */
            bool t = m->tainted;
            m = fz_model_new(e, s.sport, s.dport);
            FZ_CHECK(m != NULL, "models full");
            m->peer_iss = s.ack - 1;
            m->tainted = t;
            m->sent_unknown = true; /* what the peer sent before is unknown */
        }
        m->have_iss = true;
        m->our_iss = s.seq;
        m->our_max = s.seq + 1;
        FZ_CHECK(s.len == 0, "SYN with data");
    }
    uint32_t end = s.seq + s.len + ((s.flags & (JK_SYN | JK_FIN)) ? 1 : 0);
    if (m->have_iss && seq_gt(end, m->our_max))
        m->our_max = end;
    if (s.flags & JK_ACK) {
        m->our_ack = s.ack;
        m->have_ack = true;
    }
    if (s.opt.has_ts)
        m->ts_recent = s.opt.tsval;
    if (s.len) {
        FZ_CHECK(m->bound && m->have_iss, "data on %u->%u the app never wrote to", s.sport,
                 s.dport);
        uint32_t off = s.seq - (m->our_iss + 1);
        FZ_CHECK(off <= m->written && s.len <= m->written - off,
                 "data [%u, +%u) outside the %llu bytes written", off, s.len,
                 (unsigned long long)m->written);
        for (uint32_t i = 0; i < s.len; i++)
            FZ_CHECK(s.payload[i] == fz_our_byte(s.seq + i), "sent byte %u of seq %u differs",
                     i, s.seq);
    }
    if (s.flags & JK_FIN) {
        FZ_CHECK(m->fin_set, "FIN on %u->%u before shutdown/close", s.sport, s.dport);
        FZ_CHECK(s.seq + s.len == m->fin_seq, "FIN at %u, expected %u", s.seq + s.len,
                 m->fin_seq);
    }
}

/* Pull and check everything the stack queued. */
static void fz_drain(struct fz_env *e)
{
    for (;;) {
        ssize_t n = jktcp_port_pull(e->port, e->frame, sizeof e->frame, 0);
        if (n == -EAGAIN || (n == -EPIPE && e->freed))
            return;
        FZ_CHECK(n > 0, "pull returned %zd", n);
        e->frames_out++;
        fz_check_out(e, e->frame, (size_t)n);
    }
}

static void fz_poll(struct fz_env *e)
{
    int r = jktcp_adapter_poll(e->a, 0);
    FZ_CHECK(r == 0, "poll returned %d", r);
    fz_drain(e);
}

static void fz_push(struct fz_env *e, const uint8_t *f, size_t n)
{
    if (n == 0 || n > JK_MAX_FRAME)
        return;
    fz_trace_frame(" in", f, n);
    int r = jktcp_port_push(e->port, f, n);
    FZ_CHECK(r == 0 || r == -EAGAIN, "push returned %d", r);
    fz_poll(e);
    struct jktcp_conn *c;
    if (fz_trace > 0)
        jk_list_each_entry(c, &e->a->all, struct jktcp_conn, all_link)
            fprintf(stderr, "    conn %u->%u %s snd_una %u snd_nxt %u rcv_nxt %u%s%s\n", c->tcp.lport,
                    c->tcp.rport, jktcp_state_name(c->tcp.state), c->tcp.snd_una, c->tcp.snd_nxt, c->tcp.rcv_nxt,
                    c->hashed ? "" : " unhashed", c->queued ? " queued" : "");
}

/* ---- the peer's segments ------------------------------------------------- */

struct fz_segspec {
    uint16_t lport, rport;
    uint8_t flags;
    uint32_t seq, ack;
    uint16_t wnd;
    uint32_t len;
    struct jk_tcp_opts opt;
};

/* Build with payload fz_peer_byte(seq...), push, and note what was sent. */
static void fz_send(struct fz_env *e, struct fz_model *m, const struct fz_segspec *sp)
{
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    s.src = e->peer;
    s.dst = e->local;
    s.sport = sp->rport;
    s.dport = sp->lport;
    s.seq = sp->seq;
    s.ack = sp->ack;
    s.flags = sp->flags;
    s.wnd = sp->wnd;
    s.opt = sp->opt;
    uint32_t len = sp->len;
    if (len > FZ_IO_MAX)
        len = FZ_IO_MAX;
    uint32_t data_seq = sp->seq + ((sp->flags & JK_SYN) ? 1 : 0);
    fz_fill_peer(e->buf, data_seq, len);
    struct iovec iov = {e->buf, len};
    size_t n = jk_build_segment(e->frame, sizeof e->frame, &s, &iov, 1);
    if (!n) /* too long for one frame: send it without payload */
        n = jk_build_segment(e->frame, sizeof e->frame, &s, NULL, 0), len = 0;
    FZ_CHECK(n > 0, "build");
    if (m && len && !(sp->flags & JK_RST))
        fz_model_sent(m, data_seq, data_seq + len);
    fz_push(e, e->frame, n);
}

/* Options of a peer segment from the input: one selector byte + values. */
static void fz_opts(struct fz_env *e, struct fz_model *m, struct fz_in *in, struct jk_tcp_opts *o,
                    uint32_t una)
{
    uint8_t b = fz_u8(in);
    memset(o, 0, sizeof *o);
    if (b & 1) {
        o->has_ts = true;
        e->peer_ts += (uint32_t)(e->clk.now / 1000) & 0xff;
        o->tsval = (b & 0x80) ? fz_u32(in) : e->peer_ts;
        o->tsecr = m ? m->ts_recent : 0;
    }
    if (b & 2) {
        o->nsack = (uint8_t)(((b >> 2) & 3) + 1);
        for (int i = 0; i < o->nsack; i++) {
            uint32_t l = una + fz_u16(in);
            o->sack[i].left = l;
            o->sack[i].right = l + fz_u16(in);
        }
    }
    if (b & 0x10) {
        o->has_mss = true;
        o->mss = fz_u16(in);
    }
    if (b & 0x20) {
        o->has_wscale = true;
        o->wscale = fz_u8(in) & 15;
    }
    if (b & 0x40)
        o->sack_ok = true;
}

/* A segment on model m's connection, its fields chosen relative to the
 * stack's live state (or, once it is gone, the model's memory of it). */
static void fz_structured(struct fz_env *e, struct fz_model *m, struct fz_in *in)
{
    struct jktcp_conn *c = fz_live(e, m);
    uint32_t rcv_nxt = c ? c->tcp.rcv_nxt : m->have_ack ? m->our_ack : m->peer_iss + 1;
    uint32_t rwnd = c ? jk_tcp_rcv_window(&c->tcp) : 0;
    uint32_t una = c ? c->tcp.snd_una : m->our_iss + 1;
    uint32_t smax = c ? c->tcp.snd_max : m->our_max;
    uint32_t iss = c ? c->tcp.iss : m->our_iss;

    struct fz_segspec sp;
    memset(&sp, 0, sizeof sp);
    sp.lport = m->lport;
    sp.rport = m->rport;
    uint8_t fl = fz_u8(in), sm = fz_u8(in), am = fz_u8(in);
    sp.flags = fl ^ JK_ACK;
    int32_t sd = (int16_t)fz_u16(in);
    switch (sm & 3) {
    case 0: sp.seq = rcv_nxt + (uint32_t)sd; break;
    case 1: sp.seq = rcv_nxt + rwnd + (uint32_t)sd; break;
    case 2: sp.seq = m->peer_iss + (uint32_t)sd; break;
    default: sp.seq = fz_u32(in); break;
    }
    int32_t ad = (int8_t)fz_u8(in);
    switch (am & 3) {
    case 0: sp.ack = una + (uint32_t)ad; break;
    case 1: sp.ack = smax + (uint32_t)ad; break;
    case 2: sp.ack = iss + 1 + (uint32_t)(ad * 1000); break;
    default: sp.ack = fz_u32(in); break;
    }
    sp.wnd = (sm & 4) ? fz_u16(in) : 65535;
    uint16_t l = fz_u16(in);
    sp.len = (sm & 8) ? l : l & 0x7ff;
    fz_opts(e, m, in, &sp.opt, una);
    fz_send(e, m, &sp);
}

/* Quick progress: the next in-order data (or pure ACK) acking everything. */
static void fz_in_order(struct fz_env *e, struct fz_model *m, struct fz_in *in)
{
    struct jktcp_conn *c = fz_live(e, m);
    struct fz_segspec sp;
    memset(&sp, 0, sizeof sp);
    uint8_t b = fz_u8(in);
    sp.lport = m->lport;
    sp.rport = m->rport;
    sp.flags = JK_ACK | ((b & 1) ? JK_PSH : 0) | ((b & 2) ? JK_FIN : 0);
    sp.seq = c ? c->tcp.rcv_nxt : m->our_ack;
    sp.ack = c ? c->tcp.snd_max : m->our_max;
    sp.wnd = (b & 4) ? 0 : 65535;
    sp.len = (uint32_t)(b >> 3) * 97;
    if (c && c->tcp.ts_ok) {
        sp.opt.has_ts = true;
        sp.opt.tsval = ++e->peer_ts;
        sp.opt.tsecr = m->ts_recent;
    }
    fz_send(e, m, &sp);
}

/* A raw frame from the input (2-byte length). */
static void fz_raw(struct fz_env *e, struct fz_in *in)
{
    const uint8_t *p;
    size_t n = fz_bytes(in, fz_u16(in) % 2048, &p);
    if (!n)
        return;
    struct jk_seg s;
    if (jk_parse_frame(p, n, &s) == JK_PARSE_TCP && s.len) {
        struct fz_model *m = fz_model_find(e, s.dport, s.sport);
        if (m)
            m->tainted = true;
        for (int i = 0; i < FZ_MODELS; i++) /* unknown: be safe */
            if (!m && e->m[i].used)
                e->m[i].tainted = true;
    }
    memcpy(e->frame, p, n);
    fz_push(e, e->frame, n);
}

/* ---- the application ----------------------------------------------------- */

static void fz_slot_bind(struct fz_env *e, struct fz_slot *sl, jktcp_conn *c)
{
    memset(sl, 0, sizeof *sl);
    sl->c = c;
    sl->lport = c->tcp.lport;
    sl->rport = c->tcp.rport;
    /* The model that saw this connection's SYN / SYN-ACK (it may be retired:
     * an accepted connection can already be closed and its ports reused). */
    struct fz_model *m = NULL;
    for (int i = 0; i < FZ_MODELS && !m; i++) {
        struct fz_model *x = &e->m[i];
        if (x->used && x->lport == c->tcp.lport && x->rport == c->tcp.rport && x->have_iss &&
            x->our_iss == c->tcp.iss)
            m = x;
    }
    if (!m) {
        /* No model saw its handshake: what the peer sent it is unknown. It
         * happens when a connection waits in the accept queue while new
         * SYNs on its ports retire its model and fill the table, and the
         * table forgets retired models that no slot refers to yet. */
        m = fz_model_find(e, c->tcp.lport, c->tcp.rport);
        if (!m || m->have_iss) {
            m = fz_model_new(e, c->tcp.lport, c->tcp.rport);
            FZ_CHECK(m != NULL, "models full");
        }
        m->sent_unknown = true;
        m->have_iss = true;
        m->our_iss = c->tcp.iss;
        m->our_max = c->tcp.snd_max;
    }
    sl->m = m;
    m->bound = true;
}

static void fz_check_info(struct fz_env *e, struct fz_slot *sl)
{
    jktcp_info info;
    FZ_CHECK(jktcp_conn_info(sl->c, &info, sizeof info) == 0, "info");
    FZ_CHECK(info.state >= JKTCP_CLOSED && info.state <= JKTCP_LAST_ACK, "state %d", info.state);
    FZ_CHECK(info.local_port == sl->lport && info.remote_port == sl->rport, "ports");
    FZ_CHECK(info.bytes_received == sl->nread + info.bytes_readable,
             "received %llu != read %llu + readable %llu", (unsigned long long)info.bytes_received,
             (unsigned long long)sl->nread, (unsigned long long)info.bytes_readable);
    FZ_CHECK(info.bytes_readable <= (1u << 20), "readable %llu",
             (unsigned long long)info.bytes_readable);
    struct fz_model *m = sl->m;
    if (m->bound && m->our_iss == sl->c->tcp.iss)
        FZ_CHECK(info.bytes_queued + info.bytes_sent == m->written,
                 "queued %llu + sent %llu > written %llu", (unsigned long long)info.bytes_queued,
                 (unsigned long long)info.bytes_sent, (unsigned long long)m->written);
    (void)jktcp_state_name(info.state);
    int fr = jktcp_adapter_flush(e->a, 0);
    FZ_CHECK(fr == 0 || fr == -EAGAIN, "flush returned %d", fr);
    fz_drain(e);
    int err = jktcp_conn_error(sl->c);
    FZ_CHECK(err <= 0, "error %d", err);
}

static void fz_app_read(struct fz_env *e, struct fz_slot *sl, struct fz_in *in)
{
    size_t want = (size_t)fz_u16(in) % FZ_IO_MAX + 1;
    jktcp_conn *c = sl->c;
    ssize_t n = jktcp_conn_read(c, e->buf, want, 0);
    fz_drain(e);
    if (n <= 0) {
        FZ_CHECK(n == 0 || n == -EAGAIN || n == -ECONNRESET || n == -ETIMEDOUT ||
                     n == -ENOTCONN || n == -ECONNREFUSED || n == -EPIPE,
                 "read returned %zd", n);
        return;
    }
    FZ_CHECK((size_t)n <= want, "read %zd of %zu", n, want);
    if (!sl->rd_init) { /* irs is final once data was delivered */
        sl->rd_init = true;
        sl->rd_seq = c->tcp.irs + 1;
    }
    struct fz_model *m = sl->m;
    if (!m->tainted) {
        if (!m->sent_unknown && !fz_model_covers(m, sl->rd_seq, sl->rd_seq + (uint32_t)n)) {
            fprintf(stderr, "slot %u->%u model %u->%u%s, %d ranges:", sl->lport, sl->rport,
                    m->lport, m->rport, m->retired ? " (retired)" : "", m->nsent);
            for (int i = 0; i < m->nsent; i++)
                fprintf(stderr, " [%u, %u)", m->sent[i].start, m->sent[i].end);
            fputc('\n', stderr);
        }
        FZ_CHECK(m->sent_unknown || fz_model_covers(m, sl->rd_seq, sl->rd_seq + (uint32_t)n),
                 "read [%u, +%zd) that the peer never sent", sl->rd_seq, n);
        for (ssize_t i = 0; i < n; i++)
            FZ_CHECK(e->buf[i] == fz_peer_byte(sl->rd_seq + (uint32_t)i),
                     "read byte %zd (seq %u) differs", i, sl->rd_seq + (uint32_t)i);
    }
    sl->rd_seq += (uint32_t)n;
    sl->nread += (uint64_t)n;
}

static void fz_app_write(struct fz_env *e, struct fz_slot *sl, struct fz_in *in)
{
    size_t want = (size_t)fz_u16(in) % FZ_IO_MAX + 1;
    jktcp_conn *c = sl->c;
    struct fz_model *m = sl->m;
    FZ_CHECK(m->bound, "slot without model");
    uint32_t seq = m->our_iss + 1 + (uint32_t)m->written;
    fz_fill_our(e->buf, seq, want);
    ssize_t n = jktcp_conn_write(c, e->buf, want, 0);
    if (n > 0) {
        FZ_CHECK((size_t)n <= want, "wrote %zd of %zu", n, want);
        FZ_CHECK(!m->fin_set, "write accepted after shutdown");
        m->written += (uint64_t)n;
    } else {
        FZ_CHECK(n == -EAGAIN || n == -EPIPE || n == -ECONNRESET || n == -ETIMEDOUT ||
                     n == -ENOTCONN || n == -ECONNREFUSED,
                 "write returned %zd", n);
    }
    fz_drain(e);
}

/* Shutdown or close: both queue a FIN after the bytes written so far. */
static void fz_mark_fin(struct fz_env *e, struct fz_slot *sl)
{
    struct fz_model *m = sl->m;
    if (!m->fin_set) {
        m->fin_set = true;
        m->fin_seq = m->our_iss + 1 + (uint32_t)m->written;
    }
}

static void fz_app_shutdown(struct fz_env *e, struct fz_slot *sl)
{
    fz_mark_fin(e, sl);
    int r = jktcp_conn_shutdown(sl->c);
    FZ_CHECK(r == 0 || r == -ENOTCONN || r == -ECONNRESET || r == -ETIMEDOUT ||
                 r == -ECONNREFUSED || r == -EPIPE,
             "shutdown returned %d", r);
    fz_drain(e);
}

static void fz_app_close(struct fz_env *e, struct fz_slot *sl, bool abort_it)
{
    if (!abort_it)
        fz_mark_fin(e, sl);
    int r = abort_it ? jktcp_conn_abort(sl->c) : jktcp_conn_close(sl->c);
    FZ_CHECK(r == 0, "close/abort returned %d", r);
    sl->c = NULL;
    fz_drain(e);
}

/* One application/clock action on slot sl; returns false if op is not one. */
static bool fz_app_op(struct fz_env *e, struct fz_slot *sl, uint8_t op, struct fz_in *in)
{
    switch (op) {
    case 0:
        if (sl->c)
            fz_app_read(e, sl, in);
        return true;
    case 1:
        if (sl->c)
            fz_app_write(e, sl, in);
        return true;
    case 2:
        if (sl->c)
            fz_app_shutdown(e, sl);
        return true;
    case 3:
        if (sl->c)
            fz_app_close(e, sl, false);
        return true;
    case 4:
        if (sl->c)
            fz_app_close(e, sl, true);
        return true;
    case 5:
        if (sl->c)
            fz_check_info(e, sl);
        return true;
    default:
        return false;
    }
}

static void fz_clock_op(struct fz_env *e, struct fz_in *in)
{
    e->clk.now += fz_clock_step(fz_u8(in));
    fz_poll(e);
    int t = jktcp_adapter_timeout(e->a);
    FZ_CHECK(t >= -1 && t <= 60000, "timeout %d", t);
}

/* Let every timer run out (RTOs, TIME_WAIT, FIN_WAIT_2...). */
static void fz_run_out(struct fz_env *e)
{
    for (int i = 0; i < 40; i++) {
        e->clk.now += 5000000;
        fz_poll(e);
    }
}

static void fz_env_free(struct fz_env *e)
{
    jktcp_stats st;
    fz_drain(e);
    FZ_CHECK(jktcp_adapter_stats(e->a, &st, sizeof st) == 0, "stats");
    FZ_CHECK(st.frames_out == e->frames_out, "stats say %llu frames out, pulled %llu",
             (unsigned long long)st.frames_out, (unsigned long long)e->frames_out);
    jktcp_adapter_free(e->a);
    e->a = NULL;
    e->freed = true;
    fz_drain(e); /* the RSTs of the teardown */
    jktcp_port_free(e->port);
}

#endif
