/* SPDX-License-Identifier: MIT */
/*
 * Opening a connection: active open and the SYN's options, SYN
 * retransmission and its limit, the SYN-SENT checks of RFC 9293 §3.10.7.3,
 * simultaneous open (§3.5 figure 7), passive open (SYN-ACK, backlog,
 * accept), SYN-RECEIVED (duplicate SYNs, bad ACKs, RSTs), listening twice.
 *
 * Suites `scripted` (T, T6), `hostile` (H, H6): the macros are in
 * tcp_test.h. Relative sequence numbers as in scripted.h: the SYN is seq 0,
 * the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

#include <string.h>

/* ====================================================================== */
/* Handshake                                                              */
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

/* Listening twice on a port -> -EADDRINUSE; after unlisten it is free. */
H(listen_twice_eaddrinuse_then_free)
{
    jktcp_conn_listener *l1 = NULL, *l2 = (jktcp_conn_listener *)0x1;
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 5, &l1), 0);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 5, &l2), -EADDRINUSE);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 0, &l2), -EADDRINUSE);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, -1, &l2), -EADDRINUSE);
    jktcp_adapter_unlisten(l1);
    l2 = NULL;
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 5, &l2), 0);
    cr_assert(l2);
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

/* ---- More state-machine cases ---------------------------------------- */

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
