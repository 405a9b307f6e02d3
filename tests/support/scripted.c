/* SPDX-License-Identifier: MIT */
/* Scripted-peer harness. See scripted.h. */
#include "scripted.h"

#include "tcp.h" /* JK_MIN_SND_MSS */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sp_state sp;

#define SP_NSLOTS (sizeof sp.slots / sizeof sp.slots[0])
/* The peer's ISS unless a test sets sp_irs_next (above 2^31 to catch
 * signed comparisons). */
uint32_t sp_irs_next = 3000000000u;

static uint64_t sp_clock(void *ctx)
{
    (void)ctx;
    return sp.now_us;
}

static void setup(int family)
{
    memset(&sp, 0, sizeof sp);
    sp.now_us = sp.start_us = 1000000000ull; /* 1000 s: TSvals are non-zero */
    sp.family = family;
    sp.check_invariants = true;
    const char *l = family == 4 ? "198.18.0.2" : "fd00::2";
    const char *p = family == 4 ? "198.18.0.1" : "fd00::1";
    cr_assert_eq(jk_addr_parse(l, &sp.local), 0);
    cr_assert_eq(jk_addr_parse(p, &sp.peer), 0);
    cr_assert_eq(jktcp_port_new(0, &sp.port), 0, "jktcp_port_new");
    jktcp_transport *t = NULL;
    cr_assert_eq(jktcp_port_transport(sp.port, &t), 0, "jktcp_port_transport");
    int r = jktcp_adapter_new(t, l, p, &sp.a);
    cr_assert_eq(r, 0, "jktcp_adapter_new: %d", r);
    cr_assert_eq(jktcp_adapter_set_clock(sp.a, sp_clock, NULL), 0, "set_clock");
    sp_option(JKTCP_OPT_DELACK_US, 0);
    /* timing tests assert exact RTOs; the tlp_* tests turn probes back on */
    sp_option(JKTCP_OPT_TAIL_PROBE, 0);
    sp.f.wnd = 65535;
}

void sp_setup4(void) { setup(4); }
void sp_setup6(void) { setup(6); }

void sp_teardown(void)
{
    if (sp.a)
        jktcp_adapter_free(sp.a);
    sp.a = NULL;
    if (sp.port)
        jktcp_port_free(sp.port);
    sp.port = NULL;
}

void sp_option(jktcp_option opt, long value)
{
    int r = jktcp_adapter_set_option(sp.a, opt, value);
    cr_assert_eq(r, 0, "jktcp_adapter_set_option(%d, %ld): %d", (int)opt, value, r);
}

uint64_t sp_now_ms(void) { return (sp.now_us - sp.start_us) / 1000; }

void sp_poll(void)
{
    if (!sp.a)
        return;
    int r = jktcp_adapter_poll(sp.a, 0);
    cr_assert(r == 0 || r == -EAGAIN, "jktcp_adapter_poll: %d (%s)", r, jktcp_strerror(r));
}

void sp_advance_us(uint64_t us)
{
    sp.now_us += us;
    sp_poll();
}

void sp_advance_ms(uint64_t ms) { sp_advance_us(ms * 1000); }

/* ---------------------------------------------------------------------- */
/* Checksums (own implementation: the tests must not trust the codec)      */
/* ---------------------------------------------------------------------- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint16_t sp_csum(const void *data, size_t len, uint32_t init)
{
    return csum_fold(csum_add(init, data, len));
}

/* Recompute the IPv4 header checksum and the L4 (TCP/UDP/ICMP) checksum of
 * a frame that has no IPv6 extension headers. */
void sp_fix_checksums(uint8_t *f, size_t len)
{
    size_t ihl, l4len;
    uint8_t proto;
    uint32_t pseudo = 0;
    if ((f[0] >> 4) == 4) {
        ihl = (size_t)(f[0] & 15) * 4;
        size_t tot = (size_t)(f[2] << 8 | f[3]);
        if (tot > len)
            tot = len;
        f[10] = f[11] = 0;
        uint16_t c = sp_csum(f, ihl, 0);
        f[10] = (uint8_t)(c >> 8);
        f[11] = (uint8_t)c;
        proto = f[9];
        l4len = tot - ihl;
        pseudo = csum_add(0, f + 12, 8);
    } else {
        ihl = 40;
        proto = f[6];
        l4len = (size_t)(f[4] << 8 | f[5]);
        if (40 + l4len > len)
            l4len = len - 40;
        pseudo = csum_add(0, f + 8, 32);
    }
    pseudo += proto;
    pseudo += (uint32_t)l4len;
    uint8_t *l4 = f + ihl;
    size_t off = proto == 6 ? 16 : proto == 17 ? 6 : 2;
    if (proto == 1) /* ICMPv4: no pseudo header */
        pseudo = 0;
    l4[off] = l4[off + 1] = 0;
    uint16_t c = csum_fold(csum_add(pseudo, l4, l4len));
    if (proto == 17 && c == 0)
        c = 0xffff;
    l4[off] = (uint8_t)(c >> 8);
    l4[off + 1] = (uint8_t)c;
}

/* ---------------------------------------------------------------------- */
/* Building and pushing                                                    */
/* ---------------------------------------------------------------------- */

static uint32_t auto_tsval(void)
{
    /* The peer's TS clock: 1 tick per ms, monotonic with the fake clock,
     * never below a value a test sent explicitly (or PAWS would drop). */
    uint32_t v = 7000000u + (uint32_t)sp_now_ms();
    return seq_lt(v, sp.f.peer_ts_max) ? sp.f.peer_ts_max : v;
}

size_t sp_build(uint8_t *buf, size_t cap, uint8_t flags, uint32_t seq, uint32_t ack,
                long wnd, const void *payload, size_t len, const sp_opts *o)
{
    static const sp_opts none;
    if (!o)
        o = &none;
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    s.src = sp.peer;
    s.dst = sp.local;
    s.sport = sp.f.rport;
    s.dport = sp.f.lport;
    s.seq = sp.f.irs + seq;
    s.ack = (flags & JK_ACK) ? sp.f.iss + ack : ack;
    s.flags = flags;
    uint64_t bytes = wnd < 0 ? sp.f.wnd : (uint64_t)wnd;
    uint64_t raw;
    if (o->raw_wnd)
        raw = bytes;
    else if (flags & JK_SYN)
        raw = bytes;
    else
        raw = bytes >> sp.f.peer_ws;
    s.wnd = raw > 65535 ? 65535 : (uint16_t)raw;

    if (flags & JK_SYN) {
        if (o->mss || o->mss_zero) {
            s.opt.has_mss = true;
            s.opt.mss = o->mss;
        }
        if (o->ws) {
            s.opt.has_wscale = true;
            s.opt.wscale = o->wscale;
        }
        s.opt.sack_ok = o->sack_ok;
        if (o->ts || o->ts_set) {
            s.opt.has_ts = true;
            s.opt.tsval = o->ts_set ? o->tsval : auto_tsval();
            s.opt.tsecr = o->ts_set ? o->tsecr : ((flags & JK_ACK) ? sp.f.ts_recent : 0);
        }
    } else if (o->ts_set || (sp.f.ts && !o->no_ts && !(flags & JK_RST))) {
        s.opt.has_ts = true;
        s.opt.tsval = o->ts_set ? o->tsval : auto_tsval();
        s.opt.tsecr = o->ts_set ? o->tsecr : sp.f.ts_recent;
    }
    s.opt.nsack = o->nsack;
    for (unsigned i = 0; i < o->nsack && i < JK_MAX_SACK; i++) {
        s.opt.sack[i].left = sp.f.iss + o->sack[i].left;
        s.opt.sack[i].right = sp.f.iss + o->sack[i].right;
    }
    struct iovec iov = { (void *)payload, len };
    size_t n = jk_build_segment(buf, cap, &s, &iov, len ? 1 : 0);
    cr_assert(n > 0, "jk_build_segment failed (len %zu)", len);
    if (s.opt.has_ts) {
        sp.f.peer_tsval = s.opt.tsval;
        if (seq_gt(s.opt.tsval, sp.f.peer_ts_max) || !sp.f.peer_ts_max)
            sp.f.peer_ts_max = s.opt.tsval;
    }
    return n;
}

static bool trace_on(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SP_TRACE");
        on = e && *e && *e != '0';
    }
    return on;
}

static void trace(const char *dir, const uint8_t *frame, size_t len)
{
    if (!trace_on())
        return;
    static sp_seg g;
    memset(&g.s, 0, sizeof g.s);
    if (jk_parse_frame(frame, len, &g.s) != JK_PARSE_TCP) {
        fprintf(stderr, "[sp %6llu ms] %s non-TCP or bad frame, %zu bytes\n",
                (unsigned long long)sp_now_ms(), dir, len);
        return;
    }
    bool in = dir[0] == '>';
    g.seq = g.s.seq - (in ? sp.f.irs : sp.f.iss);
    g.ack = g.s.ack - (in ? sp.f.iss : sp.f.irs);
    g.wnd = g.s.wnd;
    fprintf(stderr, "[sp %6llu ms] %s %s\n", (unsigned long long)sp_now_ms(), dir, sp_str(&g));
}

void sp_push_raw(const void *frame, size_t len)
{
    trace("> peer", frame, len);
    int r = jktcp_port_push(sp.port, frame, len);
    cr_assert_eq(r, 0, "jktcp_port_push: %d", r);
    sp_poll();
}

void sp_send(uint8_t flags, uint32_t seq, uint32_t ack, long wnd, const void *payload,
             size_t len, const sp_opts *o)
{
    static uint8_t buf[JK_MAX_FRAME];
    size_t n = sp_build(buf, sizeof buf, flags, seq, ack, wnd, payload, len, o);
    sp_push_raw(buf, n);
}

/* ---------------------------------------------------------------------- */
/* Pulling and checking                                                    */
/* ---------------------------------------------------------------------- */

static void flagstr(unsigned f, char *out)
{
    char *p = out;
    if (f & JK_SYN) *p++ = 'S';
    if (f & JK_FIN) *p++ = 'F';
    if (f & JK_RST) *p++ = 'R';
    if (f & JK_PSH) *p++ = 'P';
    if (f & JK_URG) *p++ = 'U';
    if (f & JK_ECE) *p++ = 'E';
    if (f & JK_CWR) *p++ = 'W';
    if (f & JK_ACK) *p++ = '.';
    if (p == out) *p++ = '-';
    *p = 0;
}

static void addrstr(const struct jk_addr *a, char *out, size_t cap)
{
    inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->a, out, (socklen_t)cap);
}

void sp_format(const sp_seg *g, char *out, size_t cap)
{
    const struct jk_seg *s = &g->s;
    char fl[16], src[64], dst[64], opts[512];
    flagstr(s->flags, fl);
    addrstr(&s->src, src, sizeof src);
    addrstr(&s->dst, dst, sizeof dst);
    size_t o = 0;
    opts[0] = 0;
#define OPT(...) o += (size_t)snprintf(opts + o, o < sizeof opts ? sizeof opts - o : 0, __VA_ARGS__)
    if (s->opt.has_mss) OPT("mss %u,", s->opt.mss);
    if (s->opt.sack_ok) OPT("sackOK,");
    if (s->opt.has_ts) OPT("TS val %u ecr %u,", s->opt.tsval, s->opt.tsecr);
    if (s->opt.has_wscale) OPT("wscale %u,", s->opt.wscale);
    if (s->opt.nsack) {
        /* SACK blocks are in the other side's sequence space. */
        uint32_t base = jk_addr_eq(&s->src, &sp.peer) ? sp.f.iss : sp.f.irs;
        OPT("sack %u {", s->opt.nsack);
        for (unsigned i = 0; i < s->opt.nsack && i < JK_MAX_SACK; i++)
            OPT("%u:%u%s", s->opt.sack[i].left - base, s->opt.sack[i].right - base,
                i + 1 < s->opt.nsack ? " " : "");
        OPT("},");
    }
#undef OPT
    if (o && o < sizeof opts)
        opts[o - 1] = 0; /* drop the trailing comma */
    snprintf(out, cap,
             "%s.%u > %s.%u: Flags [%s], seq %u (raw %u), ack %u (raw %u), win %u (raw %u), "
             "length %u, options [%s]",
             src, s->sport, dst, s->dport, fl, g->seq, s->seq, g->ack, s->ack, g->wnd, s->wnd,
             s->len, opts);
}

const char *sp_str(const sp_seg *g)
{
    static char buf[4][1024];
    static unsigned i;
    char *b = buf[i++ % 4];
    sp_format(g, b, sizeof buf[0]);
    return b;
}

static bool same_flow(const sp_seg *g)
{
    return sp.f.lport && g->s.sport == sp.f.lport && g->s.dport == sp.f.rport;
}

static void check_invariants(const sp_seg *g)
{
    const struct jk_seg *s = &g->s;
    cr_assert(jk_addr_eq(&s->src, &sp.local) && jk_addr_eq(&s->dst, &sp.peer),
              "segment not from our address to the peer: %s", sp_str(g));
    if (!sp.check_invariants)
        return;
    if (!sp.lenient_ports && sp.f.lport)
        cr_assert(same_flow(g), "segment for another flow (expected %u > %u): %s", sp.f.lport,
                  sp.f.rport, sp_str(g));
    bool syn = s->flags & JK_SYN;
    if (!syn) {
        cr_assert(!s->opt.has_wscale, "window scale option on a non-SYN segment "
                  "(RFC 7323 §2.2): %s", sp_str(g));
        cr_assert(!s->opt.sack_ok, "SACK-permitted on a non-SYN segment (RFC 2018 §2): %s",
                  sp_str(g));
        cr_assert(!s->opt.has_mss, "MSS option on a non-SYN segment (RFC 9293 §3.7.1): %s",
                  sp_str(g));
    }
    if (!sp.f.synced || !same_flow(g) || syn)
        return;
    if (s->flags & JK_RST)
        return;
    if (sp.f.ts) {
        cr_assert(s->opt.has_ts, "timestamps negotiated but missing (RFC 7323 §3.2 MUST): %s",
                  sp_str(g));
        if (sp.f.ts_seen)
            cr_assert(seq_ge(s->opt.tsval, sp.f.ts_recent),
                      "TSval went backwards from %u (RFC 7323 §5.4): %s", sp.f.ts_recent,
                      sp_str(g));
    } else {
        cr_assert(!s->opt.has_ts, "timestamps not negotiated but sent (RFC 7323 §3.2): %s",
                  sp_str(g));
    }
    if (!sp.f.sack)
        cr_assert(s->opt.nsack == 0, "SACK blocks without SACK-permitted (RFC 2018): %s",
                  sp_str(g));
    if (s->len) {
        uint32_t mss = sp.f.peer_mss ? sp.f.peer_mss : (sp.family == 4 ? 536 : 1220);
        if (mss < JK_MIN_SND_MSS) /* a tiny MSS is raised to a floor, as Linux does */
            mss = JK_MIN_SND_MSS;
        cr_assert(s->len + g->opt_len <= mss,
                  "payload %u + options %u exceed the peer's MSS %u (RFC 6691 / RFC 9293 "
                  "§3.7.1): %s", s->len, g->opt_len, mss, sp_str(g));
    }
}

static sp_seg *pull_one(void)
{
    sp_seg *g = &sp.slots[sp.slot++ % SP_NSLOTS];
    ssize_t n = jktcp_port_pull(sp.port, g->frame, sizeof g->frame, 0);
    if (n == -EAGAIN)
        return NULL;
    cr_assert(n > 0, "jktcp_port_pull: %zd", n);
    g->flen = (size_t)n;
    trace("< jktcp", g->frame, g->flen);
    memset(&g->s, 0, sizeof g->s);
    enum jk_parse r = jk_parse_frame(g->frame, g->flen, &g->s);
    cr_assert_eq(r, JK_PARSE_TCP, "the adapter emitted a frame that does not parse as TCP "
                 "(jk_parse %d, %zu bytes)", (int)r, g->flen);
    size_t ip = (g->frame[0] >> 4) == 4 ? (size_t)(g->frame[0] & 15) * 4 : 40;
    g->opt_len = (uint32_t)((g->frame[ip + 12] >> 4) * 4) - 20;
    g->seq = g->s.seq - sp.f.iss;
    g->ack = g->s.ack - sp.f.irs;
    g->wnd = (g->s.flags & JK_SYN) ? g->s.wnd : (uint32_t)g->s.wnd << sp.f.our_ws;
    check_invariants(g);
    if (g->s.opt.has_ts && same_flow(g) && !(g->s.flags & JK_RST)) {
        sp.f.ts_recent = g->s.opt.tsval;
        sp.f.ts_seen = true;
    }
    return g;
}

const sp_seg *sp_next(void)
{
    sp_seg *g = pull_one();
    if (!g) {
        sp_poll();
        g = pull_one();
    }
    return g;
}

const sp_seg *sp_expect_any_at(const char *file, int line)
{
    const sp_seg *g = sp_next();
    if (!g)
        cr_assert_fail("%s:%d: expected a segment, the adapter emitted none (t=%llu ms)", file,
                       line, (unsigned long long)sp_now_ms());
    return g;
}

static void fmt_u(char *out, size_t cap, uint64_t v)
{
    if (v == SP_ANY)
        snprintf(out, cap, "*");
    else
        snprintf(out, cap, "%llu", (unsigned long long)v);
}

const sp_seg *sp_expect_at(const char *file, int line, unsigned flags, uint64_t seq, uint64_t ack,
                           uint64_t len)
{
    char fl[16], es[24], ea[24], el[24];
    flagstr(flags, fl);
    fmt_u(es, sizeof es, seq);
    fmt_u(ea, sizeof ea, ack);
    fmt_u(el, sizeof el, len);
    const sp_seg *g = sp_next();
    if (!g)
        cr_assert_fail("%s:%d: expected [%s] seq %s ack %s length %s, the adapter emitted "
                       "nothing (t=%llu ms)", file, line, fl, es, ea, el,
                       (unsigned long long)sp_now_ms());
    const unsigned mask = JK_SYN | JK_FIN | JK_RST | JK_ACK | JK_URG;
    bool ok = (g->s.flags & mask) == (flags & mask);
    if (seq != SP_ANY && g->seq != (uint32_t)seq)
        ok = false;
    if (ack != SP_ANY && (g->s.flags & JK_ACK) && g->ack != (uint32_t)ack)
        ok = false;
    if (len != SP_ANY && g->s.len != (uint32_t)len)
        ok = false;
    if (!ok)
        cr_assert_fail("%s:%d: expected [%s] seq %s ack %s length %s (PSH ignored)\n"
                       "                got %s (t=%llu ms)", file, line, fl, es, ea, el,
                       sp_str(g), (unsigned long long)sp_now_ms());
    return g;
}

void sp_expect_none_at(const char *file, int line)
{
    sp_poll();
    const sp_seg *g = pull_one();
    if (g)
        cr_assert_fail("%s:%d: expected no segment, got %s (t=%llu ms)", file, line, sp_str(g),
                       (unsigned long long)sp_now_ms());
}

const sp_seg *sp_wait(uint32_t max_ms, uint32_t *elapsed_ms)
{
    const sp_seg *g = sp_next();
    uint32_t i = 0;
    while (!g && i < max_ms) {
        sp_advance_ms(1);
        i++;
        g = pull_one();
    }
    if (elapsed_ms)
        *elapsed_ms = i;
    return g;
}

size_t sp_drain(sp_brief *out, size_t max)
{
    size_t n = 0;
    const sp_seg *g;
    while ((g = sp_next()) != NULL) {
        cr_assert(n < max, "more than %zu segments emitted", max);
        out[n].flags = g->s.flags;
        out[n].seq = g->seq;
        out[n].ack = g->ack;
        out[n].len = g->s.len;
        out[n].wnd = g->wnd;
        out[n].nsack = g->s.opt.nsack;
        out[n].t_ms = sp_now_ms();
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* Payload                                                                 */
/* ---------------------------------------------------------------------- */

const uint8_t *sp_pat(size_t off)
{
    static uint8_t pat[251 + 65536];
    static bool init;
    if (!init) {
        for (size_t i = 0; i < sizeof pat; i++)
            pat[i] = (uint8_t)((i % 251) * 37 + 11);
        init = true;
    }
    return pat + off % 251;
}

void sp_assert_payload_at(const char *file, int line, const sp_seg *g, size_t off)
{
    const uint8_t *want = sp_pat(off);
    for (uint32_t i = 0; i < g->s.len; i++)
        if (g->s.payload[i] != want[i])
            cr_assert_fail("%s:%d: payload byte %u (stream offset %zu) is 0x%02x, expected "
                           "0x%02x: %s", file, line, i, off + i, g->s.payload[i], want[i],
                           sp_str(g));
}

/* ---------------------------------------------------------------------- */
/* Connection helpers                                                      */
/* ---------------------------------------------------------------------- */

jktcp_info sp_info(jktcp_conn *c)
{
    jktcp_info i;
    memset(&i, 0, sizeof i);
    int r = jktcp_conn_info(c, &i, sizeof i);
    cr_assert_eq(r, 0, "jktcp_conn_info: %d", r);
    return i;
}

int sp_state_of(jktcp_conn *c) { return sp_info(c).state; }

jktcp_stats sp_stats(void)
{
    jktcp_stats st;
    memset(&st, 0, sizeof st);
    int r = jktcp_adapter_stats(sp.a, &st, sizeof st);
    cr_assert_eq(r, 0, "jktcp_adapter_stats: %d", r);
    return st;
}

ssize_t sp_read_now(jktcp_conn *c, void *buf, size_t cap)
{
    size_t got = 0;
    ssize_t r = 0;
    while (got < cap) {
        r = jktcp_conn_read(c, (uint8_t *)buf + got, cap - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got ? (ssize_t)got : r;
}

static sp_opts syn_opts(const sp_hs *hs)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    if (hs->mss >= 0)
        o.mss = (uint16_t)hs->mss;
    if (hs->mss == 0) /* an MSS option of 0: receivers treat it as none */
        o.mss_zero = true;
    if (hs->wscale >= 0) {
        o.ws = true;
        o.wscale = (uint8_t)hs->wscale;
    }
    o.sack_ok = hs->sack;
    o.ts = hs->ts;
    return o;
}

/* Fill in the negotiated parameters from the peer's offer and the adapter's
 * SYN or SYN-ACK. */
static void negotiate(const sp_hs *hs, const sp_seg *g)
{
    const struct jk_tcp_opts *a = &g->s.opt;
    bool ws = hs->wscale >= 0 && a->has_wscale;
    sp.f.peer_ws = ws ? (uint8_t)(hs->wscale > 14 ? 14 : hs->wscale) : 0;
    sp.f.our_ws = ws ? (uint8_t)(a->wscale > 14 ? 14 : a->wscale) : 0;
    sp.f.sack = hs->sack && a->sack_ok;
    sp.f.ts = hs->ts && a->has_ts;
    sp.f.peer_mss = hs->mss > 0 ? (uint16_t)hs->mss : 0;
    sp.f.wnd = hs->wnd;
}

jktcp_conn *sp_connect(const sp_hs *hsp)
{
    sp_hs hs = hsp ? *hsp : SP_HS_DEFAULT;
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.wnd = 65535;
    sp.f.rport = hs.port ? hs.port : 80;
    jktcp_conn *c = NULL;
    int r = jktcp_conn_connect(sp.a, sp.f.rport, 0, &c);
    cr_assert_eq(r, -EINPROGRESS, "jktcp_conn_connect(timeout 0): %d (%s)", r,
                 jktcp_strerror(r));
    cr_assert(c, "jktcp_conn_connect gave no connection");
    sp.c = c;
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    cr_assert_eq(g->s.dport, sp.f.rport, "SYN to the wrong port: %s", sp_str(g));
    sp.f.lport = g->s.sport;
    sp.f.iss = g->s.seq;
    sp.f.syn_wnd = g->s.wnd;
    if (g->s.opt.has_ts) {
        sp.f.ts_recent = g->s.opt.tsval;
        sp.f.ts_seen = true;
    }
    sp.f.irs = sp_irs_next;
    negotiate(&hs, g);
    if (hs.rtt_ms)
        sp_advance_ms(hs.rtt_ms);
    sp_opts o = syn_opts(&hs);
    sp_send(JK_SYN | JK_ACK, 0, 1, hs.wnd > 65535 ? 65535 : hs.wnd, NULL, 0, &o);
    sp.f.synced = true;
    sp_expect(JK_ACK, 1, 1, 0);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.state, JKTCP_ESTABLISHED, "state after the handshake is %s",
                 jktcp_state_name(i.state));
    return c;
}

const sp_seg *sp_accept_syn(const sp_hs *hs, uint16_t peer_port)
{
    uint16_t lport = hs->port ? hs->port : 80;
    if (!sp.l) {
        int r = jktcp_adapter_listen(sp.a, lport, 0, &sp.l);
        cr_assert_eq(r, 0, "jktcp_adapter_listen(%u): %d", lport, r);
    }
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.wnd = 65535;
    sp.f.lport = lport;
    sp.f.rport = peer_port;
    sp.f.irs = sp_irs_next;
    sp_opts o = syn_opts(hs);
    sp_send(JK_SYN, 0, 0, hs->wnd > 65535 ? 65535 : hs->wnd, NULL, 0, &o);
    uint32_t peer_tsval = sp.f.peer_tsval;
    const sp_seg *g = sp_expect(JK_SYN | JK_ACK, SP_ANY, 1, 0);
    sp.f.iss = g->s.seq;
    sp.f.syn_wnd = g->s.wnd;
    ((sp_seg *)g)->seq = 0;
    if (g->s.opt.has_ts) {
        sp.f.ts_recent = g->s.opt.tsval;
        sp.f.ts_seen = true;
        cr_assert(hs->ts, "SYN-ACK carries timestamps the SYN did not offer (RFC 7323 §3.2): %s",
                  sp_str(g));
        cr_assert_eq(g->s.opt.tsecr, peer_tsval,
                     "SYN-ACK TSecr %u does not echo the SYN's TSval %u (RFC 7323 §3.2)",
                     g->s.opt.tsecr, peer_tsval);
    }
    negotiate(hs, g);
    return g;
}

jktcp_conn *sp_accept(const sp_hs *hsp)
{
    sp_hs hs = hsp ? *hsp : SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp.f.synced = true;
    sp_send(JK_ACK, 1, 1, SP_WND, NULL, 0, NULL);
    jktcp_conn *c = NULL;
    int r = jktcp_adapter_accept(sp.l, 0, &c);
    cr_assert_eq(r, 0, "jktcp_adapter_accept after the handshake: %d (%s)", r,
                 jktcp_strerror(r));
    sp.c = c;
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.state, JKTCP_ESTABLISHED, "accepted connection in state %s",
                 jktcp_state_name(i.state));
    sp_expect_none();
    return c;
}

sp_hs sp_plain(int mss, uint32_t wnd)
{
    sp_hs h = SP_HS_NONE;
    h.mss = mss;
    h.wnd = wnd;
    return h;
}

void sp_write_pat(jktcp_conn *c, size_t off, size_t n)
{
    while (n) {
        size_t k = n > 32768 ? 32768 : n;
        ssize_t r = jktcp_conn_write(c, sp_pat(off), k, 0);
        cr_assert_eq(r, (ssize_t)k, "jktcp_conn_write(%zu): %zd (%s)", k, r,
                     jktcp_strerror((int)r));
        off += k;
        n -= k;
    }
}

void sp_peer_data(uint32_t seq, uint32_t ack, size_t len)
{
    sp_send(JK_ACK | JK_PSH, seq, ack, SP_WND, sp_pat(seq - 1), len, NULL);
}

void sp_peer_ack(uint32_t seq, uint32_t ack)
{
    sp_send(JK_ACK, seq, ack, SP_WND, NULL, 0, NULL);
}

void sp_peer_ackw(uint32_t seq, uint32_t ack, long wnd)
{
    sp_send(JK_ACK, seq, ack, wnd, NULL, 0, NULL);
}

void sp_read_expect(jktcp_conn *c, size_t off, size_t n)
{
    static uint8_t buf[1 << 20];
    cr_assert(n <= sizeof buf);
    ssize_t r = sp_read_now(c, buf, n);
    cr_assert_eq(r, (ssize_t)n, "read returned %zd, expected %zu bytes", r, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(buf[i], sp_pat(off + i)[0],
                     "received byte %zu (stream offset %zu) is 0x%02x, expected 0x%02x", i,
                     off + i, buf[i], sp_pat(off + i)[0]);
    uint8_t x;
    r = jktcp_conn_read(c, &x, 1, 0);
    cr_assert_eq(r, -EAGAIN, "after %zu bytes read gave %zd, expected -EAGAIN", n, r);
}
