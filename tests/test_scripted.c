/* SPDX-License-Identifier: MIT */
/*
 * Packet-by-packet tests of the TCP engine against a scripted peer
 * (see scripted.h). Suite `scripted`.
 *
 * Relative sequence numbers: the adapter's SYN is seq 0 and its first data
 * byte seq 1; the peer's likewise. Each test cites the RFC text it checks.
 */
#include "scripted.h"

#include <string.h>

#define T(name) Test(scripted, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 60)
#define T6(name) Test(scripted, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 60)

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */
/* ---------------------------------------------------------------------- */

/* Adapter -> peer transfer of n bytes starting at relative seq *nxt; the
 * peer ACKs every segment as it arrives (slow start grows cwnd). */
static void transfer_acked(jktcp_conn *c, uint32_t *nxt, size_t n)
{
    sp_write_pat(c, *nxt - 1, n);
    uint32_t end = *nxt + (uint32_t)n, acked = *nxt;
    while (seq_lt(acked, end)) {
        const sp_seg *g = sp_next();
        cr_assert(g, "transfer stalled at %u of %u", acked, end);
        cr_assert(g->s.len > 0 && g->seq == acked, "expected data at seq %u, got %s", acked,
                  sp_str(g));
        sp_assert_payload(g, g->seq - 1);
        acked = g->seq + g->s.len;
        sp_peer_ack(1, acked);
    }
    *nxt = end;
    sp_expect_none();
}

/* SACK block i of an adapter segment, relative to the peer's ISS. */
static void sack_rel(const sp_seg *g, unsigned i, uint32_t *l, uint32_t *r)
{
    *l = g->s.opt.sack[i].left - sp.f.irs;
    *r = g->s.opt.sack[i].right - sp.f.irs;
}

static void assert_sack(const sp_seg *g, unsigned n, const uint32_t (*want)[2])
{
    cr_assert_eq(g->s.opt.nsack, n, "expected %u SACK blocks: %s", n, sp_str(g));
    for (unsigned i = 0; i < n; i++) {
        uint32_t l, r;
        sack_rel(g, i, &l, &r);
        cr_assert(l == want[i][0] && r == want[i][1],
                  "SACK block %u is %u:%u, expected %u:%u (RFC 2018 §4 order: most recent "
                  "first): %s", i, l, r, want[i][0], want[i][1], sp_str(g));
    }
}

/* Active open up to the SYN: returns the connection in SYN_SENT with the
 * flow set up (iss known, irs = sp_irs_next). */
static jktcp_conn *syn_sent(void)
{
    jktcp_conn *c = NULL;
    int r = jktcp_conn_connect(sp.a, 80, 0, &c);
    cr_assert_eq(r, -EINPROGRESS, "connect: %d", r);
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.rport = 80;
    sp.f.wnd = 65535;
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    sp.f.lport = g->s.sport;
    sp.f.iss = g->s.seq;
    sp.f.syn_wnd = g->s.wnd;
    sp.f.irs = sp_irs_next;
    if (g->s.opt.has_ts) {
        sp.f.ts_recent = g->s.opt.tsval;
        sp.f.ts_seen = true;
    }
    sp.c = c;
    return c;
}

static sp_opts full_syn_opts(void)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.mss = 1460;
    o.ws = true;
    o.wscale = 7;
    o.sack_ok = true;
    o.ts = true;
    return o;
}

static sp_opts ts_opts(uint32_t tsval)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.ts_set = true;
    o.tsval = tsval;
    o.tsecr = sp.f.ts_recent;
    return o;
}

/* ====================================================================== */
/* Handshake                                                               */
/* ====================================================================== */

/* RFC 9293 §3.7.1 / RFC 7323 §2.2, §3.2 / RFC 2018 §2: the SYN offers
 * MSS (MTU 1500 - 40), window scale, SACK-permitted and timestamps. */
T(hs_active_syn_options)
{
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c), -EINPROGRESS);
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    const struct jk_tcp_opts *o = &g->s.opt;
    cr_assert_eq(g->s.dport, 80);
    cr_assert(g->s.sport >= 1024, "source port %u is not ephemeral", g->s.sport);
    cr_assert(o->has_mss && o->mss == 1460, "SYN MSS: %s", sp_str(g));
    cr_assert(o->sack_ok, "SYN lacks SACK-permitted: %s", sp_str(g));
    cr_assert(o->has_ts, "SYN lacks timestamps: %s", sp_str(g));
    cr_assert_eq(o->tsecr, 0, "TSecr must be 0 without ACK (RFC 7323 §3.2): %s", sp_str(g));
    cr_assert(o->has_wscale, "SYN lacks window scale: %s", sp_str(g));
    /* 4 MiB receive buffer: 65535 << ws must reach about 4 MiB, ws <= 14. */
    cr_assert(o->wscale >= 6 && o->wscale <= 14, "wscale %u for a 4 MiB buffer", o->wscale);
    cr_assert(g->s.wnd > 0, "SYN window 0: %s", sp_str(g));
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.state, JKTCP_SYN_SENT, "state %s", jktcp_state_name(i.state));
    cr_assert_eq(i.remote_port, 80);
    cr_assert_eq(i.local_port, g->s.sport);
}

/* Options the peer also sent are in use afterwards. */
T(hs_active_negotiates_all_options)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.sack, 1);
    cr_assert_eq(i.timestamps, 1);
    cr_assert_eq(i.snd_wscale, 7, "snd_wscale %u", i.snd_wscale);
    cr_assert_eq(i.rcv_wscale, sp.f.our_ws, "rcv_wscale %u, SYN said %u", i.rcv_wscale,
                 sp.f.our_ws);
    /* RFC 7323 §2.2: the window in a SYN-ACK is never scaled. */
    cr_assert_eq(i.snd_wnd, 65535, "snd_wnd %u after an unscaled SYN-ACK window 65535",
                 i.snd_wnd);
    cr_assert(i.mss == 1460 || i.mss == 1448, "mss %u", i.mss);
    cr_assert_eq(i.local_port, sp.f.lport);
    cr_assert_eq(i.remote_port, 80);
    cr_assert_eq(sp_stats().conns_active, 1);
}

/* The handshake ACK advertises the scaled receive window (~4 MiB). */
T(hs_active_ack_window_scaled)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 10); /* elicit an ACK */
    const sp_seg *g = sp_expect(JK_ACK, 1, 11, 0);
    cr_assert(g->wnd >= 4u * 1024 * 1024 - 65536 && g->wnd <= 4u * 1024 * 1024,
              "advertised window %u with a 4 MiB buffer: %s", g->wnd, sp_str(g));
    jktcp_info i = sp_info(c);
    uint32_t unit = 1u << sp.f.our_ws;
    cr_assert(i.rcv_wnd + unit > g->wnd && i.rcv_wnd < g->wnd + unit,
              "info rcv_wnd %u vs advertised %u (scale unit %u)", i.rcv_wnd, g->wnd, unit);
}

T6(hs_active_ipv6_mss_1440)
{
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_conn_connect(sp.a, 443, 0, &c), -EINPROGRESS);
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    cr_assert(g->s.opt.has_mss && g->s.opt.mss == 1440, "IPv6 SYN MSS: %s", sp_str(g));
    jktcp_conn_abort(c);
}

T6(hs_active_ipv6_established)
{
    sp_hs hs = SP_HS_DEFAULT;
    hs.port = 443;
    jktcp_conn *c = sp_connect(&hs);
    sp_peer_data(1, 1, 300);
    sp_expect(JK_ACK, 1, 301, 0);
    sp_read_expect(c, 0, 300);
    /* Our MTU caps the segment: 1500 - 40 - 20 = 1440, minus 12 for TS. */
    sp_write_pat(c, 0, 2000);
    const sp_seg *g = sp_expect(JK_ACK, 1, 301, 1428);
    sp_assert_payload(g, 0);
    g = sp_expect(JK_ACK, 1429, 301, 572);
    sp_assert_payload(g, 1428);
}

/* RFC 6298 §2.1 / §5.5: initial RTO 1 s, doubled on each retransmission;
 * the SYN is retransmitted unchanged (RFC 9293 §3.8.1). */
T(hs_syn_retransmit_backoff)
{
    syn_sent();
    uint32_t e;
    const sp_seg *g = sp_wait(5000, &e);
    cr_assert(g, "SYN not retransmitted within 5 s");
    cr_assert(e >= 990 && e <= 1010, "first SYN retransmission after %u ms, expected 1000", e);
    cr_assert(g->s.flags == JK_SYN && g->seq == 0, "retransmission is not the SYN: %s",
              sp_str(g));
    cr_assert(g->s.opt.has_mss, "retransmitted SYN lost its options: %s", sp_str(g));
    g = sp_wait(5000, &e);
    cr_assert(g, "SYN not retransmitted a second time");
    cr_assert(e >= 1980 && e <= 2020, "second SYN retransmission after %u more ms, expected 2000",
              e);
    cr_assert(g->s.flags == JK_SYN && g->seq == 0, "%s", sp_str(g));
    g = sp_wait(9000, &e);
    cr_assert(g, "SYN not retransmitted a third time");
    cr_assert(e >= 3960 && e <= 4040, "third SYN retransmission after %u more ms, expected 4000",
              e);
    cr_assert(sp_stats().retransmits >= 3, "stats.retransmits %llu",
              (unsigned long long)sp_stats().retransmits);
}

/* A connection that was retried but then answered works normally. */
T(hs_syn_retransmitted_then_answered)
{
    jktcp_conn *c = syn_sent();
    uint32_t e;
    cr_assert(sp_wait(2000, &e), "no SYN retransmission");
    sp_opts o = full_syn_opts();
    sp_send(JK_SYN | JK_ACK, 0, 1, 65535, NULL, 0, &o);
    sp_expect(JK_ACK, 1, 1, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
}

/* JKTCP_OPT_MAX_RETRIES bounds SYN retransmissions; then -ETIMEDOUT. */
T(hs_syn_retries_exhausted_etimedout)
{
    sp_option(JKTCP_OPT_MAX_RETRIES, 2);
    jktcp_conn *c = syn_sent();
    unsigned syns = 1;
    for (int t = 0; t < 30000; t++) {
        sp_advance_ms(1);
        const sp_seg *g;
        while ((g = sp_next()) != NULL) {
            cr_assert(g->s.flags & (JK_SYN | JK_RST), "unexpected %s", sp_str(g));
            if (g->s.flags & JK_SYN)
                syns++;
        }
    }
    cr_assert_eq(syns, 3, "%u SYNs sent with MAX_RETRIES 2 (expected the SYN + 2 retries)",
                 syns);
    cr_assert_eq(jktcp_conn_error(c), -ETIMEDOUT, "conn_error %d", jktcp_conn_error(c));
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), -ETIMEDOUT);
}

T(hs_read_before_established_enotconn)
{
    jktcp_conn *c = syn_sent();
    uint8_t b;
    ssize_t r = jktcp_conn_read(c, &b, 1, 0);
    cr_assert(r == -ENOTCONN || r == -EAGAIN, "read in SYN_SENT: %zd", r);
}

/* RFC 9293 §3.7.1: without an MSS option the send MSS is 536 (IPv4);
 * RFC 7323 §2.2 / §3.2, RFC 2018: no wscale/TS/SACK unless both offered. */
T(hs_syn_ack_without_options)
{
    sp_hs hs = SP_HS_NONE;
    jktcp_conn *c = sp_connect(&hs);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.snd_wscale, 0);
    cr_assert_eq(i.rcv_wscale, 0);
    cr_assert_eq(i.sack, 0);
    cr_assert_eq(i.timestamps, 0);
    cr_assert_eq(i.mss, 536, "send MSS %u without an MSS option", i.mss);
    cr_assert_eq(i.snd_wnd, 65535);
    sp_write_pat(c, 0, 1500);
    const sp_seg *g = sp_expect(JK_ACK, 1, 1, 536);
    /* No scaling: the window field is the real window, capped at 65535. */
    cr_assert_eq(g->s.wnd, 65535, "unscaled window with a 4 MiB buffer: %s", sp_str(g));
    sp_assert_payload(g, 0);
    g = sp_expect(JK_ACK, 537, 1, 536);
    sp_assert_payload(g, 536);
    g = sp_expect(JK_ACK, 1073, 1, 428);
    sp_assert_payload(g, 1072);
    sp_expect_none();
}

/* The peer's MSS caps our segments. */
T(hs_syn_ack_mss_applied)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    cr_assert_eq(sp_info(c).mss, 1000);
    sp_write_pat(c, 0, 3000);
    for (uint32_t k = 0; k < 3; k++) {
        const sp_seg *g = sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
        sp_assert_payload(g, 1000 * k);
    }
    sp_expect_none();
}

/* RFC 6691 / RFC 7323: with timestamps (12 option bytes) a full segment
 * carries MSS - 12 bytes. */
T(hs_timestamps_reduce_payload)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_write_pat(c, 0, 3000);
    const sp_seg *g = sp_expect(JK_ACK, 1, 1, 1448);
    cr_assert_eq(g->opt_len, 12, "options on a data segment: %s", sp_str(g));
    sp_expect(JK_ACK, 1449, 1, 1448);
    sp_expect(JK_ACK, 2897, 1, 104);
}

/* RFC 9293 §3.10.7.3: RST with an acceptable ACK in SYN-SENT -> reset
 * (connection refused), CLOSED, nothing sent. */
T(hs_syn_sent_rst_refused)
{
    jktcp_conn *c = syn_sent();
    sp_send(JK_RST | JK_ACK, 0, 1, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(jktcp_conn_error(c), -ECONNREFUSED, "conn_error %d", jktcp_conn_error(c));
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    /* No SYN retransmission afterwards. */
    sp_advance_ms(3000);
    sp_expect_none();
}

/* RFC 9293 §3.10.7.3: RST whose ACK is unacceptable is dropped. */
T(hs_syn_sent_rst_bad_ack_ignored)
{
    jktcp_conn *c = syn_sent();
    sp_send(JK_RST | JK_ACK, 0, 2, 0, NULL, 0, NULL); /* ACK > SND.NXT */
    sp_expect_none();
    sp_send(JK_RST | JK_ACK, 0, 0, 0, NULL, 0, NULL); /* ACK =< ISS */
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_SYN_SENT);
    cr_assert_eq(jktcp_conn_error(c), 0);
    uint32_t e;
    const sp_seg *g = sp_wait(1500, &e);
    cr_assert(g && (g->s.flags & JK_SYN), "SYN not retransmitted after an ignored RST");
}

/* RFC 9293 §3.10.7.3: RST without ACK in SYN-SENT is dropped. */
T(hs_syn_sent_rst_without_ack_ignored)
{
    jktcp_conn *c = syn_sent();
    sp_send(JK_RST, 0, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_SYN_SENT);
    cr_assert_eq(jktcp_conn_error(c), 0);
}

/* RFC 9293 §3.10.7.3: SEG.ACK > SND.NXT -> <SEQ=SEG.ACK><CTL=RST>, the
 * segment is discarded and the connection stays in SYN-SENT. */
T(hs_syn_ack_wrong_ack_gets_rst)
{
    jktcp_conn *c = syn_sent();
    sp_opts o = full_syn_opts();
    sp_send(JK_SYN | JK_ACK, 0, 5, 65535, NULL, 0, &o);
    const sp_seg *g = sp_expect(JK_RST, 5, SP_ANY, 0);
    cr_assert_eq(g->s.flags & (JK_RST | JK_ACK), JK_RST, "RST must not carry ACK: %s", sp_str(g));
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_SYN_SENT, "state %s after a bad SYN-ACK",
                 jktcp_state_name(sp_state_of(c)));
    /* The right SYN-ACK still completes the handshake. */
    sp_send(JK_SYN | JK_ACK, 0, 1, 65535, NULL, 0, &o);
    sp_expect(JK_ACK, 1, 1, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
}

/* RFC 9293 §3.10.7.3: SEG.ACK =< ISS on a plain ACK -> RST seq=SEG.ACK. */
T(hs_syn_sent_old_ack_gets_rst)
{
    jktcp_conn *c = syn_sent();
    sp_send(JK_ACK, 0, 0, 65535, NULL, 0, NULL); /* ack = ISS */
    const sp_seg *g = sp_expect(JK_RST, 0, SP_ANY, 0);
    cr_assert_eq(g->s.seq, sp.f.iss);
    cr_assert_eq(sp_state_of(c), JKTCP_SYN_SENT);
}

/* RFC 9293 §3.10.7.3 fifth: acceptable ACK without SYN or RST -> drop. */
T(hs_syn_sent_ack_without_syn_dropped)
{
    jktcp_conn *c = syn_sent();
    sp_send(JK_ACK, 0, 1, 65535, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_SYN_SENT);
}

/* RFC 9293 §3.5 figure 7 / §3.10.7.3: simultaneous open. */
T(hs_simultaneous_open)
{
    jktcp_conn *c = syn_sent();
    sp_opts o = full_syn_opts();
    sp_send(JK_SYN, 0, 0, 65535, NULL, 0, &o);
    const sp_seg *g = sp_expect(JK_SYN | JK_ACK, 0, 1, 0);
    cr_assert(g->s.opt.has_mss, "SYN-ACK of a simultaneous open without MSS: %s", sp_str(g));
    cr_assert_eq(sp_state_of(c), JKTCP_SYN_RCVD, "state %s", jktcp_state_name(sp_state_of(c)));
    sp_hs hs = SP_HS_DEFAULT;
    /* Negotiated from the adapter's SYN(-ACK) and our SYN. */
    sp.f.peer_ws = 7;
    sp.f.our_ws = g->s.opt.has_wscale ? g->s.opt.wscale : 0;
    sp.f.ts = g->s.opt.has_ts;
    sp.f.sack = g->s.opt.sack_ok;
    sp.f.peer_mss = 1460;
    sp.f.wnd = hs.wnd;
    sp.f.synced = true;
    /* The peer's SYN-ACK answering the adapter's SYN. */
    sp_send(JK_SYN | JK_ACK, 0, 1, 65535, NULL, 0, &o);
    while ((g = sp_next()) != NULL)
        cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1 && g->s.len == 0,
                  "simultaneous open: unexpected %s", sp_str(g));
    sp_peer_ack(1, 1);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED, "state %s",
                 jktcp_state_name(sp_state_of(c)));
    sp_peer_data(1, 1, 10);
    sp_expect(JK_ACK, 1, 11, 0);
    sp_read_expect(c, 0, 10);
}

/* Passive open: the SYN-ACK answers every option offered (RFC 7323 §2.2,
 * §3.2: TSecr echoes the SYN's TSval; RFC 2018 §2). */
T(hs_passive_syn_ack_options)
{
    sp_hs hs = SP_HS_DEFAULT;
    const sp_seg *g = sp_accept_syn(&hs, 40000);
    const struct jk_tcp_opts *o = &g->s.opt;
    cr_assert(o->has_mss && o->mss == 1460, "SYN-ACK MSS: %s", sp_str(g));
    cr_assert(o->sack_ok, "SYN-ACK lacks SACK-permitted: %s", sp_str(g));
    cr_assert(o->has_ts, "SYN-ACK lacks timestamps: %s", sp_str(g));
    cr_assert(o->has_wscale && o->wscale >= 6 && o->wscale <= 14, "SYN-ACK wscale: %s",
              sp_str(g));
    cr_assert(g->s.wnd > 0, "%s", sp_str(g));
    sp.f.synced = true;
    sp_peer_ack(1, 1);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.state, JKTCP_ESTABLISHED);
    cr_assert_eq(i.snd_wscale, 7);
    cr_assert_eq(i.rcv_wscale, o->wscale);
    cr_assert_eq(i.sack, 1);
    cr_assert_eq(i.timestamps, 1);
    cr_assert_eq(i.local_port, 80);
    cr_assert_eq(i.remote_port, 40000);
    /* Scaled window from the final ACK: 65535 >> 7 << 7. */
    cr_assert_eq(i.snd_wnd, 65535u >> 7 << 7, "snd_wnd %u", i.snd_wnd);
}

/* RFC 7323 §2.2 ("MAY send a Window Scale option in a <SYN,ACK> segment
 * only if it received one"), §3.2 (same for TSopt), RFC 2018 §2; RFC 9293
 * §3.7.1: MSS 536 without the option. */
T(hs_passive_syn_without_options)
{
    sp_hs hs = SP_HS_NONE;
    const sp_seg *g = sp_accept_syn(&hs, 40000);
    cr_assert(!g->s.opt.has_wscale, "SYN-ACK offers wscale the SYN did not: %s", sp_str(g));
    cr_assert(!g->s.opt.has_ts, "SYN-ACK has timestamps the SYN did not: %s", sp_str(g));
    cr_assert(!g->s.opt.sack_ok, "SYN-ACK offers SACK the SYN did not: %s", sp_str(g));
    cr_assert(g->s.wnd == 65535, "unscaled SYN-ACK window with a 4 MiB buffer: %s", sp_str(g));
    sp.f.synced = true;
    sp_peer_ack(1, 1);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.sack, 0);
    cr_assert_eq(i.timestamps, 0);
    cr_assert_eq(i.snd_wscale, 0);
    cr_assert_eq(i.rcv_wscale, 0);
    cr_assert_eq(i.mss, 536);
    sp_write_pat(c, 0, 600);
    sp_expect(JK_ACK, 1, 1, 536);
    sp_expect(JK_ACK, 537, 1, 64);
}

T(hs_passive_accept_waits_for_ack)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), -EAGAIN,
                 "accept returned a half-open connection");
    sp.f.synced = true;
    sp_peer_ack(1, 1);
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), -EAGAIN);
}

/* The final ACK of the handshake may carry data (RFC 9293 §3.10.7.4). */
T(hs_passive_data_on_final_ack)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp.f.synced = true;
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
    sp_read_expect(c, 0, 100);
}

/* RFC 6298 §2.1: the SYN-ACK is retransmitted after the initial RTO. */
T(hs_passive_syn_ack_retransmitted)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    uint32_t e;
    const sp_seg *g = sp_wait(3000, &e);
    cr_assert(g, "SYN-ACK not retransmitted");
    cr_assert((g->s.flags & (JK_SYN | JK_ACK)) == (JK_SYN | JK_ACK) && g->seq == 0 && g->ack == 1,
              "retransmission is not the SYN-ACK: %s", sp_str(g));
    cr_assert(e >= 990 && e <= 1010, "SYN-ACK retransmitted after %u ms, expected 1000", e);
    sp.f.synced = true;
    sp_peer_ack(1, 1);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
}

/* jktcp.h: backlog bounds the half-open queue. */
T(hs_passive_backlog_limits_half_open)
{
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, 2, &sp.l), 0);
    sp_hs hs = SP_HS_NONE;
    uint32_t iss[2];
    for (int k = 0; k < 2; k++) {
        sp_accept_syn(&hs, (uint16_t)(40001 + k));
        iss[k] = sp.f.iss;
    }
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.lport = 80;
    sp.f.rport = 40003;
    sp.f.irs = sp_irs_next;
    sp.f.wnd = 65535;
    sp_send(JK_SYN, 0, 0, 65535, NULL, 0, NULL);
    /* jktcp.h: "SYNs beyond it are answered with RST" (RFC 9293 §3.10.7.2
     * form for a SYN: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>). */
    const sp_seg *g = sp_expect(JK_RST | JK_ACK, 0, 1, 0);
    /* Complete the first two and accept them. */
    for (int k = 0; k < 2; k++) {
        sp.f.rport = (uint16_t)(40001 + k);
        sp.f.iss = iss[k];
        sp_peer_ack(1, 1);
        sp_expect_none();
    }
    jktcp_conn *c1 = NULL, *c2 = NULL, *c3 = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c1), 0);
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c2), 0);
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c3), -EAGAIN);
    cr_assert_neq(c1, c2);
    uint16_t p1 = sp_info(c1).remote_port, p2 = sp_info(c2).remote_port;
    cr_assert(p1 != p2 && (p1 == 40001 || p1 == 40002) && (p2 == 40001 || p2 == 40002),
              "accepted ports %u %u", p1, p2);
    /* Room again: a new SYN is answered. */
    g = sp_accept_syn(&hs, 40004);
    cr_assert(g);
}

T(hs_listen_twice_eaddrinuse)
{
    jktcp_conn_listener *l1 = NULL, *l2 = NULL;
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, 0, &l1), 0);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, 0, &l2), -EADDRINUSE);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 81, 0, &l2), 0);
}

/* jktcp.h: closing a listener resets connections not yet accepted. */
T(hs_listener_close_resets_unaccepted)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp.f.synced = true;
    sp_peer_ack(1, 1);
    sp_expect_none();
    jktcp_adapter_unlisten(sp.l);
    sp.l = NULL;
    const sp_seg *g = sp_expect_any();
    cr_assert((g->s.flags & JK_RST) && g->seq == 1, "expected RST seq 1: %s", sp_str(g));
}

/* RFC 9293 §3.10.7.4 (SYN-RECEIVED, RST): a passive half-open connection
 * returns to LISTEN; nothing is answered. */
T(hs_syn_rcvd_rst_removes_half_open)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), -EAGAIN);
    /* The half-open connection is gone: its ACK is answered with RST
     * <SEQ=SEG.ACK> by the listener (RFC 9293 §3.10.7.2). */
    sp_send(JK_ACK, 1, 1, 65535, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST, 1, SP_ANY, 0);
    cr_assert_eq(g->s.flags & JK_ACK, 0, "%s", sp_str(g));
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), -EAGAIN);
}

/* RFC 9293 §3.10.7.4 SYN-RECEIVED, fifth: an unacceptable ACK gets
 * <SEQ=SEG.ACK><CTL=RST>; the half-open connection survives. */
T(hs_syn_rcvd_bad_ack_gets_rst)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp.f.synced = true;
    sp_send(JK_ACK, 1, 100, SP_WND, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST, 100, SP_ANY, 0);
    (void)g;
    sp_peer_ack(1, 1);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0,
                 "the half-open connection did not survive a bad ACK");
}

T6(hs_passive_ipv6)
{
    jktcp_conn *c = sp_accept(NULL);
    cr_assert(sp.f.syn_wnd > 0);
    sp_peer_data(1, 1, 50);
    sp_expect(JK_ACK, 1, 51, 0);
    sp_read_expect(c, 0, 50);
    sp_write_pat(c, 0, 10);
    const sp_seg *g = sp_expect(JK_ACK, 1, 51, 10);
    sp_assert_payload(g, 0);
}

/* ---- segments for no connection (RFC 9293 §3.10.7.1 / §3.5.2) -------- */

/* SYN to a closed port: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. */
T(rst_syn_to_closed_port)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_SYN, 1000, 0, 65535, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST | JK_ACK, 0, 1001, 0);
    (void)g;
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_no_conn, 1);
    cr_assert_eq(st.rst_sent, 1);
}

/* ACK set: <SEQ=SEG.ACK><CTL=RST>, no ACK bit. */
T(rst_ack_to_closed_port)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_ACK, 500, 77777, 65535, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST, 77777, SP_ANY, 0);
    cr_assert_eq(g->s.flags & JK_ACK, 0, "%s", sp_str(g));
}

/* No ACK, data and FIN: ack = SEG.SEQ + SEG.LEN (data + FIN). */
T(rst_data_fin_without_ack_to_closed_port)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_FIN | JK_PSH, 100, 0, 65535, sp_pat(0), 10, NULL);
    sp_expect(JK_RST | JK_ACK, 0, 111, 0);
}

/* An RST never elicits an RST. */
T(rst_rst_to_closed_port_ignored)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_RST, 100, 0, 0, NULL, 0, NULL);
    sp_send(JK_RST | JK_ACK, 100, 5, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_stats().rst_sent, 0);
}

/* RFC 9293 §3.10.7.2: in LISTEN, an ACK gets <SEQ=SEG.ACK><CTL=RST>, an
 * RST is ignored. */
T(rst_listen_ack_and_rst)
{
    jktcp_conn_listener *l = NULL;
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, 0, &l), 0);
    sp.f.lport = 80;
    sp.f.rport = 40000;
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    sp_send(JK_ACK, 1, 555, 65535, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST, 555, SP_ANY, 0);
    cr_assert_eq(g->s.flags & JK_ACK, 0, "%s", sp_str(g));
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(l, 0, &c), -EAGAIN);
}

/* ====================================================================== */
/* Data: sending                                                           */
/* ====================================================================== */

/* Segments are sized by the peer's MSS and carry ACK with ack=RCV.NXT. */
T(data_send_segmented_by_peer_mss)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 3500);
    for (uint32_t k = 0; k < 3; k++)
        sp_assert_payload(sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000), 1000 * k);
    sp_assert_payload(sp_expect(JK_ACK, 3001, 1, 500), 3000);
    sp_expect_none();
    sp_peer_ack(1, 3501);
    sp_expect_none();
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.bytes_sent, 3500);
    cr_assert_eq(i.bytes_queued, 0);
}

/* RFC 5681 §3.1 (IW <= 4 segments for SMSS 1000; RFC 6928 allows 10) and
 * slow start. jktcp grows cwnd by every byte a cumulative ACK covers, as
 * Linux does (tcp_slow_start), not by at most 2*SMSS (RFC 3465 L=2):
 * receivers that batch — GRO, or jktcp itself — send stretch ACKs, and L=2
 * would crawl. One ACK of a whole flight therefore at most doubles it. */
T(data_initial_window_and_slow_start)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 60000);
    sp_brief b[64];
    size_t n = sp_drain(b, 64);
    uint32_t f1 = 0;
    for (size_t k = 0; k < n; k++)
        f1 += b[k].len;
    cr_assert(f1 >= 2000 && f1 <= 10000, "initial window %u bytes (SMSS 1000)", f1);
    sp_peer_ack(1, 1 + f1);
    n = sp_drain(b, 64);
    uint32_t f2 = 0;
    for (size_t k = 0; k < n; k++)
        f2 += b[k].len;
    cr_assert(f2 >= f1 + 1000 && f2 <= 2 * f1,
              "after one ACK of %u bytes the next flight is %u (slow start: +1 SMSS..x2)", f1, f2);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.cwnd, f2, "cwnd %u, flight %u", i.cwnd, f2);
}

/* Flow control: never more than the peer's window in flight (RFC 9293
 * §3.8.6), resume as the window slides. */
T(data_send_stops_at_peer_window)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 5000);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 10000);
    for (uint32_t k = 0; k < 5; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    sp_expect_none();
    cr_assert_eq(sp_info(c).snd_wnd, 5000);
    sp_peer_ackw(1, 2001, 5000); /* right edge 7001 */
    sp_assert_payload(sp_expect(JK_ACK, 5001, 1, 1000), 5000);
    sp_assert_payload(sp_expect(JK_ACK, 6001, 1, 1000), 6000);
    sp_expect_none();
    sp_peer_ackw(1, 7001, 5000);
    for (uint32_t k = 0; k < 3; k++)
        sp_expect(JK_ACK, 7001 + 1000 * k, 1, 1000);
    sp_expect_none();
}

/* RFC 7323 §2.3: windows from the peer are shifted by its wscale. */
T(data_send_respects_scaled_window)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 4;
    jktcp_conn *c = sp_connect(&hs);
    sp_opts o = { .raw_wnd = true };
    sp_send(JK_ACK, 1, 1, 500, NULL, 0, &o); /* 500 << 4 = 8000 bytes */
    sp_expect_none();
    cr_assert_eq(sp_info(c).snd_wnd, 8000, "snd_wnd %u", sp_info(c).snd_wnd);
    sp_write_pat(c, 0, 20000);
    for (uint32_t k = 0; k < 8; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    sp_expect_none();
}

/* Many segments in flight up to a large scaled window. */
T(data_many_segments_in_flight)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    sp_opts o = { .raw_wnd = true };
    sp_send(JK_ACK, 1, 1, 1000, NULL, 0, &o); /* 128000 bytes */
    sp_write_pat(c, 0, 200000);
    static sp_brief b[300];
    /* (Each 32 KiB write ends in a short segment: Nagle is off.) */
    size_t n = sp_drain(b, 300);
    uint32_t nxt = 1;
    for (size_t k = 0; k < n; k++) {
        cr_assert(b[k].seq == nxt && b[k].len > 0 && b[k].len <= 1000,
                  "segment %zu: seq %u len %u, expected seq %u", k, b[k].seq, b[k].len, nxt);
        nxt += b[k].len;
    }
    /* the window is filled to within one MSS: a last piece smaller than
     * the MSS and than half the window waits (sender SWS avoidance, RFC
     * 9293 §3.8.6.2.1; Linux cuts a window-limited send at a whole MSS) */
    cr_assert(nxt > 127001 && nxt <= 128001,
              "%u bytes in flight for a 128000-byte window (%zu segments)", nxt - 1, n);
    cr_assert(n >= 127 && n <= 132, "%zu segments", n);
    sp_send(JK_ACK, 1, 64001, 1000, NULL, 0, &o);
    n = sp_drain(b, 300);
    cr_assert(n >= 1 && b[0].seq == nxt, "nothing sent after 64000 bytes were acknowledged");
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(b[k].seq, nxt);
        nxt += b[k].len;
    }
    cr_assert(nxt > 191001 && nxt <= 192001, "window slid by 64000, flight now ends at %u", nxt);
}

/* RFC 9293 §3.8.6.1 (SHLD-29/30), RFC 1122 §4.2.2.17: zero window ->
 * probes after about an RTO, backed off exponentially; data resumes as
 * soon as the window opens. */
T(data_zero_window_persist_probes)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 4000);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 4000);
    for (uint32_t k = 0; k < 4; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    sp_advance_ms(50);
    sp_peer_ackw(1, 4001, 0);
    sp_write_pat(c, 4000, 1000);
    sp_expect_none();
    uint32_t t[4];
    for (int k = 0; k < 4; k++) {
        const sp_seg *g = sp_wait(70000, &t[k]);
        cr_assert(g, "no zero-window probe %d", k);
        cr_assert(g->s.len <= 1 && (g->seq == 4001 || g->seq == 4000) && (g->s.flags & JK_ACK),
                  "probe %d is not a window probe: %s", k, sp_str(g));
        if (g->s.len == 1)
            sp_assert_payload(g, 4000);
        sp_peer_ackw(1, 4001, 0);
    }
    cr_assert(t[0] >= 100 && t[0] <= 1500, "first probe after %u ms", t[0]);
    for (int k = 1; k < 4; k++)
        cr_assert(t[k] * 2 >= t[k - 1] * 3, "probe interval %u ms after %u ms: no backoff",
                  t[k], t[k - 1]);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_ackw(1, 4001, 4000);
    sp_brief b[8];
    size_t n = sp_drain(b, 8);
    cr_assert(n >= 1, "no data after the window opened");
    cr_assert(b[0].seq == 4001 || b[0].seq == 4002, "resumed at seq %u", b[0].seq);
    cr_assert_eq(b[n - 1].seq + b[n - 1].len, 5001, "data after the window opened ends at %u",
                 b[n - 1].seq + b[n - 1].len);
}

/* RFC 1122 §4.2.2.17: a zero window may last indefinitely as long as the
 * peer answers the probes (MAX_RETRIES must not kill it). */
T(data_zero_window_answered_probes_never_time_out)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_option(JKTCP_OPT_MAX_RETRIES, 3);
    sp_option(JKTCP_OPT_RTO_MAX_MS, 1000);
    sp_hs hs = sp_plain(1000, 1000);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 1000);
    sp_expect(JK_ACK, 1, 1, 1000);
    sp_peer_ackw(1, 1001, 0);
    sp_write_pat(c, 1000, 1000);
    for (int k = 0; k < 8; k++) {
        uint32_t e;
        const sp_seg *g = sp_wait(5000, &e);
        cr_assert(g, "probe %d missing", k);
        cr_assert(!(g->s.flags & JK_RST), "connection reset while probes are answered: %s",
                  sp_str(g));
        sp_peer_ackw(1, 1001, 0);
    }
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    cr_assert_eq(jktcp_conn_error(c), 0);
}

/* ====================================================================== */
/* Data: receiving                                                         */
/* ====================================================================== */

T(data_recv_in_order_ack_and_read)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert(g->wnd > 0);
    sp_peer_data(101, 1, 1000);
    sp_expect(JK_ACK, 1, 1101, 0);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.bytes_readable, 1100);
    sp_read_expect(c, 0, 1100);
    i = sp_info(c);
    cr_assert_eq(i.bytes_received, 1100);
    cr_assert_eq(i.bytes_readable, 0);
}

/* Peer sequence numbers wrapping through 2^32. */
T(data_recv_peer_seq_wraps)
{
    sp_irs_next = 0xFFFFFC00u;
    jktcp_conn *c = sp_connect(NULL);
    for (uint32_t k = 0; k < 4; k++) {
        sp_peer_data(1 + 500 * k, 1, 500);
        sp_expect(JK_ACK, 1, 501 + 500 * k, 0);
    }
    sp_read_expect(c, 0, 2000);
}

/* Fill a 16 KiB receive buffer with 1000-byte segments; returns the
 * window of the SYN. Every ACK keeps the right edge in place (RFC 9293
 * §3.8.6: the window is not shrunk) and the window reaches 0. */
static uint32_t fill_small_rcvbuf(jktcp_conn **cp)
{
    sp_option(JKTCP_OPT_RCVBUF, 16384);
    sp_hs hs = sp_plain(1000, 65535);
    *cp = sp_connect(&hs);
    uint32_t w = sp.f.syn_wnd;
    cr_assert_eq(w, 16384, "SYN window %u with RCVBUF 16384", w);
    uint32_t seq = 1;
    while (seq < 1 + w) {
        uint32_t n = 1 + w - seq > 1000 ? 1000 : 1 + w - seq;
        sp_peer_data(seq, 1, n);
        seq += n;
        const sp_seg *g = sp_expect(JK_ACK, 1, seq, 0);
        cr_assert_eq(g->ack + g->wnd, 1 + w, "right edge moved: ack %u + wnd %u != %u (%s)",
                     g->ack, g->wnd, 1 + w, sp_str(g));
    }
    return w;
}

T(data_recv_window_shrinks_to_zero)
{
    jktcp_conn *c;
    uint32_t w = fill_small_rcvbuf(&c);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.rcv_wnd, 0);
    cr_assert_eq(i.bytes_readable, w);
    sp_expect_none();
}

/* RFC 1122 §4.2.3.3 / RFC 9293 §3.8.6.2.2: when the application frees
 * the buffer a window update is sent. */
T(data_recv_window_update_after_read)
{
    jktcp_conn *c;
    uint32_t w = fill_small_rcvbuf(&c);
    sp_read_expect(c, 0, w);
    const sp_seg *g = sp_expect(JK_ACK, 1, 1 + w, 0);
    cr_assert(g->wnd >= w / 2, "window update after reading everything opens only %u: %s",
              g->wnd, sp_str(g));
    sp_peer_data(1 + w, 1, 1000);
    sp_expect(JK_ACK, 1, 1 + w + 1000, 0);
    sp_read_expect(c, w, 1000);
}

/* Receiver SWS avoidance (RFC 9293 §3.8.6.2.2 MUST-39, RFC 1122
 * §4.2.3.3): reading 100 bytes from a full buffer must not advertise a
 * 100-byte window. */
T(data_recv_sws_no_tiny_window_update)
{
    jktcp_conn *c;
    fill_small_rcvbuf(&c);
    uint8_t buf[100];
    cr_assert_eq(jktcp_conn_read(c, buf, sizeof buf, 0), 100);
    sp_advance_ms(1);
    const sp_seg *g;
    while ((g = sp_next()) != NULL)
        cr_assert(g->wnd == 0 || g->wnd >= 1000,
                  "window update of %u bytes after reading 100 (SWS): %s", g->wnd, sp_str(g));
    /* A peer's in-sequence pure ACK (window update) is not answered. */
    sp_peer_ackw(16385, 1, 65535);
    sp_expect_none();
}

/* RFC 2018 §4: out-of-order data is SACKed, first block = most recent;
 * RFC 5681 §4.2: immediate ACKs for out-of-order and gap-filling data. */
T(data_recv_out_of_order_sack_blocks)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    const sp_seg *g;
    sp_peer_data(1001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 1, 0);
    assert_sack(g, 1, (const uint32_t[][2]){ { 1001, 2001 } });
    sp_peer_data(3001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 1, 0);
    assert_sack(g, 2, (const uint32_t[][2]){ { 3001, 4001 }, { 1001, 2001 } });
    sp_peer_data(5001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 1, 0);
    assert_sack(g, 3, (const uint32_t[][2]){ { 5001, 6001 }, { 3001, 4001 }, { 1001, 2001 } });
    /* A repeat of an already SACKed block moves it to the front. */
    sp_peer_data(3001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 1, 0);
    cr_assert(g->s.opt.nsack >= 3, "%s", sp_str(g));
    uint32_t l, r;
    sack_rel(g, 0, &l, &r);
    /* RFC 2883 D-SACK may put 3001:4001 first too; either way it is first. */
    cr_assert(l == 3001 && r == 4001, "first block after a repeat of 3001:4001: %s", sp_str(g));
    /* Fill the first hole: ack 2001, remaining blocks reported. */
    sp_peer_data(1, 1, 1000);
    g = sp_expect(JK_ACK, 1, 2001, 0);
    cr_assert_eq(g->s.opt.nsack, 2, "%s", sp_str(g));
    bool seen3 = false, seen5 = false;
    for (unsigned k = 0; k < 2; k++) {
        sack_rel(g, k, &l, &r);
        seen3 |= l == 3001 && r == 4001;
        seen5 |= l == 5001 && r == 6001;
    }
    cr_assert(seen3 && seen5, "blocks after the first hole filled: %s", sp_str(g));
    cr_assert_eq(sp_info(c).bytes_readable, 2000);
    sp_peer_data(2001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 4001, 0);
    assert_sack(g, 1, (const uint32_t[][2]){ { 5001, 6001 } });
    sp_peer_data(4001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 6001, 0);
    cr_assert_eq(g->s.opt.nsack, 0, "SACK blocks with no hole: %s", sp_str(g));
    sp_read_expect(c, 0, 6000);
}

/* Without SACK, out-of-order data is still kept and delivered. */
T(data_recv_out_of_order_without_sack)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_peer_data(2001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_peer_data(1001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    cr_assert_eq(sp_info(c).bytes_readable, 0);
    sp_peer_data(1, 1, 1000);
    sp_expect(JK_ACK, 1, 3001, 0);
    sp_read_expect(c, 0, 3000);
}

/* The peer's first 2000 bytes arrive in order; every ACK for them is
 * taken (how many depends on quick and delayed ACKs). */
static void recv_first_2000(void)
{
    sp_peer_data(1, 1, 1000);
    sp_peer_data(1001, 1, 1000);
    sp_advance_ms(5);
    uint32_t last = 0;
    for (const sp_seg *g; (g = sp_next());)
        last = g->ack;
    cr_assert_eq(last, 2001, "in-order data ACKed to %u, not 2001", last);
}

/* RFC 2883 D-SACK: data that arrives twice is reported in the first SACK
 * block of the ACK it triggers, once. Here an old duplicate (below
 * rcv_nxt): the block lies below the ACK number. */
T(dsack_old_duplicate_reported_once)
{
    sp_connect(NULL);
    recv_first_2000();
    sp_peer_data(1001, 1, 1000);
    const sp_seg *g = sp_expect(JK_ACK, 1, 2001, 0);
    assert_sack(g, 1, (const uint32_t[][2]){ { 1001, 2001 } });
    sp_peer_data(2001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 3001, 0);
    cr_assert_eq(g->s.opt.nsack, 0, "D-SACK repeated: %s", sp_str(g));
}

/* A duplicate inside an island: the D-SACK block first, then the island
 * holding it (RFC 2883 §4.1); the next ACK is plain SACK again. */
T(dsack_duplicate_inside_island)
{
    sp_connect(NULL);
    sp_peer_data(2001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_peer_data(3001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_peer_data(2001, 1, 1000);
    const sp_seg *g = sp_expect(JK_ACK, 1, 1, 0);
    assert_sack(g, 2, (const uint32_t[][2]){ { 2001, 3001 }, { 2001, 4001 } });
    sp_peer_data(5001, 1, 1000);
    g = sp_expect(JK_ACK, 1, 1, 0);
    assert_sack(g, 2, (const uint32_t[][2]){ { 5001, 6001 }, { 2001, 4001 } });
}

/* A segment half old, half new: the old half is D-SACKed, the new half
 * acknowledged, in one ACK sent at once. */
T(dsack_partly_old_segment)
{
    jktcp_conn *c = sp_connect(NULL);
    recv_first_2000();
    sp_peer_data(1501, 1, 1000);
    const sp_seg *g = sp_expect(JK_ACK, 1, 2501, 0);
    assert_sack(g, 1, (const uint32_t[][2]){ { 1501, 2001 } });
    sp_read_expect(c, 0, 2500);
}

/* Without SACK negotiated there is no D-SACK either. */
T(dsack_not_without_sack)
{
    sp_hs hs = sp_plain(1000, 65535);
    sp_connect(&hs);
    recv_first_2000();
    sp_peer_data(1001, 1, 1000);
    const sp_seg *g = sp_expect(JK_ACK, 1, 2001, 0);
    cr_assert_eq(g->s.opt.nsack, 0, "SACK blocks without SACK-permitted: %s", sp_str(g));
}

/* The peer sends n segments of len bytes at seq, seq + step, ... all
 * before the adapter polls once (one input batch). */
static void push_data_burst(int n, uint32_t seq, uint32_t step, size_t len)
{
    static uint8_t f[JK_MAX_FRAME];
    for (int i = 0; i < n; i++) {
        uint32_t q = seq + step * (uint32_t)i;
        size_t fl = sp_build(f, sizeof f, JK_ACK, q, 1, SP_WND, sp_pat(q - 1), len, NULL);
        cr_assert_eq(jktcp_port_push(sp.port, f, fl), 0);
    }
    sp_poll();
}

/* RFC 5681 §4.2: every out-of-order segment gets its own duplicate ACK,
 * even when a burst of them is handled before one output pass; each
 * reports the newest island first (RFC 2018 §4). */
T(data_recv_ooo_burst_acked_one_by_one)
{
    sp_connect(NULL);
    push_data_burst(3, 1001, 1000, 500);
    for (int i = 0; i < 3; i++) {
        const sp_seg *g = sp_expect(JK_ACK, 1, 1, 0);
        cr_assert(g->s.opt.nsack == (uint8_t)(i + 1), "ACK %d: %s", i, sp_str(g));
        cr_assert_eq(g->s.opt.sack[0].left - sp.f.irs, 1001 + 1000 * (uint32_t)i,
                     "ACK %d does not report its own segment first: %s", i, sp_str(g));
    }
    sp_expect_none();
}

/* In-order segments in one batch still share an ACK (one per pass). */
T(data_recv_in_order_burst_shares_ack)
{
    sp_connect(NULL);
    push_data_burst(4, 1, 500, 500);
    sp_expect(JK_ACK, 1, 2001, 0);
    sp_expect_none();
}

/* RFC 9293 §3.10.7.4: an old duplicate is ACKed and dropped. */
T(data_recv_duplicate_acked_and_ignored)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
    cr_assert_eq(sp_info(c).bytes_received, 100);
}

/* Partial overlap: only the new part is delivered. */
T(data_recv_partial_overlap_trimmed)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_peer_data(51, 1, 150);
    sp_expect(JK_ACK, 1, 201, 0);
    sp_read_expect(c, 0, 200);
}

/* RFC 9293 §3.10.7.4: with a zero window a data segment at RCV.NXT
 * (a zero-window probe) is not acceptable: it is ACKed (window 0) and its
 * data dropped. Without the ACK a peer whose window update was lost could
 * never learn that the window opened. */
T(data_recv_zero_window_probe_acked)
{
    jktcp_conn *c;
    uint32_t w = fill_small_rcvbuf(&c);
    sp_peer_data(1 + w, 1, 1);
    const sp_seg *g = sp_expect(JK_ACK, 1, 1 + w, 0);
    cr_assert_eq(g->wnd, 0, "%s", sp_str(g));
    sp_peer_data(1 + w, 1, 1000);
    g = sp_expect(JK_ACK, 1, 1 + w, 0);
    cr_assert_eq(g->wnd, 0, "%s", sp_str(g));
    cr_assert_eq(sp_info(c).bytes_readable, w);
}

/* Data straddling the right window edge is trimmed to the window
 * (RFC 9293 §3.10.7.4, "segments with higher beginning sequence numbers
 * ... trimmed"). */
T(data_recv_beyond_window_trimmed)
{
    jktcp_conn *c;
    uint32_t w = fill_small_rcvbuf(&c);
    static uint8_t buf[16384];
    cr_assert_eq(sp_read_now(c, buf, 8192), 8192);
    const sp_seg *g, *last = NULL;
    while ((g = sp_next()) != NULL)
        last = g;
    cr_assert(last, "no window update after reading half of the buffer");
    uint32_t edge = last->ack + last->wnd;
    cr_assert(edge > 1 + w + 1000, "window update opens only to %u: %s", edge, sp_str(last));
    uint32_t seq = 1 + w;
    while (seq < edge - 400) {
        uint32_t n = edge - 400 - seq > 1000 ? 1000 : edge - 400 - seq;
        sp_peer_data(seq, 1, n);
        seq += n;
        sp_expect(JK_ACK, 1, seq, 0);
    }
    sp_peer_data(seq, 1, 1000); /* 400 bytes fit, 600 do not */
    g = sp_expect(JK_ACK, 1, edge, 0);
    cr_assert_eq(g->wnd, 0, "%s", sp_str(g));
    sp_read_expect(c, 8192, edge - 1 - 8192);
}

/* RFC 9293 §3.10.7.4: SEG.ACK > SND.NXT -> send an ACK, drop the segment
 * (its data is not delivered). */
T(data_ack_of_unsent_data_dropped)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_ack(1, 500);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_send(JK_ACK | JK_PSH, 1, 500, SP_WND, sp_pat(0), 10, NULL);
    sp_expect(JK_ACK, 1, 1, 0);
    cr_assert_eq(sp_info(c).bytes_readable, 0, "data of a segment acking unsent data was kept");
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
}

/* ---- delayed ACK (RFC 5681 §4.2, RFC 1122 §4.2.3.2) ---------------- */

T(delack_delays_single_segment)
{
    sp_option(JKTCP_OPT_DELACK_US, 1000);
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect_none();
    sp_advance_ms(1);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
}

T(delack_acks_within_limit)
{
    sp_option(JKTCP_OPT_DELACK_US, 1000);
    sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    uint32_t e;
    const sp_seg *g = sp_wait(1, &e);
    cr_assert(g, "no ACK within 1 ms (DELACK_US 1000)");
    cr_assert(g->s.flags & JK_ACK && g->ack == 101, "%s", sp_str(g));
}

/* "an ACK SHOULD be generated for at least every second full-sized
 * segment" (RFC 5681 §4.2). */
T(delack_every_second_full_segment)
{
    sp_option(JKTCP_OPT_DELACK_US, 200000);
    sp_hs hs = sp_plain(1460, 65535);
    sp_connect(&hs);
    sp_peer_data(1, 1, 1460);
    sp_peer_data(1461, 1, 1460);
    const sp_seg *g, *last = NULL;
    while ((g = sp_next()) != NULL)
        last = g;
    cr_assert(last && last->ack == 2921, "no immediate ACK after two full-sized segments%s%s",
              last ? ": " : "", last ? sp_str(last) : "");
}

/* RFC 5681 §4.2: out-of-order -> immediate duplicate ACK; gap filled ->
 * immediate ACK, even with delayed ACKs on. */
T(delack_out_of_order_acked_at_once)
{
    sp_option(JKTCP_OPT_DELACK_US, 200000);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_peer_data(1001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_peer_data(1, 1, 1000);
    sp_expect(JK_ACK, 1, 2001, 0);
    sp_read_expect(c, 0, 2000);
}

/* After a hole fills, the next 16 in-order segments are ACKed at once
 * (the sender is recovering on a small window; Linux's quickack), then
 * delayed ACKs resume. */
T(delack_quickack_after_hole)
{
    sp_option(JKTCP_OPT_DELACK_US, 200000);
    sp_hs hs = sp_plain(1000, 65535);
    sp_connect(&hs);
    sp_peer_data(1001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_peer_data(1, 1, 1000);
    sp_expect(JK_ACK, 1, 2001, 0);
    uint32_t seq = 2001;
    for (int i = 0; i < 16; i++, seq += 1000) {
        sp_peer_data(seq, 1, 1000);
        sp_expect(JK_ACK, 1, seq + 1000, 0);
    }
    sp_peer_data(seq, 1, 1000);
    sp_expect_none(); /* delayed again: one segment waits for a second */
    sp_peer_data(seq + 1000, 1, 1000);
    sp_expect(JK_ACK, 1, seq + 2000, 0);
}

/* The delayed ACK rides on data we send (piggyback), no separate ACK. */
T(delack_piggybacks_on_data)
{
    sp_option(JKTCP_OPT_DELACK_US, 200000);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_peer_data(1, 1, 100);
    sp_expect_none();
    sp_write_pat(c, 0, 50);
    sp_expect(JK_ACK, 1, 101, 50);
    sp_peer_ack(101, 51);
    sp_advance_ms(300);
    sp_expect_none(); /* no separate delayed ACK: it went with the data */
}

/* ====================================================================== */
/* Loss recovery                                                           */
/* ====================================================================== */

/* RFC 5681 §3.2: fast retransmit on the third duplicate ACK, not before;
 * ssthresh = max(FlightSize / 2, 2 * SMSS). */
T(loss_fast_retransmit_three_dupacks)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 6000);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 6, "6 segments expected in flight");
    sp_peer_ack(1, S);
    sp_expect_none();
    sp_peer_ack(1, S);
    sp_expect_none();
    sp_peer_ack(1, S);
    const sp_seg *g = sp_expect(JK_ACK, S, 1, 1000);
    sp_assert_payload(g, S - 1);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.ssthresh, 3000, "ssthresh %u after loss with FlightSize 6000", i.ssthresh);
    cr_assert(i.retransmits >= 1);
    sp_peer_ack(1, S + 6000);
    sp_expect_none();
    i = sp_info(c);
    cr_assert_eq(i.bytes_queued, 0);
    cr_assert(i.cwnd <= 3000 + 1000, "cwnd %u after recovery (RFC 6582 §3.2 step 5)", i.cwnd);
}

/* RFC 8985 §7: when nothing comes back for a probe timeout (2·SRTT plus
 * 2 ms of timer slack) the last segment is sent again long before the RTO. */
T(tlp_probe_retransmits_tail)
{
    sp_option(JKTCP_OPT_TAIL_PROBE, 1);
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 3000);
    sp_brief b[8];
    cr_assert_eq(sp_drain(b, 8), 3);
    uint32_t pto_us = 2 * sp_info(c).srtt_us + 2000;
    sp_advance_us(pto_us - 100);
    sp_expect_none();
    sp_advance_us(100);
    const sp_seg *g = sp_expect(JK_ACK, S + 2000, 1, 1000);
    sp_assert_payload(g, S + 1999);
    /* one probe only; the next retransmission is the RTO (>= 200 ms) */
    sp_advance_ms(100);
    sp_expect_none();
    sp_peer_ack(1, S + 3000);
    sp_expect_none();
    cr_assert_eq(sp_info(c).bytes_queued, 0);
}

/* RFC 8985 §7.4: the probe's ACK SACKs data above a hole that is still
 * missing: the hole is lost (the probe left a PTO after it), so it is
 * retransmitted at once instead of after three duplicate ACKs or the RTO. */
T(tlp_sacked_probe_recovers_hole)
{
    sp_option(JKTCP_OPT_TAIL_PROBE, 1);
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 2000);
    sp_brief b[8];
    cr_assert_eq(sp_drain(b, 8), 2);
    /* the first segment is lost; the second is SACKed */
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.nsack = 1;
    o.sack[0].left = S + 1000;
    o.sack[0].right = S + 2000;
    sp_send(JK_ACK, 1, S, SP_WND, NULL, 0, &o);
    sp_expect_none();
    sp_advance_ms(10);
    const sp_seg *g = sp_expect(JK_ACK, S + 1000, 1, 1000); /* the probe */
    sp_send(JK_ACK, 1, S, SP_WND, NULL, 0, &o);
    g = sp_expect(JK_ACK, S, 1, 1000);
    sp_assert_payload(g, S - 1);
    sp_peer_ack(1, S + 2000);
    sp_expect_none();
    cr_assert_eq(sp_info(c).bytes_queued, 0);
}

/* RFC 6582 §3.2 step 4: a partial ACK retransmits the next hole at once. */
T(loss_newreno_partial_ack)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 6000);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 6);
    /* Segments 0 and 2 lost: 4 duplicate ACKs. */
    for (int k = 0; k < 2; k++) {
        sp_peer_ack(1, S);
        sp_expect_none();
    }
    sp_peer_ack(1, S);
    sp_assert_payload(sp_expect(JK_ACK, S, 1, 1000), S - 1);
    sp_peer_ack(1, S);
    sp_expect_none();
    sp_peer_ack(1, S + 2000); /* partial ACK */
    sp_assert_payload(sp_expect(JK_ACK, S + 2000, 1, 1000), S + 1999);
    sp_peer_ack(1, S + 6000);
    sp_expect_none();
}

/* RFC 2018 / RFC 6675: retransmit only the holes the peer's SACK shows;
 * never data it SACKed. */
static void sp_sack_ack(uint32_t ack, const uint32_t (*blk)[2], int n)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.nsack = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        o.sack[i].left = blk[i][0];
        o.sack[i].right = blk[i][1];
    }
    sp_send(JK_ACK, 1, ack, SP_WND, NULL, 0, &o);
}

/* RFC 8985 §6.2: one SACKed segment above a hole, far too few for three
 * duplicate ACKs; once the reordering window passes, the hole counts lost
 * and goes again — long before the tail-loss probe (2·SRTT + 2 ms) or the
 * RTO would fire. */
T(rack_single_sack_marks_hole_lost)
{
    sp_option(JKTCP_OPT_TAIL_PROBE, 1);
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 2000);
    sp_brief b[8];
    cr_assert_eq(sp_drain(b, 8), 2);
    const uint32_t blk[1][2] = {{S + 1000, S + 2000}};
    sp_sack_ack(S, blk, 1); /* segment 0 missing, segment 1 arrived */
    uint32_t reo_us = sp_info(c).srtt_us; /* the window is at most SRTT */
    sp_advance_us(reo_us + 2);
    const sp_seg *g = sp_expect(JK_ACK, S, 1, 1000);
    sp_assert_payload(g, S - 1);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.recoveries, 1, "recoveries %u", i.recoveries);
    cr_assert_eq(i.timeouts, 0, "the RTO fired");
    cr_assert_eq(i.tail_probes, 0, "a tail-loss probe went first");
    sp_peer_ack(1, S + 2000);
    sp_expect_none();
}

/* RFC 6675 pipe: one ACK reveals three holes among ten segments. With
 * cwnd = FlightSize / 2 and seven segments SACKed, the pipe is empty:
 * all three holes go at once, not one per further duplicate ACK. */
T(sack_pipe_resends_every_hole_at_once)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 10000);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 10);
    /* segments 0, 2 and 4 lost */
    const uint32_t blk[3][2] = {{S + 5000, S + 10000}, {S + 3000, S + 4000}, {S + 1000, S + 2000}};
    sp_sack_ack(S, blk, 3);
    sp_sack_ack(S, blk, 3);
    sp_sack_ack(S, blk, 3);
    uint32_t seen = 0;
    const sp_seg *g;
    while ((g = sp_next()) != NULL) {
        cr_assert(g->s.len == 1000, "%s", sp_str(g));
        sp_assert_payload(g, g->seq - 1);
        uint32_t k = (g->seq - S) / 1000;
        cr_assert(k == 0 || k == 2 || k == 4, "resent segment %u, not a hole", k);
        cr_assert(!(seen & (1u << k)), "segment %u resent twice", k);
        seen |= 1u << k;
    }
    cr_assert_eq(seen, 0x15u, "holes resent: mask %#x, want 0x15", seen);
    cr_assert_eq(sp_info(c).ssthresh, 5000, "ssthresh %u", sp_info(c).ssthresh);
    sp_peer_ack(1, S + 10000);
    sp_expect_none();
}

T(loss_sack_retransmits_only_holes)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    cr_assert(sp.f.sack);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 8000);
    sp_brief b[32];
    cr_assert_eq(sp_drain(b, 32), 8);
    /* Segments 0 and 2 lost; 1, 3..7 arrive, each producing a dup ACK. */
    uint32_t rtx[16];
    unsigned nrtx = 0, first_rtx_after = 0;
    unsigned dup = 0;
    for (uint32_t k = 1; k < 8; k++) {
        if (k == 2)
            continue;
        sp_opts o;
        memset(&o, 0, sizeof o);
        if (k == 1) {
            o.nsack = 1;
            o.sack[0].left = S + 1000;
            o.sack[0].right = S + 2000;
        } else {
            o.nsack = 2;
            o.sack[0].left = S + 3000;
            o.sack[0].right = S + 1000 * (k + 1);
            o.sack[1].left = S + 1000;
            o.sack[1].right = S + 2000;
        }
        sp_send(JK_ACK, 1, S, SP_WND, NULL, 0, &o);
        dup++;
        const sp_seg *g;
        while ((g = sp_next()) != NULL) {
            cr_assert(g->s.len > 0, "unexpected %s", sp_str(g));
            cr_assert(nrtx < 16);
            if (!nrtx)
                first_rtx_after = dup;
            rtx[nrtx++] = g->seq;
            sp_assert_payload(g, g->seq - 1);
            bool in_sacked = (seq_lt(g->seq, S + 2000) && seq_gt(g->seq + g->s.len, S + 1000)) ||
                             (k > 2 && seq_lt(g->seq, S + 1000 * (k + 1)) &&
                              seq_gt(g->seq + g->s.len, S + 3000));
            cr_assert(!in_sacked, "retransmitted SACKed data: %s", sp_str(g));
        }
    }
    cr_assert(nrtx >= 1, "no retransmission after %u SACKed duplicate ACKs", dup);
    cr_assert(first_rtx_after >= 3, "retransmitted after only %u duplicate ACKs",
              first_rtx_after);
    cr_assert_eq(rtx[0], S, "first retransmission at seq %u, expected the first hole %u", rtx[0],
                 S);
    /* The first hole is repaired: cumulative ACK jumps over SACKed seg 1. */
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.nsack = 1;
    o.sack[0].left = S + 3000;
    o.sack[0].right = S + 8000;
    sp_send(JK_ACK, 1, S + 2000, SP_WND, NULL, 0, &o);
    const sp_seg *g;
    while ((g = sp_next()) != NULL) {
        cr_assert(nrtx < 16);
        rtx[nrtx++] = g->seq;
        cr_assert(!(seq_lt(g->seq, S + 8000) && seq_gt(g->seq + g->s.len, S + 3000)),
                  "retransmitted SACKed data: %s", sp_str(g));
    }
    bool hole2 = false;
    for (unsigned k = 0; k < nrtx; k++) {
        cr_assert(rtx[k] == S || rtx[k] == S + 2000, "retransmitted seq %u (not a hole)", rtx[k]);
        hole2 |= rtx[k] == S + 2000;
    }
    cr_assert(hole2, "second hole %u never retransmitted", S + 2000);
    cr_assert_eq(nrtx, 2, "%u retransmissions for 2 holes", nrtx);
    sp_peer_ack(1, S + 8000);
    sp_expect_none();
}

/* RFC 6298 §5.4-5.6: RTO retransmits the first unacknowledged segment and
 * doubles the timer each time. */
T(loss_rto_exponential_backoff)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 1000);
    sp_expect(JK_ACK, 1, 1, 1000);
    uint32_t t[4];
    for (int k = 0; k < 4; k++) {
        const sp_seg *g = sp_wait(70000, &t[k]);
        cr_assert(g, "retransmission %d missing", k);
        cr_assert(g->seq == 1 && g->s.len == 1000, "retransmission %d: %s", k, sp_str(g));
        sp_assert_payload(g, 0);
    }
    cr_assert(t[0] >= 200 && t[0] <= 1010, "first RTO %u ms (min 200, initial 1000)", t[0]);
    for (int k = 1; k < 4; k++)
        cr_assert(t[k] + 2 >= 2 * t[k - 1] && t[k] <= 2 * t[k - 1] + 2,
                  "RTO %d is %u ms after %u ms: not doubled (RFC 6298 §5.5)", k, t[k], t[k - 1]);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.retransmits, 4, "info.retransmits %u", i.retransmits);
    cr_assert(sp_stats().retransmits >= 4);
    /* An ACK stops the timer. */
    sp_peer_ack(1, 1001);
    sp_advance_ms(100000);
    sp_expect_none();
}

/* RFC 5681 §3.1: after an RTO, cwnd = 1 SMSS (loss window) and
 * ssthresh = max(FlightSize / 2, 2 * SMSS). */
T(loss_rto_collapses_cwnd)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t S = 1;
    transfer_acked(c, &S, 20000);
    sp_write_pat(c, S - 1, 5000);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 5);
    uint32_t e;
    const sp_seg *g = sp_wait(5000, &e);
    cr_assert(g && g->seq == S, "RTO retransmission: %s", g ? sp_str(g) : "none");
    sp_expect_none();
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.cwnd, 1000, "cwnd %u after RTO", i.cwnd);
    cr_assert_eq(i.ssthresh, 2500, "ssthresh %u after RTO with FlightSize 5000", i.ssthresh);
    sp_peer_ack(1, S + 1000);
    size_t n = sp_drain(b, 16);
    cr_assert(n >= 1 && n <= 2 && b[0].seq == S + 1000, "after the first ACK: %zu segments", n);
}

/* RFC 6298 §2: SRTT follows the measured RTT (alpha 1/8). */
static void rtt_round(jktcp_conn *c, uint32_t *nxt, uint32_t rtt_ms)
{
    sp_write_pat(c, *nxt - 1, 100);
    sp_expect(JK_ACK, *nxt, 1, 100);
    sp_advance_ms(rtt_ms);
    *nxt += 100;
    sp_peer_ack(1, *nxt);
}

static void check_srtt_follows(sp_hs hs)
{
    hs.rtt_ms = 50;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t nxt = 1;
    rtt_round(c, &nxt, 50);
    jktcp_info i = sp_info(c);
    cr_assert(i.srtt_us >= 48000 && i.srtt_us <= 52000, "srtt %u us after 50 ms samples",
              i.srtt_us);
    cr_assert(i.rto_us >= 200000, "rto %u us below the 200 ms minimum", i.rto_us);
    double srtt = 50.0;
    for (int k = 0; k < 4; k++) {
        rtt_round(c, &nxt, 150);
        srtt = srtt * 7 / 8 + 150.0 / 8;
        i = sp_info(c);
        cr_assert(i.srtt_us >= srtt * 1000 - 2000 && i.srtt_us <= srtt * 1000 + 2000,
                  "round %d: srtt %u us, expected %.0f us", k, i.srtt_us, srtt * 1000);
    }
    cr_assert(i.rto_us >= i.srtt_us + 4 * i.rttvar_us - 2000 || i.rto_us >= 200000,
              "rto %u < srtt %u + 4*rttvar %u", i.rto_us, i.srtt_us, i.rttvar_us);
}

T(loss_rtt_estimate_follows_acks)
{
    check_srtt_follows(sp_plain(1000, 65535));
}

T(loss_rtt_estimate_with_timestamps)
{
    sp_hs hs = SP_HS_DEFAULT;
    check_srtt_follows(hs);
}

/* The RTO timer uses the estimate: SRTT 100 ms -> RTO 250..300 ms
 * (RFC 6298 §2.2/2.3), and a retransmission fires at that time. */
T(loss_rto_uses_rtt_estimate)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.rtt_ms = 100;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t nxt = 1;
    rtt_round(c, &nxt, 100);
    jktcp_info i = sp_info(c);
    cr_assert(i.srtt_us >= 98000 && i.srtt_us <= 102000, "srtt %u", i.srtt_us);
    cr_assert(i.rto_us >= 248000 && i.rto_us <= 302000, "rto %u us for SRTT 100 ms", i.rto_us);
    sp_write_pat(c, nxt - 1, 100);
    sp_expect(JK_ACK, nxt, 1, 100);
    uint32_t e;
    const sp_seg *g = sp_wait(2000, &e);
    cr_assert(g && g->seq == nxt, "no retransmission");
    cr_assert(e * 1000 + 2000 >= i.rto_us && e * 1000 <= i.rto_us + 2000,
              "retransmitted after %u ms, rto was %u us", e, i.rto_us);
}

/* Karn (RFC 6298 §3): no RTT sample from a retransmitted segment (without
 * timestamps). */
T(loss_karn_no_sample_from_retransmission)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.rtt_ms = 50;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t nxt = 1;
    rtt_round(c, &nxt, 50);
    uint32_t before = sp_info(c).srtt_us;
    sp_write_pat(c, nxt - 1, 100);
    sp_expect(JK_ACK, nxt, 1, 100);
    uint32_t e;
    cr_assert(sp_wait(5000, &e), "no retransmission");
    sp_advance_ms(5);
    sp_peer_ack(1, nxt + 100);
    uint32_t after = sp_info(c).srtt_us;
    cr_assert(after + 1000 >= before && after <= before + 1000,
              "srtt changed from %u to %u by an ambiguous sample", before, after);
}

/* RFC 9293 §3.8.3 / jktcp.h: after MAX_RETRIES retransmissions the
 * connection times out: read/write give -ETIMEDOUT. */
T(loss_retransmission_exhaustion_etimedout)
{
    sp_option(JKTCP_OPT_MAX_RETRIES, 3);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 1000);
    sp_expect(JK_ACK, 1, 1, 1000);
    unsigned rtx = 0;
    for (int t = 0; t < 30000; t++) {
        sp_advance_ms(1);
        const sp_seg *g;
        while ((g = sp_next()) != NULL) {
            if (g->s.flags & JK_RST)
                continue;
            cr_assert(g->seq == 1 && g->s.len == 1000, "%s", sp_str(g));
            rtx++;
        }
    }
    cr_assert_eq(rtx, 3, "%u retransmissions with MAX_RETRIES 3", rtx);
    cr_assert_eq(jktcp_conn_error(c), -ETIMEDOUT, "conn_error %d", jktcp_conn_error(c));
    uint8_t x;
    cr_assert_eq(jktcp_conn_read(c, &x, 1, 0), -ETIMEDOUT);
    cr_assert_eq(jktcp_conn_write(c, "x", 1, 0), -ETIMEDOUT);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
}

/* ====================================================================== */
/* Timestamps (RFC 7323)                                                   */
/* ====================================================================== */

/* §4.3: TSecr = TS.Recent = TSval of the latest in-order segment. */
T(ts_echo_latest_tsval)
{
    sp_connect(NULL);
    uint32_t base = sp.f.peer_ts_max + 10;
    sp_opts o = ts_opts(base);
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, &o);
    const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(g->s.opt.tsecr, base, "TSecr %u, peer's TSval %u", g->s.opt.tsecr, base);
    o = ts_opts(base + 5);
    sp_send(JK_ACK | JK_PSH, 101, 1, SP_WND, sp_pat(100), 100, &o);
    g = sp_expect(JK_ACK, 1, 201, 0);
    cr_assert_eq(g->s.opt.tsecr, base + 5);
}

/* §4.3: a pure ACK at RCV.NXT updates TS.Recent; our data echoes it. */
T(ts_echo_on_data_after_pure_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    uint32_t v = sp.f.peer_ts_max + 1000;
    sp_opts o = ts_opts(v);
    sp_send(JK_ACK, 1, 1, SP_WND, NULL, 0, &o);
    sp_expect_none();
    sp_advance_ms(7);
    uint32_t before = sp.f.ts_recent;
    sp_write_pat(c, 0, 10);
    const sp_seg *g = sp_expect(JK_ACK, 1, 1, 10);
    cr_assert_eq(g->s.opt.tsecr, v, "data TSecr %u, expected %u", g->s.opt.tsecr, v);
    cr_assert(seq_gt(g->s.opt.tsval, before), "our TSval did not advance with the clock: %u -> %u",
              before, g->s.opt.tsval);
}

/* Connect, and have the peer send 100 bytes with TSval b (returned). */
static uint32_t ts_connect_100(void)
{
    sp_connect(NULL);
    uint32_t b = sp.f.peer_ts_max + 10;
    sp_opts o = ts_opts(b);
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, &o);
    sp_expect(JK_ACK, 1, 101, 0);
    return b;
}

/* §4.3 case (C): an out-of-order segment's TSval is not echoed; the
 * segment filling the hole is. */
T(ts_out_of_order_not_echoed)
{
    uint32_t b = ts_connect_100();
    sp_opts o;
    o = ts_opts(b + 20);
    sp_send(JK_ACK | JK_PSH, 201, 1, SP_WND, sp_pat(200), 100, &o);
    const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(g->s.opt.tsecr, b, "dup ACK echoes %u, expected %u (not the OOO %u)",
                 g->s.opt.tsecr, b, b + 20);
    o = ts_opts(b + 10);
    sp_send(JK_ACK | JK_PSH, 101, 1, SP_WND, sp_pat(100), 100, &o);
    g = sp_expect(JK_ACK, 1, 301, 0);
    cr_assert_eq(g->s.opt.tsecr, b + 10, "ACK after the hole echoes %u, expected %u",
                 g->s.opt.tsecr, b + 10);
}

/* A resent segment we already hold means our ACK went missing: the ACK
 * answering it echoes that segment's TSval (so the sender times the
 * resend, not the stall, and does not take it for spurious), while
 * TS.Recent itself stays (the next out-of-order ACK echoes the old one). */
T(ts_duplicate_data_echoes_its_tsval_once)
{
    uint32_t b = ts_connect_100();
    sp_opts o;
    sp_advance_ms(300);
    o = ts_opts(b + 300);
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, &o);
    const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(g->s.opt.tsecr, b + 300, "ACK for a resend echoes %u, expected its TSval %u",
                 g->s.opt.tsecr, b + 300);
    o = ts_opts(b + 301);
    sp_send(JK_ACK | JK_PSH, 201, 1, SP_WND, sp_pat(200), 100, &o);
    g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(g->s.opt.tsecr, b, "TS.Recent moved to %u on a duplicate (expected %u)",
                 g->s.opt.tsecr, b);
}

/* A duplicate from far below the window (more than a receive buffer
 * back) is not a plausible resend: its TSval is not echoed. */
T(ts_ancient_duplicate_not_echoed)
{
    uint32_t b = ts_connect_100();
    sp_opts o;
    o = ts_opts(b + 50);
    sp_send(JK_ACK | JK_PSH, 101u - 0x40000000u, 1, SP_WND, sp_pat(0), 100, &o);
    const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(g->s.opt.tsecr, b, "ancient duplicate's TSval echoed: %u", g->s.opt.tsecr);
}

/* §5.5: TS.Recent expires after 24 days idle. A peer whose clock went
 * half its range on in that time sends TSvals that look old; PAWS must
 * not drop them for ever: the first acceptable one is taken and echoed.
 * Short of 24 days the same segment is still dropped. */
T(ts_paws_forgets_ts_recent_after_24_days_idle)
{
    jktcp_conn *c = sp_connect(NULL);
    uint32_t b = sp.f.peer_ts_max + 0x40000000u;
    sp_opts o = ts_opts(b);
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, &o);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_advance_ms(23ull * 24 * 3600 * 1000);
    o = ts_opts(b - 0x60000000u); /* "older" by more than half the range */
    sp_send(JK_ACK | JK_PSH, 101, 1, SP_WND, sp_pat(100), 100, &o);
    const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(g->s.opt.tsecr, b, "PAWS let an old TSval in after 23 days: %s", sp_str(g));
    sp_advance_ms(2ull * 24 * 3600 * 1000);
    sp_send(JK_ACK | JK_PSH, 101, 1, SP_WND, sp_pat(100), 100, &o);
    g = sp_expect(JK_ACK, 1, 201, 0);
    cr_assert_eq(g->s.opt.tsecr, b - 0x60000000u, "TS.Recent not taken anew: %s", sp_str(g));
    o = ts_opts(b - 0x60000000u + 5);
    sp_send(JK_ACK | JK_PSH, 201, 1, SP_WND, sp_pat(200), 100, &o);
    sp_advance_ms(5);
    g = sp_expect(JK_ACK, 1, 301, 0);
    cr_assert_eq(g->s.opt.tsecr, b - 0x60000000u + 5, "%s", sp_str(g));
    sp_read_expect(c, 0, 300);
}

/* §5.3 R1 (PAWS): TSval < TS.Recent -> ACK and drop. */
T(ts_paws_drops_old_tsval)
{
    jktcp_conn *c = sp_connect(NULL);
    uint32_t b = sp.f.peer_ts_max + 1000;
    sp_opts o = ts_opts(b);
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, &o);
    sp_expect(JK_ACK, 1, 101, 0);
    o = ts_opts(b - 500);
    sp_send(JK_ACK | JK_PSH, 101, 1, SP_WND, sp_pat(100), 100, &o);
    const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(g->s.opt.tsecr, b);
    cr_assert_eq(sp_info(c).bytes_readable, 100, "PAWS-failing data was accepted");
}

/* §3.2: once negotiated, a non-RST segment without TSopt SHOULD be
 * dropped (the harness checks ours always carry it). */
T(ts_segment_without_ts_dropped)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_opts o = { .no_ts = true };
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, &o);
    const sp_seg *g;
    while ((g = sp_next()) != NULL)
        cr_assert(g->ack == 1, "data without TSopt was acknowledged: %s", sp_str(g));
    cr_assert_eq(sp_info(c).bytes_readable, 0, "data without TSopt was accepted");
}

/* ====================================================================== */
/* Keepalive                                                               */
/* ====================================================================== */

/* RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6: a keepalive (SEG.SEQ = RCV.NXT-1,
 * 0 or 1 garbage byte) is answered with an ACK. */
T(keepalive_from_peer_answered)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_peer_ack(100, 1);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_send(JK_ACK, 100, 1, SP_WND, "\0", 1, NULL);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
}

T(keepalive_sent_when_idle)
{
    sp_option(JKTCP_OPT_KEEPALIVE_MS, 1000);
    jktcp_conn *c = sp_connect(NULL);
    uint32_t e;
    const sp_seg *g = sp_wait(3000, &e);
    cr_assert(g, "no keepalive after 3 s idle");
    cr_assert(e >= 999 && e <= 1100, "keepalive after %u ms (KEEPALIVE_MS 1000)", e);
    cr_assert(g->seq == 0 && g->s.len <= 1 && (g->s.flags & JK_ACK) && g->ack == 1,
              "keepalive must be SEG.SEQ = SND.NXT-1 with 0/1 byte: %s", sp_str(g));
    sp_peer_ack(1, 1);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
}

T(keepalive_off_by_default)
{
    sp_connect(NULL);
    uint32_t e;
    const sp_seg *g = sp_wait(20000, &e);
    cr_assert(!g, "segment on an idle connection: %s", g ? sp_str(g) : "");
}

/* ====================================================================== */
/* Close (RFC 9293 §3.6, §3.10.7.4)                                        */
/* ====================================================================== */

/* Peer FIN after data: ACKed (FIN takes one sequence number), CLOSE_WAIT,
 * read gives the data, then 0 (end of stream), then 0 again. */
T(close_peer_fin_close_wait)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_PSH | JK_FIN, 1, 1, SP_WND, sp_pat(0), 100, NULL);
    sp_expect(JK_ACK, 1, 102, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSE_WAIT, "state %s", jktcp_state_name(sp_state_of(c)));
    uint8_t buf[200];
    cr_assert_eq(sp_read_now(c, buf, sizeof buf), 100);
    cr_assert(memcmp(buf, sp_pat(0), 100) == 0);
    cr_assert_eq(jktcp_conn_read(c, buf, sizeof buf, 0), 0);
    cr_assert_eq(jktcp_conn_read(c, buf, sizeof buf, 0), 0);
    /* Writing in CLOSE_WAIT still works (half-close). */
    sp_write_pat(c, 0, 10);
    sp_expect(JK_ACK, 1, 102, 10);
}

/* CLOSE_WAIT -> shutdown -> FIN, LAST_ACK -> ACK of FIN -> CLOSED. */
T(close_passive_last_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    cr_assert_eq(jktcp_conn_shutdown(c), 0);
    sp_expect(JK_ACK | JK_FIN, 1, 2, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_LAST_ACK, "state %s", jktcp_state_name(sp_state_of(c)));
    cr_assert_eq(jktcp_conn_write(c, "x", 1, 0), -EPIPE);
    sp_peer_ack(2, 2);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED, "state %s", jktcp_state_name(sp_state_of(c)));
    cr_assert_eq(jktcp_conn_error(c), 0);
}

/* Same with jktcp_conn_close: the connection disappears after the ACK. */
T(close_passive_close_releases)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    cr_assert_eq(jktcp_conn_close(c), 0);
    sp_expect(JK_ACK | JK_FIN, 1, 2, 0);
    cr_assert_eq(sp_stats().conns_active, 1);
    sp_peer_ack(2, 2);
    sp_expect_none();
    cr_assert_eq(sp_stats().conns_active, 0);
    /* Anything else for the 4-tuple now gets a RST (ACK set: seq=SEG.ACK). */
    sp_peer_ack(2, 2);
    sp_expect(JK_RST, 2, SP_ANY, 0);
}

/* LAST_ACK: the FIN is retransmitted until acknowledged. */
T(close_last_ack_fin_retransmitted)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    jktcp_conn_close(c);
    sp_expect(JK_ACK | JK_FIN, 1, 2, 0);
    uint32_t e;
    const sp_seg *g = sp_wait(3000, &e);
    cr_assert(g, "FIN not retransmitted");
    cr_assert((g->s.flags & JK_FIN) && g->seq == 1, "%s", sp_str(g));
    sp_peer_ack(2, 2);
    cr_assert_eq(sp_stats().conns_active, 0);
}

/* Active close: FIN_WAIT_1 -> (ACK) FIN_WAIT_2 -> data still readable ->
 * (FIN) TIME_WAIT -> a retransmitted FIN is ACKed again and restarts the
 * timer -> CLOSED after TIMEWAIT_MS. */
T(close_active_fin_wait_time_wait)
{
    sp_option(JKTCP_OPT_TIMEWAIT_MS, 500);
    jktcp_conn *c = sp_connect(NULL);
    cr_assert_eq(jktcp_conn_shutdown(c), 0);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_FIN_WAIT_1, "state %s", jktcp_state_name(sp_state_of(c)));
    cr_assert_eq(jktcp_conn_write(c, "x", 1, 0), -EPIPE, "write after shutdown");
    sp_peer_ack(1, 2);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_FIN_WAIT_2, "state %s", jktcp_state_name(sp_state_of(c)));
    sp_peer_data(1, 2, 50);
    sp_expect(JK_ACK, 2, 51, 0);
    sp_read_expect(c, 0, 50);
    sp_send(JK_ACK | JK_FIN, 51, 2, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 52, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_TIME_WAIT, "state %s", jktcp_state_name(sp_state_of(c)));
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), 0);
    sp_advance_ms(400);
    cr_assert_eq(sp_state_of(c), JKTCP_TIME_WAIT);
    sp_send(JK_ACK | JK_FIN, 51, 2, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 52, 0);
    sp_advance_ms(450); /* 850 ms: 450 since the restart */
    cr_assert_eq(sp_state_of(c), JKTCP_TIME_WAIT,
                 "TIME_WAIT not restarted by the retransmitted FIN (RFC 9293 §3.10.7.4)");
    sp_advance_ms(100);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED, "state %s after TIMEWAIT_MS",
                 jktcp_state_name(sp_state_of(c)));
    sp_expect_none();
}

/* TIME_WAIT ends after JKTCP_OPT_TIMEWAIT_MS and the connection is gone. */
T(close_time_wait_expires)
{
    sp_option(JKTCP_OPT_TIMEWAIT_MS, 300);
    jktcp_conn *c = sp_connect(NULL);
    cr_assert_eq(jktcp_conn_close(c), 0);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_ACK | JK_FIN, 1, 2, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 2, 0);
    cr_assert_eq(sp_stats().conns_active, 1);
    sp_advance_ms(290);
    cr_assert_eq(sp_stats().conns_active, 1, "TIME_WAIT ended early");
    sp_advance_ms(20);
    cr_assert_eq(sp_stats().conns_active, 0, "TIME_WAIT did not end after 300 ms");
    sp_expect_none();
}

/* FIN_WAIT_1 + FIN that acks our FIN -> TIME_WAIT directly. */
T(close_fin_wait_1_fin_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_ACK | JK_FIN, 1, 2, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 2, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_TIME_WAIT, "state %s", jktcp_state_name(sp_state_of(c)));
}

/* Simultaneous close: FIN_WAIT_1 + FIN not acking ours -> CLOSING; then
 * the ACK -> TIME_WAIT (RFC 9293 §3.6 figure 13). */
T(close_simultaneous_closing)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 2, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSING, "state %s", jktcp_state_name(sp_state_of(c)));
    sp_peer_ack(2, 2);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_TIME_WAIT, "state %s", jktcp_state_name(sp_state_of(c)));
}

/* FIN_WAIT_1: our FIN is retransmitted until ACKed. */
T(close_fin_retransmitted)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    uint32_t e;
    const sp_seg *g = sp_wait(3000, &e);
    cr_assert(g && (g->s.flags & JK_FIN) && g->seq == 1, "FIN not retransmitted: %s",
              g ? sp_str(g) : "nothing");
    sp_peer_ack(1, 2);
    cr_assert_eq(sp_state_of(c), JKTCP_FIN_WAIT_2);
}

/* A FIN beyond a hole is held until the hole fills. */
T(close_fin_out_of_order_held)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_PSH | JK_FIN, 101, 1, SP_WND, sp_pat(100), 100, NULL);
    sp_expect(JK_ACK, 1, 1, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 202, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSE_WAIT, "state %s", jktcp_state_name(sp_state_of(c)));
    uint8_t buf[300];
    cr_assert_eq(sp_read_now(c, buf, sizeof buf), 200);
    cr_assert(memcmp(buf, sp_pat(0), 200) == 0, "data around an out-of-order FIN corrupted");
    cr_assert_eq(jktcp_conn_read(c, buf, sizeof buf, 0), 0);
}

/* Graceful close sends every queued byte first, FIN after the last one. */
T(close_graceful_sends_queued_data_first)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 3000);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 5000);
    cr_assert_eq(jktcp_conn_close(c), 0);
    for (uint32_t k = 0; k < 3; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    sp_expect_none();
    sp_peer_ackw(1, 3001, 3000);
    sp_assert_payload(sp_expect(JK_ACK, 3001, 1, 1000), 3000);
    const sp_seg *g = sp_expect_any();
    cr_assert(g->seq == 4001 && g->s.len == 1000, "%s", sp_str(g));
    sp_assert_payload(g, 4000);
    if (!(g->s.flags & JK_FIN))
        sp_expect(JK_ACK | JK_FIN, 5001, 1, 0);
    sp_expect_none();
    sp_peer_ackw(1, 5002, 3000);
    sp_expect_none();
    sp_send(JK_ACK | JK_FIN, 1, 5002, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 5002, 2, 0);
}

/* Shutdown with data in flight: FIN follows the data (seq 1 + len). */
T(close_shutdown_after_data)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 1500);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK, 1, 1, 1000);
    const sp_seg *g = sp_expect_any();
    cr_assert(g->seq == 1001 && g->s.len == 500, "%s", sp_str(g));
    if (!(g->s.flags & JK_FIN))
        sp_expect(JK_ACK | JK_FIN, 1501, 1, 0);
    sp_peer_ack(1, 1502);
    cr_assert_eq(sp_state_of(c), JKTCP_FIN_WAIT_2);
}

/* Abort: <SEQ=SND.NXT><CTL=RST> (RFC 9293 §3.10.5), connection gone. */
T(close_abort_sends_rst)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 300);
    sp_expect(JK_ACK, 1, 1, 300);
    cr_assert_eq(jktcp_conn_abort(c), 0);
    const sp_seg *g = sp_expect_any();
    cr_assert((g->s.flags & JK_RST) && g->seq == 301, "abort: %s", sp_str(g));
    sp_expect_none();
    cr_assert_eq(sp_stats().conns_active, 0);
    sp_peer_ack(1, 301);
    sp_expect(JK_RST, 301, SP_ANY, 0);
}

/* jktcp.h / RFC 1122 §4.2.2.13: close with unread data -> RST. */
T(close_with_unread_data_sends_rst)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    cr_assert_eq(jktcp_conn_close(c), 0);
    const sp_seg *g = sp_expect_any();
    cr_assert((g->s.flags & JK_RST) && g->seq == 1, "close with unread data: %s", sp_str(g));
    sp_expect_none();
    cr_assert_eq(sp_stats().conns_active, 0);
}

/* RFC 1122 §4.2.2.13: new data after close() -> RST. */
T(close_data_after_close_gets_rst)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_close(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_peer_ack(1, 2);
    sp_expect_none();
    sp_peer_data(1, 2, 100);
    const sp_seg *g = sp_expect_any();
    cr_assert(g->s.flags & JK_RST, "data after close() not answered with RST: %s", sp_str(g));
}

/* jktcp_adapter_free aborts every connection with RST. */
T(close_adapter_free_resets)
{
    sp_connect(NULL);
    jktcp_adapter_free(sp.a);
    sp.a = NULL;
    const sp_seg *g = sp_expect_any();
    cr_assert((g->s.flags & JK_RST) && g->seq == 1, "%s", sp_str(g));
}

/* ---- RST in each synchronized state (RFC 9293 §3.10.7.4 second) ----- */

/* Exact RCV.NXT: reset; read/write give -ECONNRESET; no answer. */
T(rst_established_resets)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), -ECONNRESET);
    cr_assert_eq(jktcp_conn_write(c, "x", 1, 0), -ECONNRESET);
    cr_assert_eq(jktcp_conn_error(c), -ECONNRESET);
    cr_assert_eq(sp_stats().conns_active, 0);
}

/* RST|ACK is as good as RST. */
T(rst_ack_established_resets)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST | JK_ACK, 1, 1, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
}

/* Out-of-window RST is silently dropped. */
T(rst_out_of_window_ignored)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST, 1 + (64u << 20), 0, 0, NULL, 0, NULL); /* far right */
    sp_expect_none();
    sp_send(JK_RST, (uint32_t)-100000, 0, 0, NULL, 0, NULL); /* old */
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_data(1, 1, 10);
    sp_expect(JK_ACK, 1, 11, 0);
}

/* In window but not RCV.NXT: challenge ACK (RFC 5961 §3.2, as in RFC 9293)
 * or, for implementations without the mitigation, a reset. Never silent
 * acceptance without either. */
T(rst_in_window_inexact_challenge_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST, 1001, 0, 0, NULL, 0, NULL);
    const sp_seg *g = sp_next();
    if (sp_state_of(c) == JKTCP_ESTABLISHED) {
        cr_assert(g, "in-window RST neither reset the connection nor drew a challenge ACK");
        cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1, "challenge ACK: %s",
                  sp_str(g));
    } else {
        cr_assert(!g, "%s", sp_str(g));
    }
}

/* RFC 9293 §3.10.7.4 fourth (RFC 5961 §4): SYN in a synchronized state ->
 * challenge ACK; or (RFC 793 behaviour) RST. */
T(rst_syn_in_established_challenge_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_opts o = full_syn_opts();
    sp_send(JK_SYN, 500, 0, 65535, NULL, 0, &o);
    const sp_seg *g = sp_expect_any();
    if (g->s.flags & JK_RST) {
        cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    } else {
        cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1, "challenge ACK: %s",
                  sp_str(g));
        cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    }
}

T(rst_fin_wait_1)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), -ECONNRESET);
    sp_advance_ms(5000);
    sp_expect_none(); /* no FIN retransmission */
}

T(rst_fin_wait_2)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_peer_ack(1, 2);
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), -ECONNRESET);
}

T(rst_close_wait)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    cr_assert_eq(jktcp_conn_write(c, "x", 1, 0), -ECONNRESET);
}

/* LAST_ACK + RST: connection removed silently. */
T(rst_last_ack_silent)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    jktcp_conn_close(c);
    sp_expect(JK_ACK | JK_FIN, 1, 2, 0);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_stats().conns_active, 0);
    sp_advance_ms(5000);
    sp_expect_none();
}

/* CLOSING + RST: connection removed. */
T(rst_closing)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 2, 0);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
}

/* ====================================================================== */
/* Robustness: frames that must be dropped                                 */
/* ====================================================================== */

static size_t build_closed_port_syn(uint8_t *buf, size_t cap)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    return sp_build(buf, cap, JK_SYN, 1000, 0, 65535, NULL, 0, NULL);
}

T(drop_other_destination_address)
{
    uint8_t buf[256];
    struct jk_addr keep = sp.local;
    cr_assert_eq(jk_addr_parse("198.18.0.99", &sp.local), 0);
    size_t n = build_closed_port_syn(buf, sizeof buf);
    sp.local = keep;
    sp_push_raw(buf, n);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_address, 1);
    cr_assert_eq(st.rst_sent, 0);
}

T(drop_other_source_address)
{
    uint8_t buf[256];
    struct jk_addr keep = sp.peer;
    cr_assert_eq(jk_addr_parse("198.18.0.77", &sp.peer), 0);
    size_t n = build_closed_port_syn(buf, sizeof buf);
    sp.peer = keep;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_address, 1);
}

T(drop_udp_ignored)
{
    uint8_t f[32] = { 0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17 };
    memcpy(f + 12, sp.peer.a, 4);
    memcpy(f + 16, sp.local.a, 4);
    f[20] = 0x14; f[21] = 0xe9; /* 5353 */
    f[22] = 0x14; f[23] = 0xe9;
    f[24] = 0; f[25] = 12;
    memcpy(f + 28, "ping", 4);
    sp_fix_checksums(f, sizeof f);
    sp_push_raw(f, sizeof f);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.ignored_proto, 1);
    cr_assert_eq(st.drop_checksum + st.drop_address + st.drop_length, 0);
}

T(drop_icmp_ignored)
{
    uint8_t f[28] = { 0x45, 0, 0, 28, 0, 2, 0, 0, 64, 1 };
    memcpy(f + 12, sp.peer.a, 4);
    memcpy(f + 16, sp.local.a, 4);
    f[20] = 8; /* echo request */
    sp_fix_checksums(f, sizeof f);
    sp_push_raw(f, sizeof f);
    sp_expect_none();
    cr_assert_eq(sp_stats().ignored_proto, 1);
}

T(drop_bad_tcp_checksum)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[20 + 16] ^= 0x5a;
    sp_push_raw(buf, n);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_checksum, 1);
    cr_assert_eq(st.rst_sent, 0);
}

T(drop_bad_ipv4_header_checksum)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[10] ^= 0x11;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_checksum, 1);
}

T6(drop_bad_tcp_checksum_ipv6)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[40 + 16] ^= 0x5a;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_checksum, 1);
    /* The intact frame is answered: the checksum was the only problem. */
    buf[40 + 16] ^= 0x5a;
    sp_push_raw(buf, n);
    sp_expect(JK_RST | JK_ACK, 0, 1001, 0);
}

T(drop_ipv6_frame_on_ipv4_adapter)
{
    uint8_t buf[256];
    struct jk_addr kl = sp.local, kp = sp.peer;
    jk_addr_parse("fd00::2", &sp.local);
    jk_addr_parse("fd00::1", &sp.peer);
    size_t n = build_closed_port_syn(buf, sizeof buf);
    sp.local = kl;
    sp.peer = kp;
    sp_push_raw(buf, n);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_version + st.drop_address, 1, "version %llu address %llu",
                 (unsigned long long)st.drop_version, (unsigned long long)st.drop_address);
}

/* Piece [off, off+len) of IPv4 frame f's upper layer (20-byte header). */
static size_t ip4_piece(uint8_t *out, const uint8_t *f, size_t off, size_t len, bool more)
{
    memcpy(out, f, 20);
    memcpy(out + 20, f + 20 + off, len);
    out[2] = (uint8_t)((20 + len) >> 8);
    out[3] = (uint8_t)(20 + len);
    out[6] = (uint8_t)((more ? 0x20 : 0) | (off / 8) >> 8);
    out[7] = (uint8_t)(off / 8);
    out[10] = out[11] = 0;
    uint16_t c = jk_csum_fold(jk_csum_add(0, out, 20));
    out[10] = (uint8_t)(c >> 8);
    out[11] = (uint8_t)c;
    return 20 + len;
}

/* RFC 1122 §3.3.2: a segment cut into IPv4 fragments, the last first, is
 * put together and taken; a lone first piece is held, unanswered. */
T(ipv4_fragments_reassembled)
{
    jktcp_conn *c = sp_connect(NULL);
    static uint8_t f[2048], p1[2048], p2[2048];
    size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 1000, NULL);
    size_t n1 = ip4_piece(p1, f, 0, 512, true), n2 = ip4_piece(p2, f, 512, n - 20 - 512, false);
    sp_push_raw(p2, n2);
    sp_expect_none();
    sp_push_raw(p1, n1);
    sp_expect(JK_ACK, 1, 1001, 0);
    sp_read_expect(c, 0, 1000);
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.frags_reassembled, 1);
    cr_assert_eq(st.drop_fragment, 0);
    /* a closed port's SYN in one piece with "more" set: held, no RST */
    n = build_closed_port_syn(f, sizeof f);
    n1 = ip4_piece(p1, f, 0, n - 20, true);
    sp_push_raw(p1, n1);
    sp_expect_none();
    cr_assert_eq(sp_stats().frags_reassembled, 1);
}

/* RFC 5722 (Linux does it for IPv4 too): overlapping pieces drop the
 * datagram; nothing is taken and the drops are counted. */
T(ipv4_overlapping_fragments_dropped)
{
    jktcp_conn *c = sp_connect(NULL);
    static uint8_t f[2048], p1[2048], p2[2048];
    size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 1000, NULL);
    size_t n1 = ip4_piece(p1, f, 0, 512, true), n2 = ip4_piece(p2, f, 504, n - 20 - 504, false);
    sp_push_raw(p1, n1);
    sp_push_raw(p2, n2);
    sp_expect_none();
    cr_assert_eq(sp_info(c).bytes_readable, 0);
    cr_assert_eq(sp_stats().drop_fragment, 2);
    cr_assert_eq(sp_stats().frags_reassembled, 0);
}

T(drop_truncated_frame)
{
    uint8_t buf[256];
    build_closed_port_syn(buf, sizeof buf);
    sp_push_raw(buf, 30);
    sp_push_raw(buf, 10);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_short + st.drop_length, 2, "short %llu length %llu",
                 (unsigned long long)st.drop_short, (unsigned long long)st.drop_length);
}

T(drop_bad_tcp_data_offset)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[20 + 12] = (uint8_t)((buf[20 + 12] & 0x0f) | 0x40); /* doff 4 < 5 */
    sp_fix_checksums(buf, n);
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_options, 1);
}

/* A data segment with a bad checksum is neither ACKed nor delivered. */
T(drop_bad_checksum_data_not_acked)
{
    jktcp_conn *c = sp_connect(NULL);
    uint8_t buf[2048];
    size_t n = sp_build(buf, sizeof buf, JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, NULL);
    buf[n - 1] ^= 0xff;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_info(c).bytes_readable, 0);
    cr_assert_eq(sp_stats().drop_checksum, 1);
}

/* ====================================================================== */
/* Options and configuration                                               */
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
/* More data-path cases                                                    */
/* ====================================================================== */

/* The send buffer bounds what write queues; -EAGAIN when full, room
 * again after ACKs. */
T(data_sndbuf_limits_write)
{
    sp_option(JKTCP_OPT_SNDBUF, 8192);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    ssize_t r = jktcp_conn_write(c, sp_pat(0), 20000, 0);
    cr_assert(r > 0 && r <= 8192 && r >= 4096, "write into an 8 KiB send buffer queued %zd", r);
    uint32_t q = (uint32_t)r;
    cr_assert_eq(jktcp_conn_write(c, sp_pat(q), 1000, 0), -EAGAIN, "write to a full buffer");
    cr_assert_eq(sp_info(c).bytes_queued, q);
    sp_brief b[32];
    size_t n = sp_drain(b, 32);
    uint32_t sent = 0;
    for (size_t k = 0; k < n; k++)
        sent += b[k].len;
    cr_assert_eq(sent, q, "sent %u of %u queued", sent, q);
    sp_peer_ack(1, 4001);
    r = jktcp_conn_write(c, sp_pat(q), 20000, 0);
    cr_assert_eq(r, 4000, "after 4000 bytes were ACKed write queued %zd", r);
}

/* RFC 9293 §3.8.6: a peer that shrinks its window (right edge moves
 * left) must not be sent data beyond the new edge. */
T(data_peer_shrinks_window)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 5000);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 5000);
    for (uint32_t k = 0; k < 5; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    sp_peer_ackw(1, 1001, 1000); /* edge 2001 < snd_nxt 5001 */
    sp_write_pat(c, 5000, 3000);
    sp_expect_none();
    sp_peer_ackw(1, 5001, 3000);
    for (uint32_t k = 0; k < 3; k++)
        sp_expect(JK_ACK, 5001 + 1000 * k, 1, 1000);
    sp_expect_none();
}

/* RFC 9293 §3.10.7.4: an old ACK (SEG.ACK < SND.UNA) is ignored: it does
 * not update the window. */
T(data_old_ack_ignored)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 5000);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 3000);
    for (uint32_t k = 0; k < 3; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    sp_peer_ackw(1, 2001, 5000);
    sp_peer_ackw(1, 1001, 0); /* reordered older ACK */
    sp_expect_none();
    cr_assert_eq(sp_info(c).snd_wnd, 5000, "an old ACK changed the window to %u",
                 sp_info(c).snd_wnd);
    sp_write_pat(c, 3000, 1000);
    sp_expect(JK_ACK, 3001, 1, 1000);
}

/* Two connections at once: segments go to the right one. */
T(data_two_connections_demux)
{
    sp_hs hs = SP_HS_DEFAULT;
    jktcp_conn *c1 = sp_connect(&hs);
    struct sp_flow f1 = sp.f;
    hs.port = 81;
    jktcp_conn *c2 = sp_connect(&hs);
    struct sp_flow f2 = sp.f;
    cr_assert_neq(f1.lport, f2.lport, "both connections use local port %u", f1.lport);
    sp.f = f1;
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp.f = f2;
    sp_peer_data(1, 1, 30);
    sp_expect(JK_ACK, 1, 31, 0);
    cr_assert_eq(sp_info(c1).bytes_readable, 100);
    cr_assert_eq(sp_info(c2).bytes_readable, 30);
    sp_write_pat(c2, 0, 7);
    sp_expect(JK_ACK, 1, 31, 7);
    sp.f = f1;
    sp_write_pat(c1, 0, 9);
    sp_expect(JK_ACK, 1, 101, 9);
    cr_assert_eq(sp_stats().conns_active, 2);
}

/* ====================================================================== */
/* More state-machine cases                                                */
/* ====================================================================== */

/* CLOSE_WAIT: a retransmitted FIN (now old) is ACKed again. */
T(close_wait_fin_retransmit_acked)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSE_WAIT);
}

/* SYN_RCVD: a retransmitted SYN gets the SYN-ACK again. */
T(hs_syn_rcvd_duplicate_syn)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp_opts o = full_syn_opts();
    sp_send(JK_SYN, 0, 0, 65535, NULL, 0, &o);
    const sp_seg *g = sp_expect_any();
    cr_assert((g->s.flags & (JK_SYN | JK_ACK)) == (JK_SYN | JK_ACK) && g->seq == 0 && g->ack == 1,
              "answer to a retransmitted SYN: %s", sp_str(g));
    sp.f.synced = true;
    sp_peer_ack(1, 1);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
}

/* SYN_RCVD: a duplicated SYN (which queues the SYN-ACK again) and the
 * handshake's final ACK arrive in one batch, before any output. The
 * connection must send from snd_una on, not from the rewound SYN-ACK
 * sequence: a stale snd_nxt below snd_una made the flight negative and
 * the connection silently never sent (found by the 32-stream 20% loss
 * test). */
T(hs_syn_rcvd_duplicate_syn_and_ack_in_one_batch)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp_opts o = full_syn_opts();
    static uint8_t syn[JK_MAX_FRAME], ack[JK_MAX_FRAME];
    size_t ns = sp_build(syn, sizeof syn, JK_SYN, 0, 0, 65535, NULL, 0, &o);
    sp.f.synced = true;
    size_t na = sp_build(ack, sizeof ack, JK_ACK, 1, 1, SP_WND, NULL, 0, NULL);
    cr_assert_eq(jktcp_port_push(sp.port, syn, ns), 0);
    cr_assert_eq(jktcp_port_push(sp.port, ack, na), 0);
    sp_poll();
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
    sp.c = c;
    const sp_seg *g;
    while ((g = sp_next()) != NULL) /* a late SYN-ACK is harmless */
        cr_assert(g->s.flags & JK_SYN, "unexpected before the write: %s", sp_str(g));
    sp_write_pat(c, 0, 100);
    g = sp_expect(JK_ACK | JK_PSH, 1, 1, 100);
    sp_assert_payload(g, 0);
}

/* SYN_RCVD, RST in window but not at RCV.NXT: challenge ACK (RFC 9293
 * §3.10.7.4 / RFC 5961 §3.2); the half-open connection survives. */
T(hs_syn_rcvd_inexact_rst_challenge_ack)
{
    sp_hs hs = SP_HS_DEFAULT;
    sp_accept_syn(&hs, 40000);
    sp.f.synced = true;
    sp_send(JK_RST, 101, 0, 0, NULL, 0, NULL);
    const sp_seg *g = sp_expect_any();
    cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1, "challenge ACK: %s", sp_str(g));
    sp_peer_ack(1, 1);
    sp_expect_none();
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), 0);
}

/* SYN_RCVD, unacceptable (out-of-window) data segment: ACK it (RFC 9293
 * §3.10.7.4 first check applies to SYN-RECEIVED too). */
T(hs_syn_rcvd_out_of_window_segment_acked)
{
    sp_hs hs = sp_plain(1460, 65535);
    sp_accept_syn(&hs, 40000);
    sp.f.synced = true;
    sp_send(JK_ACK, (uint32_t)-5000, 1, SP_WND, NULL, 0, NULL); /* old seq */
    const sp_seg *g = sp_expect_any();
    cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1,
              "answer to an unacceptable segment in SYN_RCVD: %s", sp_str(g));
}

/* ====================================================================== */
/* Targeted cases                                                          */
/* ====================================================================== */

/* RFC 7323 §4.3 rule (2) and case (A): TS.Recent is only updated from a
 * segment with SEG.SEQ <= Last.ACK.sent, so with a delayed ACK the echo is
 * the TSval of the EARLIEST unacknowledged segment (the RTT then includes
 * the ACK delay). */
T(ts_delayed_ack_echoes_earliest)
{
    sp_option(JKTCP_OPT_DELACK_US, 200000);
    sp_connect(NULL);
    uint32_t b = sp.f.peer_ts_max + 10;
    sp_opts o = ts_opts(b);
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, &o);
    sp_expect_none();
    o = ts_opts(b + 7);
    sp_send(JK_ACK | JK_PSH, 101, 1, SP_WND, sp_pat(100), 100, &o);
    const sp_seg *g = sp_next();
    if (!g)
        g = sp_wait(300, NULL);
    cr_assert(g && g->ack == 201, "no ACK for both segments");
    cr_assert_eq(g->s.opt.tsecr, b, "delayed ACK echoes %u, expected the earliest TSval %u",
                 g->s.opt.tsecr, b);
}

/* RFC 9293 §3.8.6 (SHLD-14): the receiver should not shrink the window,
 * i.e. move its right edge left. With window scaling the advertised window
 * is rounded; rounding it down as data arrives pulls the edge back. */
T(data_recv_scaled_window_never_retracts)
{
    jktcp_conn *c = sp_connect(NULL);
    cr_assert(sp.f.our_ws > 0);
    uint32_t edge = 0;
    for (uint32_t k = 0; k < 10; k++) {
        sp_peer_data(1 + 100 * k, 1, 100);
        const sp_seg *g = sp_expect(JK_ACK, 1, 101 + 100 * k, 0);
        uint32_t e = g->ack + g->wnd;
        if (k)
            cr_assert(seq_ge(e, edge), "right edge moved left from %u to %u after %u bytes: %s",
                      edge, e, 100 * (k + 1), sp_str(g));
        edge = e;
    }
    (void)c;
}

/* RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST>. After an RTO the engine
 * goes back to snd_una to retransmit, but SND.NXT (the next new sequence
 * number) is still the highest sent: a peer that received everything and
 * whose ACKs were lost has RCV.NXT there, and with RFC 5961 accepts a RST
 * only at exactly RCV.NXT (and none left of its window at all). */
T(close_abort_after_rto_rst_at_snd_nxt)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 3000);
    for (uint32_t k = 0; k < 3; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    uint32_t e;
    const sp_seg *g = sp_wait(3000, &e);
    cr_assert(g && g->seq == 1, "no RTO retransmission");
    cr_assert_eq(jktcp_conn_abort(c), 0);
    g = sp_expect_any();
    cr_assert((g->s.flags & JK_RST) && g->seq == 3001,
              "RST after an RTO has seq %u, expected SND.NXT 3001: %s", g->seq, sp_str(g));
}

/* Same for pure ACKs sent while going back after an RTO (RFC 9293: an ACK
 * is <SEQ=SND.NXT><ACK=RCV.NXT>). Scenario: the peer's data segment
 * crossed our flight (so it carries ack 1), the peer then received all
 * 3000 bytes but its ACK was lost; our ACK with SEQ 1001, left of the
 * peer's RCV.NXT 3001, is unacceptable to it (§3.10.7.4 first check; Linux
 * drops it) together with its ACK and window information. */
T(loss_ack_after_rto_uses_snd_nxt)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 3000);
    for (uint32_t k = 0; k < 3; k++)
        sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000);
    uint32_t e;
    const sp_seg *g = sp_wait(3000, &e);
    cr_assert(g && g->seq == 1, "no RTO retransmission");
    /* The peer's data arrives with a stale ACK (its ACKs are being lost). */
    sp_peer_data(1, 1, 100);
    g = sp_expect_any();
    cr_assert(g->ack == 101, "%s", sp_str(g));
    cr_assert(g->s.len > 0 || g->seq == 3001,
              "pure ACK after an RTO has seq %u, expected SND.NXT 3001: %s", g->seq, sp_str(g));
}

/* RFC 2018 §3: with timestamps only 3 SACK blocks fit in 40 option bytes;
 * the ACK still goes out, with the most recent blocks. */
T(data_recv_sack_blocks_fit_with_timestamps)
{
    jktcp_conn *c = sp_connect(NULL);
    cr_assert(sp.f.ts && sp.f.sack);
    for (uint32_t k = 0; k < 5; k++) {
        uint32_t seq = 1001 + 2000 * k; /* holes at 1, 2001, 4001, ... */
        sp_peer_data(seq, 1, 1000);
        const sp_seg *g = sp_expect(JK_ACK, 1, 1, 0);
        cr_assert(g->s.opt.nsack >= 1 && g->s.opt.nsack <= 3, "%s", sp_str(g));
        cr_assert(g->opt_len <= 40);
        uint32_t l, r;
        sack_rel(g, 0, &l, &r);
        cr_assert(l == seq && r == seq + 1000, "first block is not the newest: %s", sp_str(g));
        if (k >= 2)
            cr_assert_eq(g->s.opt.nsack, 3, "%s", sp_str(g));
    }
    cr_assert_eq(sp_info(c).bytes_readable, 0);
}

/* Keepalive probes that get no answer end the connection (RFC 1122
 * §4.2.3.6); answered probes keep it. */
T(keepalive_unanswered_times_out)
{
    sp_option(JKTCP_OPT_KEEPALIVE_MS, 1000);
    jktcp_conn *c = sp_connect(NULL);
    unsigned probes = 0;
    for (int t = 0; t < 120000 && sp_state_of(c) == JKTCP_ESTABLISHED; t += 10) {
        sp_advance_ms(10);
        const sp_seg *g;
        while ((g = sp_next()) != NULL)
            if (!(g->s.flags & JK_RST))
                probes++;
    }
    cr_assert(probes >= 1, "no keepalive probe");
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED, "connection alive after 120 s of silence and %u "
                 "probes", probes);
    cr_assert_eq(jktcp_conn_error(c), -ETIMEDOUT, "conn_error %d", jktcp_conn_error(c));
}

T(keepalive_answered_keeps_connection)
{
    sp_option(JKTCP_OPT_KEEPALIVE_MS, 1000);
    jktcp_conn *c = sp_connect(NULL);
    for (int t = 0; t < 30000; t += 10) {
        sp_advance_ms(10);
        const sp_seg *g;
        while ((g = sp_next()) != NULL) {
            cr_assert(!(g->s.flags & JK_RST), "reset although probes are answered: %s", sp_str(g));
            sp_peer_ack(1, 1);
        }
    }
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
}

/* JKTCP_OPT_NODELAY=0 turns Nagle on (RFC 9293 §3.7.4): a small segment
 * waits while data is unacknowledged; full segments still go; the held
 * bytes leave with the ACK. Off by default (sent at once). */
T(nagle_on_holds_small_segments)
{
    sp_option(JKTCP_OPT_NODELAY, 0);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 100);
    sp_assert_payload(sp_expect(JK_ACK, 1, 1, 100), 0); /* nothing in flight: goes */
    sp_write_pat(c, 100, 50);
    sp_write_pat(c, 150, 50);
    sp_expect_none(); /* 100 bytes unacknowledged: the small ones wait */
    sp_write_pat(c, 200, 1000);
    sp_assert_payload(sp_expect(JK_ACK, 101, 1, 1000), 100); /* a full segment goes */
    sp_expect_none();
    sp_peer_ack(1, 1101);
    sp_assert_payload(sp_expect(JK_ACK, 1101, 1, 100), 1100); /* the rest, on the ACK */
    sp_peer_ack(1, 1201);
    sp_expect_none();
}

T(nagle_off_by_default_sends_at_once)
{
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 100);
    sp_expect(JK_ACK, 1, 1, 100);
    sp_write_pat(c, 100, 10);
    sp_expect(JK_ACK, 101, 1, 10);
}

/* Ephemeral ports: random in 49152..65535, all distinct while their
 * connections exist, a port in TIME_WAIT is never handed out again, and an
 * exhausted range gives -EADDRNOTAVAIL instead of reuse. */
T(ephemeral_ports_unique_until_exhausted)
{
    sp_option(JKTCP_OPT_MAX_CONNS, 20000);
    sp_option(JKTCP_OPT_SNDBUF, 4096);
    sp_option(JKTCP_OPT_RCVBUF, 4096);
    sp_option(JKTCP_OPT_TIMEWAIT_MS, 60000);
    jktcp_conn *c = sp_connect(NULL);
    jktcp_info in;
    cr_assert_eq(jktcp_conn_info(c, &in, sizeof in), 0);
    uint16_t tw_port = in.local_port;
    cr_assert_eq(jktcp_conn_close(c), 0);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_ACK | JK_FIN, 1, 2, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 2, 0); /* now in TIME_WAIT, holding tw_port */
    static uint8_t seen[65536];
    memset(seen, 0, sizeof seen);
    seen[tw_port] = 1;
    unsigned n = 0;
    uint16_t first = 0, second = 0;
    for (;;) {
        jktcp_conn *x;
        int r = jktcp_conn_connect(sp.a, 80, 0, &x);
        if (r != -EINPROGRESS) {
            cr_assert_eq(r, -EADDRNOTAVAIL, "connect %u: %s", n, jktcp_strerror(r));
            break;
        }
        cr_assert_eq(jktcp_conn_info(x, &in, sizeof in), 0);
        cr_assert(in.local_port >= 49152, "port %u outside the ephemeral range", in.local_port);
        cr_assert(!seen[in.local_port], "port %u handed out twice (TIME_WAIT port %u)",
                  in.local_port, tw_port);
        seen[in.local_port] = 1;
        if (n == 0)
            first = in.local_port;
        else if (n == 1)
            second = in.local_port;
        n++; /* the SYNs pile up in the port's bounded queue: not read */
    }
    cr_assert_eq(n, 16384 - 1, "%u ports before exhaustion", n);
    cr_assert(second != (uint16_t)(first + 1) || first != (uint16_t)(tw_port + 1),
              "ports look sequential, not random");
}
