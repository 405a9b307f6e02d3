/* SPDX-License-Identifier: MIT */
/*
 * The peer's side of a differential run: building its segments, taking
 * the SUT's (with the invariants every TCP segment must meet), the
 * normalised text of a segment, and the outcome lines.
 */
#include "diff_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PEER_ISS 3000000000u   /* above 2^31: signed comparisons show */
#define DEFAULT_WND (256u * 1024u) /* the peer's window when scaling is on */

double dx_ms(struct dx *x)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    return (double)(us - x->t0_us) / 1000.0;
}

void dx_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int dx_family(const struct dx *x) { return x->family; }
const char *dx_system(const struct dx *x) { return x->sys->name; }

void dx_run_begin(struct dx *x)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x->t0_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    x->irs = PEER_ISS;
    x->our_ws = x->sut_ws = -1;
    x->our_tsval = 1000000;
}

void dx_fail(struct dx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    x->failed = true;
    longjmp(x->bail, 1);
}

void dx_out(struct dx *x, const char *key, const char *fmt, ...)
{
    char v[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    int n = snprintf(x->out + x->outlen, sizeof x->out - x->outlen, "%s: %s\n", key, v);
    if (n > 0 && x->outlen + (size_t)n < sizeof x->out)
        x->outlen += (size_t)n;
}

const char *dx_errname(long e)
{
    static const struct {
        int e;
        const char *n;
    } t[] = {{ECONNRESET, "ECONNRESET"},     {ECONNREFUSED, "ECONNREFUSED"},
             {ETIMEDOUT, "ETIMEDOUT"},       {EPIPE, "EPIPE"},
             {ENOTCONN, "ENOTCONN"},         {EAGAIN, "EAGAIN"},
             {EHOSTUNREACH, "EHOSTUNREACH"}, {ENETUNREACH, "ENETUNREACH"},
             {EINPROGRESS, "EINPROGRESS"},   {ENETDOWN, "ENETDOWN"},
             {EINVAL, "EINVAL"},             {EACCES, "EACCES"},
             {EPROTO, "EPROTO"},             {ENOPROTOOPT, "ENOPROTOOPT"},
             {EMSGSIZE, "EMSGSIZE"},         {EHOSTDOWN, "EHOSTDOWN"}};
    static __thread char buf[32];
    if (e < 0)
        e = -e;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].e == e)
            return t[i].n;
    snprintf(buf, sizeof buf, "errno %ld", e);
    return buf;
}

/* ---------------------------------------------------------------------- */
/* The peer's segments                                                     */
/* ---------------------------------------------------------------------- */

struct dx_opt dx_syn_opts(struct dx *x)
{
    struct dx_opt o;
    memset(&o, 0, sizeof o);
    o.mss = x->family == 4 ? 1460 : 1440;
    o.ws = 7;
    o.sack_perm = true;
    o.ts = true;
    return o;
}

/* Once both SYNs are known: what the connection uses (RFC 7323 §1.3,
 * §2.2; RFC 2018). */
static void negotiate(struct dx *x)
{
    if (!x->our_syn_sent || !x->sut_syn_seen)
        return;
    const struct jk_tcp_opts *s = &x->sut_syn_opt;
    x->ts = x->ts_offered && s->has_ts;
    x->sack = x->sack_offered && s->sack_ok;
    bool ws = s->has_wscale && x->ws_offer >= 0;
    x->our_ws = ws ? x->ws_offer : -1;
    x->sut_ws = ws ? s->wscale : -1;
    x->synced = true;
}

/* A SYN of ours: what we offer. */
static void offer(struct dx *x, const struct dx_opt *o)
{
    x->our_mss = (uint32_t)o->mss;
    x->ws_offer = o->ws;
    x->ts_offered = o->ts;
    x->sack_offered = o->sack_perm;
    x->our_syn_sent = true;
    negotiate(x);
}

static uint16_t window_field(struct dx *x, const struct dx_opt *o, bool syn)
{
    if (o && o->raw_wnd)
        return (uint16_t)o->wnd;
    uint32_t bytes = o && o->wnd ? (uint32_t)o->wnd : (x->our_ws > 0 && !syn ? DEFAULT_WND : 65535);
    uint32_t raw = syn || x->our_ws < 0 ? bytes : bytes >> x->our_ws;
    return (uint16_t)(raw > 65535 ? 65535 : raw);
}

size_t dx_build(struct dx *x, uint8_t *buf, size_t cap, uint8_t flags, uint32_t seq,
                uint32_t ack, const void *data, size_t len, const struct dx_opt *o)
{
    struct dx_opt none;
    memset(&none, 0, sizeof none);
    none.ws = -1;
    if (!o)
        o = &none;
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    s.src = x->peer;
    s.dst = x->sut;
    s.sport = x->peer_port;
    s.dport = x->sut_port;
    s.seq = x->irs + seq;
    s.ack = x->iss + ack;
    s.flags = flags;
    bool syn = flags & JK_SYN;
    s.wnd = window_field(x, o, syn);
    s.urp = o->urp;
    if (syn) {
        if (o->mss || o->mss_zero) {
            s.opt.has_mss = true;
            s.opt.mss = (uint16_t)o->mss;
        }
        if (o->ws >= 0) {
            s.opt.has_wscale = true;
            s.opt.wscale = (uint8_t)o->ws;
        }
        s.opt.sack_ok = o->sack_perm;
    }
    bool ts = syn ? o->ts : (x->ts && !o->no_ts && !(flags & JK_RST));
    if (ts || o->ts_set) {
        s.opt.has_ts = true;
        s.opt.tsval = o->ts_set ? o->tsval : x->our_tsval;
        s.opt.tsecr = o->ts_set ? o->tsecr : x->sut_tsval;
    }
    s.opt.nsack = (uint8_t)o->nsack;
    for (int i = 0; i < o->nsack && i < 4; i++)
        s.opt.sack[i] = (struct jk_sack_block){x->iss + o->sack[i][0], x->iss + o->sack[i][1]};
    struct iovec iov = {(void *)data, len};
    return jk_build_segment(buf, cap, &s, &iov, data ? 1 : 0);
}

void dx_send(struct dx *x, uint8_t flags, uint32_t seq, uint32_t ack, const void *data,
             size_t len, const struct dx_opt *o)
{
    static uint8_t f[70000];
    size_t n = dx_build(x, f, sizeof f, flags, seq, ack, data, len, o);
    if (!n)
        dx_fail(x, "could not build a segment (flags %#x, %zu bytes)", flags, len);
    if (flags & JK_SYN) {
        struct dx_opt none;
        memset(&none, 0, sizeof none);
        none.ws = -1;
        offer(x, o ? o : &none);
    }
    if ((flags & JK_ACK) && !(flags & JK_RST)) {
        x->our_ack = ack;
        struct jk_seg parsed;
        if (jk_parse_frame(f, n, &parsed) == JK_PARSE_TCP) {
            bool syn = flags & JK_SYN;
            x->our_wnd = syn || x->our_ws < 0 ? parsed.wnd : (uint32_t)parsed.wnd << x->our_ws;
            x->edge_known = true;
        }
    }
    x->our_tsval++;
    if (x->sys->frame_out(x, f, n) < 0)
        dx_fail(x, "could not hand a frame to %s", x->sys->name);
}

void dx_send_raw(struct dx *x, const void *frame, size_t len)
{
    if (x->sys->frame_out(x, frame, len) < 0)
        dx_fail(x, "could not hand a raw frame to %s", x->sys->name);
}

/* ---------------------------------------------------------------------- */
/* The SUT's segments                                                      */
/* ---------------------------------------------------------------------- */

static bool from_sut(struct dx *x, const uint8_t *f, size_t n, struct jk_ip *ip)
{
    return jk_parse_ip(f, n, ip) == JK_PARSE_TCP && ip->family == x->family &&
           jk_addr_eq(&ip->src, &x->sut) && jk_addr_eq(&ip->dst, &x->peer);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* What holds for every segment either system sends. */
static void check_invariants(struct dx *x, const struct jk_seg *s, size_t opt_len)
{
    bool syn = s->flags & JK_SYN, rst = s->flags & JK_RST;
    if (!syn && (s->opt.has_mss || s->opt.has_wscale || s->opt.sack_ok))
        dx_fail(x, "SYN-only option on %s", dx_str(&x->seg));
    if (x->synced && !syn && !rst && s->opt.has_ts != x->ts)
        dx_fail(x, "timestamps %s negotiation (RFC 7323 §3.2): %s",
                x->ts ? "missing after" : "without", dx_str(&x->seg));
    if (syn && (s->flags & JK_ACK) && s->opt.has_ts && !x->ts_offered)
        dx_fail(x, "SYN-ACK with timestamps the SYN did not offer: %s", dx_str(&x->seg));
    if (syn && (s->flags & JK_ACK) && s->opt.sack_ok && !x->sack_offered)
        dx_fail(x, "SYN-ACK with SACK-permitted the SYN did not offer: %s", dx_str(&x->seg));
    if (s->opt.nsack && !(x->synced ? x->sack : x->sack_offered))
        dx_fail(x, "SACK blocks without SACK-permitted (RFC 2018): %s", dx_str(&x->seg));
    if (s->len) {
        uint32_t mss = x->our_mss ? x->our_mss : (x->family == 4 ? 536 : 1220);
        if (mss < 48)
            mss = 48; /* both raise a tiny MSS to this floor */
        if (s->len + opt_len > mss)
            dx_fail(x, "payload %u + options %zu beyond the MSS %u we announced: %s", s->len,
                    opt_len, mss, dx_str(&x->seg));
        uint32_t rel = s->seq - x->iss;
        if (x->edge_known && x->our_wnd && (int32_t)(rel + s->len - (x->our_ack + x->our_wnd)) > 0)
            dx_fail(x, "data beyond the window we offered (edge %u): %s",
                    x->our_ack + x->our_wnd, dx_str(&x->seg));
    }
}

bool dx_take_frame(struct dx *x, const uint8_t *f, size_t n)
{
    struct jk_ip ip;
    if (!from_sut(x, f, n, &ip) || ip.proto != JK_IPPROTO_TCP || ip.len < 4)
        return false;
    if (!x->sut_port && rd16(ip.l4 + 2) == x->peer_port && ip.len >= 14 && (ip.l4[13] & JK_SYN))
        x->sut_port = rd16(ip.l4); /* an active open: its port is its SYN's */
    if (rd16(ip.l4) != x->sut_port || rd16(ip.l4 + 2) != x->peer_port)
        return false; /* another flow (an earlier run's) */
    struct dx_seg *g = &x->seg;
    memset(g, 0, sizeof *g);
    enum jk_parse r = jk_parse_frame(f, n, &g->s);
    if (r != JK_PARSE_TCP)
        dx_fail(x, "a malformed segment from %s (parse %d, %zu bytes)", x->sys->name, r, n);
    g->flen = n < sizeof g->frame ? n : sizeof g->frame;
    memcpy(g->frame, f, g->flen);
    g->t_ms = dx_ms(x);
    if ((g->s.flags & JK_SYN) && !x->iss_known) {
        x->iss = g->s.seq;
        x->iss_known = true;
    }
    if (g->s.flags & JK_SYN) {
        x->sut_syn_opt = g->s.opt;
        x->sut_syn_seen = true;
        negotiate(x);
    }
    g->seq = g->s.seq - x->iss;
    g->ack = g->s.ack - x->irs;
    if (g->s.opt.has_ts)
        x->sut_tsval = g->s.opt.tsval;
    check_invariants(x, &g->s, jk_tcp_opts_len(&g->s.opt));
    return true;
}

const struct dx_seg *dx_next(struct dx *x, int timeout_ms)
{
    static uint8_t f[70000];
    double end = dx_ms(x) + timeout_ms;
    for (;;) {
        double left = end - dx_ms(x);
        long n = x->sys->frame_in(x, f, sizeof f, left > 0 ? (int)left + 1 : 0);
        if (n > 0 && dx_take_frame(x, f, (size_t)n))
            return &x->seg;
        if (n <= 0 && dx_ms(x) >= end)
            return NULL;
    }
}

size_t dx_next_frame_to(struct dx *x, const struct jk_addr *dst, uint8_t *buf, size_t cap,
                        int timeout_ms)
{
    static uint8_t f[70000];
    double end = dx_ms(x) + timeout_ms;
    for (;;) {
        double left = end - dx_ms(x);
        long n = x->sys->frame_in(x, f, sizeof f, left > 0 ? (int)left + 1 : 0);
        struct jk_ip ip;
        if (n > 0 && jk_parse_ip(f, (size_t)n, &ip) == JK_PARSE_TCP && jk_addr_eq(&ip.dst, dst)) {
            size_t k = (size_t)n < cap ? (size_t)n : cap;
            memcpy(buf, f, k);
            return k;
        }
        if (n <= 0 && dx_ms(x) >= end)
            return 0;
    }
}

uint32_t dx_sut_window(const struct dx *x, const struct dx_seg *g)
{
    bool scaled = !(g->s.flags & JK_SYN) && x->sut_ws > 0;
    return scaled ? (uint32_t)g->s.wnd << x->sut_ws : g->s.wnd;
}

const char *dx_str(const struct dx_seg *g)
{
    static __thread char b[512];
    const struct jk_seg *s = &g->s;
    int n = snprintf(b, sizeof b, "%s%s%s%s %u:%u(%u)", s->flags & JK_SYN ? "S" : "",
                     s->flags & JK_FIN ? "F" : "", s->flags & JK_RST ? "R" : "",
                     s->flags & JK_ACK ? "." : "", g->seq, g->seq + s->len, s->len);
    if (s->flags & JK_ACK)
        n += snprintf(b + n, sizeof b - (size_t)n, " ack %u", g->ack);
    if (s->flags & JK_URG)
        n += snprintf(b + n, sizeof b - (size_t)n, " urg %u", s->urp);
    if (!(s->flags & JK_RST) && s->wnd == 0)
        n += snprintf(b + n, sizeof b - (size_t)n, " win 0");
    const struct jk_tcp_opts *o = &s->opt;
    if (o->has_mss || o->sack_ok || o->has_ts || o->has_wscale || o->nsack) {
        n += snprintf(b + n, sizeof b - (size_t)n, " <");
        const char *sep = "";
        if (o->has_mss) {
            n += snprintf(b + n, sizeof b - (size_t)n, "mss %u", o->mss);
            sep = ",";
        }
        if (o->sack_ok) {
            n += snprintf(b + n, sizeof b - (size_t)n, "%ssack", sep);
            sep = ",";
        }
        if (o->has_ts) {
            n += snprintf(b + n, sizeof b - (size_t)n, "%sts", sep);
            sep = ",";
        }
        if (o->has_wscale) {
            n += snprintf(b + n, sizeof b - (size_t)n, "%sws", sep);
            sep = ",";
        }
        for (int i = 0; i < o->nsack; i++) {
            /* blocks acknowledge the peer's data: relative to its ISS */
            uint32_t irs = s->ack - g->ack;
            n += snprintf(b + n, sizeof b - (size_t)n, "%ssack %u-%u", sep,
                          o->sack[i].left - irs, o->sack[i].right - irs);
            sep = ",";
        }
        snprintf(b + n, sizeof b - (size_t)n, ">");
    }
    return b;
}

/* ---------------------------------------------------------------------- */
/* Outcomes                                                                */
/* ---------------------------------------------------------------------- */

const struct dx_seg *dx_note(struct dx *x, const char *key, int timeout_ms)
{
    const struct dx_seg *g = dx_next(x, timeout_ms);
    dx_out(x, key, "%s", g ? dx_str(g) : "none");
    return g;
}

void dx_note_all(struct dx *x, const char *key, int window_ms)
{
    char acc[2048];
    size_t n = 0;
    acc[0] = 0;
    double end = dx_ms(x) + window_ms;
    const struct dx_seg *g;
    while (dx_ms(x) < end && (g = dx_next(x, (int)(end - dx_ms(x)) + 1)) != NULL)
        n += (size_t)snprintf(acc + n, sizeof acc - n, "%s%s", n ? " | " : "", dx_str(g));
    dx_out(x, key, "%s", n ? acc : "none");
}

void dx_note_read(struct dx *x, const char *key, int timeout_ms)
{
    uint8_t b[65536];
    long r = dx_read(x, b, sizeof b, timeout_ms);
    if (r > 0)
        dx_out(x, key, "data %ld", r);
    else if (r == 0)
        dx_out(x, key, "eof");
    else
        dx_out(x, key, "%s", dx_errname(r));
}

int dx_note_accept(struct dx *x, const char *key, int timeout_ms)
{
    int r = dx_accept(x, timeout_ms);
    dx_out(x, key, "%s", r ? dx_errname(r) : "ok");
    return r;
}

/* ---------------------------------------------------------------------- */
/* Handshakes                                                              */
/* ---------------------------------------------------------------------- */

void dx_open_passive(struct dx *x, const struct dx_opt *o)
{
    struct dx_opt d = dx_syn_opts(x);
    if (!o)
        o = &d;
    dx_listen(x, 16);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, o);
    const struct dx_seg *g = dx_next(x, 2000);
    if (!g || g->s.flags != (JK_SYN | JK_ACK))
        dx_fail(x, "no SYN-ACK to the handshake's SYN (%s)", g ? dx_str(g) : "none");
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    int r = dx_accept(x, 2000);
    if (r)
        dx_fail(x, "accept after the handshake: %s", dx_errname(r));
}

void dx_open_active(struct dx *x, const struct dx_opt *o)
{
    struct dx_opt d = dx_syn_opts(x);
    if (!o)
        o = &d;
    dx_connect(x);
    const struct dx_seg *g = dx_next(x, 2000);
    if (!g || g->s.flags != JK_SYN)
        dx_fail(x, "no SYN from connect (%s)", g ? dx_str(g) : "none");
    dx_send(x, JK_SYN | JK_ACK, 0, 1, NULL, 0, o);
    g = dx_next(x, 2000);
    if (!g || g->s.flags != JK_ACK)
        dx_fail(x, "no ACK of our SYN-ACK (%s)", g ? dx_str(g) : "none");
    int r = dx_connect_result(x, 2000);
    if (r)
        dx_fail(x, "connect after the handshake: %s", dx_errname(r));
}
