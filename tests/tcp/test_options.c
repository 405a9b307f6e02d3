/* SPDX-License-Identifier: MIT */
/*
 * Options and configuration: window scale above 14, SACK and timestamps
 * off, JKTCP_OPT_MSS / MTU, the RTO options (RFC 6298 §2), and (suite
 * `mss`) the peer's MSS option: every small value, Linux's rule.
 *
 * Suites `scripted` (T, T6), `mss` (M, M6): the macros are in tcp_test.h.
 * Relative sequence numbers as in scripted.h: the SYN is seq 0, the first
 * data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

/* ====================================================================== */
/* Options and configuration                                              */
/* ====================================================================== */

/* RFC 7323 §2.3: a shift above 14 is used as 14. */
T(opt_peer_wscale_above_14_clamped)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 15;
    jktcp_conn *c = sp_connect(&hs);
    cr_assert_eq(sp_info(c).snd_wscale, 14, "snd_wscale %u for an offered 15",
                 sp_info(c).snd_wscale);
}

T(opt_sack_off)
{
    sp_option(JKTCP_OPT_SACK, 0);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c), -EINPROGRESS);
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    cr_assert(!g->s.opt.sack_ok, "SACK-permitted with JKTCP_OPT_SACK 0: %s", sp_str(g));
    cr_assert(g->s.opt.has_ts && g->s.opt.has_wscale);
    jktcp_conn_abort(c);
    /* Passive: not offered back even though the peer offers it. */
    sp_hs hs = SP_HS_DEFAULT;
    g = sp_accept_syn(&hs, 40000);
    cr_assert(!g->s.opt.sack_ok, "SYN-ACK with SACK-permitted and JKTCP_OPT_SACK 0: %s",
              sp_str(g));
}

T(opt_timestamps_off)
{
    sp_option(JKTCP_OPT_TIMESTAMPS, 0);
    sp_hs hs = SP_HS_DEFAULT;
    const sp_seg *g = sp_accept_syn(&hs, 40000);
    cr_assert(!g->s.opt.has_ts, "SYN-ACK with TS and JKTCP_OPT_TIMESTAMPS 0: %s", sp_str(g));
    sp.f.synced = true;
    sp_peer_ack(1, 1);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
    cr_assert_eq(sp_info(c).timestamps, 0);
    sp_write_pat(c, 0, 2000);
    sp_expect(JK_ACK, 1, 1, 1460); /* full MSS: no option bytes */
}

/* jktcp_adapter_set_mss caps the MSS advertised and used. */
T(opt_set_mss_caps_syn_and_segments)
{
    cr_assert_eq(jktcp_adapter_set_mss(sp.a, 1000), 0);
    sp_hs hs = sp_plain(1460, 65535);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c), -EINPROGRESS);
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    cr_assert_eq(g->s.opt.mss, 1000, "%s", sp_str(g));
    jktcp_conn_abort(c);
    c = sp_connect(&hs);
    sp_write_pat(c, 0, 1500);
    sp_expect(JK_ACK, 1, 1, 1000);
    sp_expect(JK_ACK, 1001, 1, 500);
}

/* jktcp_adapter_set_mtu: MSS = MTU - 40 (IPv4). */
T(opt_set_mtu_576)
{
    cr_assert_eq(jktcp_adapter_set_mtu(sp.a, 576), 0);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c), -EINPROGRESS);
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    cr_assert_eq(g->s.opt.mss, 536, "%s", sp_str(g));
    cr_assert(g->flen <= 576);
}

/* JKTCP_OPT_RTO_INIT_MS sets the SYN's first retransmission time. */
T(opt_rto_init)
{
    sp_option(JKTCP_OPT_RTO_INIT_MS, 300);
    syn_sent();
    uint32_t e;
    const sp_seg *g = sp_wait(2000, &e);
    cr_assert(g && (g->s.flags & JK_SYN), "no SYN retransmission");
    cr_assert(e >= 295 && e <= 305, "SYN retransmitted after %u ms with RTO_INIT 300", e);
}

/* JKTCP_OPT_RTO_MAX_MS caps the backoff (RFC 6298 §2.5). */
T(opt_rto_max_caps_backoff)
{
    sp_option(JKTCP_OPT_RTO_MAX_MS, 700);
    sp_option(JKTCP_OPT_MAX_RETRIES, 20);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 100);
    sp_expect(JK_ACK, 1, 1, 100);
    uint32_t t[6];
    for (int k = 0; k < 6; k++) {
        cr_assert(sp_wait(5000, &t[k]), "retransmission %d missing", k);
        cr_assert(t[k] <= 702, "interval %u ms above RTO_MAX 700", t[k]);
    }
    cr_assert(t[5] >= 698, "backoff did not reach the cap: last interval %u ms", t[5]);
}

/* JKTCP_OPT_RTO_MIN_MS is the floor of the computed RTO (RFC 6298 §2.4). */
T(opt_rto_min)
{
    sp_option(JKTCP_OPT_RTO_MIN_MS, 500);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    uint32_t nxt = 1;
    rtt_round(c, &nxt, 10);
    cr_assert_eq(sp_info(c).rto_us, 500000, "rto %u us with RTO_MIN 500 and RTT 10 ms",
                 sp_info(c).rto_us);
    sp_write_pat(c, nxt - 1, 100);
    sp_expect(JK_ACK, nxt, 1, 100);
    uint32_t e;
    cr_assert(sp_wait(2000, &e), "no retransmission");
    cr_assert(e >= 498 && e <= 502, "retransmitted after %u ms", e);
}

/* ====================================================================== */
/* The peer's MSS option (suite mss)                                      */
/* ====================================================================== */

/*
 * Suite `mss`: the peer's MSS option sizes every segment we send, and a
 * tiny or hostile value cannot blow it up (issue: `min(mss, ours) - 12`
 * once underflowed to a 64 KiB segment and a 655 KB initial window).
 * Linux's rule, which we follow: an MSS option of 0 means none (536 for
 * IPv4, 1220 for IPv6), any other value is raised to 48 (tcp_min_snd_mss)
 * and the timestamp option's 12 bytes come off after that. Every MSS from
 * 0 to 100, with timestamps on and off, over IPv4 and IPv6: the segment
 * size in jktcp_info, the initial window (ten segments, RFC 6928), and the
 * first flight on the wire.
 */

static uint32_t expected_smss(int mss, bool ts)
{
    uint32_t m = mss == 0 ? (sp.family == 4 ? 536u : 1220u)
                          : (uint32_t)(mss < JK_MIN_SND_MSS ? JK_MIN_SND_MSS : mss);
    return m - (ts ? 12 : 0);
}

/* One connection whose peer announces mss: the first flight of a 20,000
 * byte write is ten segments of the expected size, nothing larger. */
static void one(int mss, bool ts)
{
    sp_hs hs = SP_HS_DEFAULT;
    hs.mss = mss;
    hs.ts = ts;
    hs.wnd = 65535;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t want = expected_smss(mss, ts);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.mss, want, "peer MSS %d ts %d: send MSS %u, want %u", mss, ts, i.mss, want);
    cr_assert_eq(i.cwnd, 10 * want, "peer MSS %d ts %d: initial window %u, want %u", mss, ts,
                 i.cwnd, 10 * want);
    sp_write_pat(c, 0, 20000);
    sp_brief b[64];
    size_t n = sp_drain(b, 64);
    uint32_t total = 0;
    for (size_t k = 0; k < n; k++) {
        cr_assert_leq(b[k].len, want, "peer MSS %d ts %d: a %u-byte segment", mss, ts, b[k].len);
        total += b[k].len;
    }
    cr_assert_eq(total, 10 * want, "peer MSS %d ts %d: first flight %u bytes in %zu segments, "
                 "want ten of %u", mss, ts, total, n, want);
    cr_assert_eq(jktcp_conn_abort(c), 0);
    sp.c = NULL;
    sp_drain(b, 64);
}

static void every_mss(void)
{
    for (int ts = 0; ts <= 1; ts++)
        for (int mss = 0; mss <= 100; mss++)
            one(mss, ts);
}

M(every_small_mss_v4) { every_mss(); }
M6(every_small_mss_v6) { every_mss(); }

/* A value above ours never raises our segment size above our own MSS
 * (1460 at MTU 1500), with or without timestamps. */
M(large_mss_capped_by_ours)
{
    for (int ts = 0; ts <= 1; ts++) {
        sp_hs hs = SP_HS_DEFAULT;
        hs.mss = 65535;
        hs.ts = ts;
        jktcp_conn *c = sp_connect(&hs);
        cr_assert_eq(sp_info(c).mss, 1460u - (ts ? 12 : 0));
        cr_assert_eq(jktcp_conn_abort(c), 0);
        sp.c = NULL;
        sp_brief b[8];
        sp_drain(b, 8);
    }
}
