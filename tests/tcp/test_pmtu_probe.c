/* SPDX-License-Identifier: MIT */
/*
 * Suite `pmtu_probe`: packetization-layer path MTU discovery (RFC 4821, in
 * the manner of RFC 8899 and Linux's tcp_mtu_probing), for paths that drop
 * what is too big and never say so (JKTCP_OPT_PMTU_PROBE). The peer here
 * plays the path too: frames above its limit vanish, the rest arrive and
 * are acknowledged with SACK, one round trip per round.
 *  - mode 2 starts at 1200 / 1280 bytes and probes up to the path's size;
 *  - mode 1 starts at the MTU and, after two timeouts in a row (a black
 *    hole), falls to the base and probes up;
 *  - mode 0 (the default) does neither: through a black hole the
 *    connection times out.
 * A lost probe costs no window cut (it is not congestion).
 */
#include "scripted.h"

#include "icmp.h"

#include <string.h>

#define T(name) Test(pmtu_probe, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 120)
#define T6(name) Test(pmtu_probe, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 120)

#define MAXR 64

/* The peer's receive side: what arrived (relative sequence numbers). */
struct model {
    uint32_t nxt;                    /* next in-order byte */
    struct { uint32_t l, r; } r[MAXR]; /* islands above it, unsorted */
    int n;
    uint32_t limit;                  /* the path drops larger frames */
    uint64_t dropped, frames;
};

static void add(struct model *m, uint32_t l, uint32_t r)
{
    if (seq_le(r, m->nxt))
        return;
    if (seq_lt(l, m->nxt))
        l = m->nxt;
    for (int i = 0; i < m->n; i++) /* merge */
        if (seq_le(m->r[i].l, r) && seq_le(l, m->r[i].r)) {
            l = seq_min(l, m->r[i].l);
            r = seq_max(r, m->r[i].r);
            m->r[i--] = m->r[--m->n];
        }
    if (l == m->nxt) {
        m->nxt = r;
        for (int i = 0; i < m->n; i++) /* islands now touching */
            if (seq_le(m->r[i].l, m->nxt)) {
                m->nxt = seq_max(m->nxt, m->r[i].r);
                m->r[i] = m->r[--m->n];
                i = -1;
            }
    } else if (m->n < MAXR) {
        m->r[m->n++].l = l, m->r[m->n - 1].r = r;
    }
}

/* One round trip: take what was sent, drop what the path cannot carry,
 * answer with one ACK (and SACK blocks). Returns frames seen. */
static int round_trip(struct model *m)
{
    int seen = 0;
    const sp_seg *g;
    while ((g = sp_next()) != NULL) {
        seen++;
        m->frames++;
        if (g->flen > m->limit) {
            m->dropped++;
            continue;
        }
        if (g->s.len)
            add(m, g->seq, g->seq + g->s.len);
    }
    if (!seen)
        return 0;
    sp_opts o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < m->n && o.nsack < 3; i++) {
        o.sack[o.nsack].left = m->r[i].l;
        o.sack[o.nsack++].right = m->r[i].r;
    }
    sp_send(JK_ACK, 1, m->nxt, SP_WND, NULL, 0, &o);
    return seen;
}

static uint32_t max_payload(uint32_t mtu)
{
    return mtu - (sp.family == 4 ? 20 : 40) - 20 - 12;
}

/* Move n bytes through the model path, rounds 1 ms apart (timeouts fire
 * when nothing gets through). Stops when all arrived. */
static void move(struct model *m, jktcp_conn *c, uint32_t n)
{
    sp_write_pat(c, 0, n);
    for (int k = 0; k < 20000 && m->nxt != 1 + n; k++) {
        round_trip(m);
        sp_advance_ms(1);
    }
    cr_assert_eq(m->nxt, 1 + n, "%u of %u bytes arrived (state %s)", m->nxt - 1, n,
                 jktcp_state_name(sp_state_of(c)));
}

static jktcp_conn *start(long mode, uint32_t limit, struct model *m)
{
    sp_option(JKTCP_OPT_PMTU_PROBE, mode);
    memset(m, 0, sizeof *m);
    m->nxt = 1;
    m->limit = limit;
    sp_hs hs = SP_HS_DEFAULT;
    hs.wnd = 65535;
    hs.wscale = 7;
    return sp_connect(&hs);
}

/* Mode 2 on a clean 1500-byte path: from the base up to within 16 bytes
 * of 1500, every probe acknowledged. */
static void search_up_clean(uint32_t base)
{
    struct model m;
    jktcp_conn *c = start(2, 1500, &m);
    cr_assert_eq(sp_info(c).pmtu, base, "starting path MTU");
    cr_assert_eq(sp_info(c).mss, max_payload(base));
    move(&m, c, 1500000); /* a probe per round trip: enough rounds to finish */
    jktcp_info i = sp_info(c);
    jktcp_stats st = sp_stats();
    cr_assert(i.pmtu > 1500 - 16 && i.pmtu <= 1500, "path MTU %u after the search", i.pmtu);
    cr_assert_eq(i.mss, max_payload(i.pmtu));
    cr_assert_geq(st.pmtu_probes, 3);
    cr_assert_eq(st.pmtu_probe_fails, 0);
    cr_assert_eq(m.dropped, 0);
}

T(mode2_searches_up_clean_path_v4) { search_up_clean(1200); }
T6(mode2_searches_up_clean_path_v6) { search_up_clean(1280); }

/* Mode 2 on a path that silently drops frames above 1400: probes above it
 * are lost, found by SACK, and cost no window cut; the search ends just
 * below 1400 and every byte arrives. */
T(mode2_finds_smaller_path)
{
    struct model m;
    jktcp_conn *c = start(2, 1400, &m);
    move(&m, c, 1500000);
    jktcp_info i = sp_info(c);
    jktcp_stats st = sp_stats();
    cr_assert(i.pmtu > 1400 - 16 && i.pmtu <= 1400, "path MTU %u, path carries 1400", i.pmtu);
    cr_assert_geq(st.pmtu_probe_fails, 1, "no probe was lost on a 1400-byte path");
    cr_assert_eq(i.timeouts, 0, "a lost probe took a timeout");
    cr_assert_eq(i.ssthresh, UINT32_MAX, "a lost probe cut the window (ssthresh %u)", i.ssthresh);
}

/* Mode 1: full-sized segments into a black hole; two timeouts in a row,
 * then the base size, then up again to just below the hole's limit. */
T(mode1_black_hole_falls_back_and_searches)
{
    struct model m;
    jktcp_conn *c = start(1, 1400, &m);
    cr_assert_eq(sp_info(c).pmtu, 1500);
    move(&m, c, 1500000);
    jktcp_info i = sp_info(c);
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.pmtu_blackholes, 1);
    cr_assert_geq(i.timeouts, 2);
    cr_assert(i.pmtu > 1400 - 16 && i.pmtu <= 1400, "path MTU %u after the black hole", i.pmtu);
}

/* Mode 0, the default: the same black hole swallows every full segment
 * until the connection gives up. */
T(mode0_black_hole_times_out)
{
    sp_option(JKTCP_OPT_MAX_RETRIES, 4);
    struct model m;
    jktcp_conn *c = start(0, 1400, &m);
    sp_write_pat(c, 0, 20000);
    for (int k = 0; k < 200000 && sp_state_of(c) != JKTCP_CLOSED; k++) {
        round_trip(&m);
        sp_advance_ms(1);
    }
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    cr_assert_eq(jktcp_conn_error(c), -ETIMEDOUT);
    cr_assert_eq(m.nxt, 1, "data got through a black hole without probing");
    cr_assert_eq(sp_stats().pmtu_probes, 0);
}

/* ICMP keeps working with probing on, and caps the search. */
T(too_big_caps_the_search)
{
    struct model m;
    jktcp_conn *c = start(2, 1500, &m);
    sp_write_pat(c, 0, 100000);
    round_trip(&m);
    sp_advance_ms(1);
    /* a router says 1300: the search stays at or below it */
    uint8_t f[1400];
    struct jk_addr rt;
    cr_assert_eq(jk_addr_parse("198.18.0.254", &rt), 0);
    sp_write_pat(c, 100000, 1); /* something in flight to quote */
    const sp_seg *g = sp_next();
    cr_assert(g && g->s.len, "nothing in flight to report on");
    size_t n = jk_build_icmp(f, sizeof f, &rt, &sp.local, 3, 4, 1300, g->frame, g->flen);
    sp_push_raw(f, n);
    m.limit = 1300;
    for (int k = 0; k < 5000 && m.nxt != 1 + 100001; k++) {
        round_trip(&m);
        sp_advance_ms(1);
    }
    cr_assert_leq(sp_info(c).pmtu, 1300);
}
