/* SPDX-License-Identifier: MIT */
/*
 * Loss recovery: fast retransmit and NewReno (RFC 5681, RFC 6582), SACK
 * recovery (RFC 6675), RACK-TLP (RFC 8985), the retransmission timer and
 * RTT estimation (RFC 6298, Karn), retransmission limits, and SACK blocks
 * that are garbage.
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
/* Loss recovery                                                          */
/* ====================================================================== */

/* RFC 5681 §3.2: fast retransmit on the third duplicate ACK, not before;
 * ssthresh = max(FlightSize / 2, 2 * SMSS). */
T(loss_fast_retransmit_three_dupacks)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO); /* its arithmetic is tested */
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

/* Six segments out from S; the first one's fate unknown, the next three
 * SACKed: recovery begins and the head goes again at once. */
static void six_out_head_missing(jktcp_conn *c, uint32_t S)
{
    sp_write_pat(c, S - 1, 6000);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 6);
    const uint32_t blk[1][2] = {{S + 1000, S + 4000}}; /* three above the hole */
    sp_sack_ack(S, blk, 1);
    sp_assert_payload(sp_expect(JK_ACK, S, 1, 1000), S - 1);
}

/* JKTCP_OPT_CONGESTION picks the controller of connections made after it;
 * a connection keeps its own. On the wire, CUBIC's cut is to 0.7 of the
 * window (RFC 9438 §4.6) where NewReno's is half the flight. */
T(cc_option_picks_the_controller_per_connection)
{
    long v = -1;
    cr_assert_eq(jktcp_adapter_get_option(sp.a, JKTCP_OPT_CONGESTION, &v), 0);
    cr_assert_eq(v, JKTCP_CC_BBR, "default controller %ld", v);
    cr_assert_eq(jktcp_adapter_set_option(sp.a, JKTCP_OPT_CONGESTION, 4), -EINVAL);
    cr_assert_eq(jktcp_adapter_set_option(sp.a, JKTCP_OPT_CONGESTION, -1), -EINVAL);
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_CUBIC);
    uint32_t S;
    jktcp_conn *c = sack_peer_warmed(&S);
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO); /* for later connections only */
    cr_assert_eq(sp_info(c).congestion, JKTCP_CC_CUBIC);
    uint32_t cwnd = sp_info(c).cwnd;
    cr_assert_eq(cwnd, 30000, "cwnd %u after slow start", cwnd);
    six_out_head_missing(c, S);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.recoveries, 1);
    cr_assert_eq(i.ssthresh, cwnd * 7 / 10, "ssthresh %u, want 0.7 x %u", i.ssthresh, cwnd);
    sp_peer_ack(1, S + 6000);
    sp_expect_none();
}

/* jktcp_conn_set_congestion mid-connection: the new controller takes
 * over the window in use, and its law applies from the next event (here
 * CUBIC's cut to 0.7 where NewReno would halve the 6-segment flight). */
T(cc_switch_mid_connection_keeps_the_window)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO);
    uint32_t S;
    jktcp_conn *c = sack_peer_warmed(&S);
    cr_assert_eq(jktcp_conn_set_congestion(c, 7), -EINVAL);
    cr_assert_eq(jktcp_conn_set_congestion(c, JKTCP_CC_CUBIC), 0);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.congestion, JKTCP_CC_CUBIC);
    cr_assert_eq(i.cwnd, 30000, "cwnd %u after the switch", i.cwnd);
    six_out_head_missing(c, S);
    cr_assert_eq(sp_info(c).ssthresh, 21000, "ssthresh %u", sp_info(c).ssthresh);
    sp_peer_ack(1, S + 6000);
    sp_expect_none();
    cr_assert_eq(jktcp_conn_close(c), 0);
}

/* RFC 3708 / Linux's undo: the "lost" head was only late. Its resend
 * arrives second and the peer D-SACKs it; every resend of the episode
 * was needless, so the cut is undone (cwnd and ssthresh from before). A
 * D-SACK for data that was never resent (a copy the network made) is no
 * evidence and undoes nothing. */
T(undo_cut_when_dsack_shows_every_resend_needless)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO);
    uint32_t S;
    jktcp_conn *c = sack_peer_warmed(&S);
    for (int round = 0; round < 2; round++) {
        uint32_t before = sp_info(c).cwnd;
        six_out_head_missing(c, S);
        cr_assert_lt(sp_info(c).cwnd, before, "no cut");
        sp_peer_ack(1, S + 6000); /* the original head arrived after all */
        /* round 0: the resend arrives too; round 1: a copy of segment 2,
         * never resent, made by the network */
        uint32_t d = round == 0 ? S : S + 2000;
        const uint32_t dsack[1][2] = {{d, d + 1000}};
        sp_sack_ack(S + 6000, dsack, 1);
        jktcp_info i = sp_info(c);
        if (round == 0) {
            cr_assert_eq(i.spurious, 1, "spurious %u", i.spurious);
            cr_assert_eq(i.undos, 1, "undos %u", i.undos);
            cr_assert_geq(i.cwnd, before, "cwnd %u after the undo, %u before the cut", i.cwnd,
                          before);
        } else {
            cr_assert_eq(i.spurious, 1, "a D-SACK for data never resent counted");
            cr_assert_eq(i.undos, 1, "undone on no evidence");
            cr_assert_lt(i.cwnd, before, "cwnd %u back without evidence", i.cwnd);
        }
        S += 6000;
    }
    sp_expect_none();
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

/* One segment SACKed above a hole, as in rack_single_sack_marks_hole_lost:
 * returns the ms the hole waited before it was resent (1 ms steps). */
static uint32_t reorder_wait_ms(jktcp_conn *c, uint32_t *S)
{
    sp_write_pat(c, *S - 1, 2000);
    sp_brief b[8];
    cr_assert_eq(sp_drain(b, 8), 2);
    const uint32_t blk[1][2] = {{*S + 1000, *S + 2000}};
    sp_sack_ack(*S, blk, 1);
    uint32_t waited;
    const sp_seg *g = sp_wait(200, &waited);
    cr_assert(g && g->seq == *S && g->s.len == 1000, "hole not resent: %s", g ? sp_str(g) : "-");
    sp_peer_ack(1, *S + 2000); /* recovery over */
    sp_expect_none();
    *S += 2000;
    return waited;
}

/* RFC 8985 §6.2 step 4: a D-SACK shows a resend was needless, so the
 * reordering window widens by min_rtt/4 (here 10 ms of a 40 ms path):
 * the next hole waits twice as long before it counts as lost. */
T(rack_dsack_widens_reordering_window)
{
    sp_option(JKTCP_OPT_TAIL_PROBE, 1);
    uint32_t S;
    jktcp_conn *c = sack_peer_40ms(&S);
    uint32_t first = reorder_wait_ms(c, &S);
    cr_assert(first >= 10 && first <= 12, "reordering window %u ms, want min_rtt/4 = 10", first);
    /* the resent segment arrived twice: D-SACK below the cumulative ACK */
    const uint32_t dsack[1][2] = {{S - 2000, S - 1000}};
    sp_sack_ack(S, dsack, 1);
    cr_assert_eq(sp_info(c).dsacks, 1, "D-SACK not counted");
    uint32_t second = reorder_wait_ms(c, &S);
    cr_assert(second >= 20 && second <= 22, "after a D-SACK the window is %u ms, want 20", second);
}

/* RFC 6675 pipe: one ACK reveals three holes among ten segments. With
 * cwnd = FlightSize / 2 and seven segments SACKed, the pipe is empty:
 * all three holes go at once, not one per further duplicate ACK. */
T(sack_pipe_resends_every_hole_at_once)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO); /* its arithmetic is tested */
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

/* RFC 2018 / RFC 6675: retransmit only the holes the peer's SACK shows;
 * never data it SACKed. */
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
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO); /* its arithmetic is tested */
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

/* ---- Targeted cases -------------------------------------------------- */

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

/* ====================================================================== */
/* Garbage SACK blocks (suite hostile)                                    */
/* ====================================================================== */

/* RFC 2018 §8 / RFC 6675: SACK blocks are only advice; garbage ones
 * (reversed, overlapping, below SND.UNA, beyond SND.MAX, wrapping) must
 * not crash the sender or make it send anything at or beyond SND.MAX
 * that was never sent, and retransmissions carry the right bytes. Four
 * blocks on every ACK (no timestamps so that four fit). */
H(huge_sack_lists_garbage_blocks)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 20000);
    hs.sack = true;
    hs.wscale = 0; /* windows exact in bytes */
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 20000);
    uint32_t snd_max = 1;
    const sp_seg *g;
    while ((g = sp_next()) != NULL)
        if (seq_gt(g->seq + g->s.len, snd_max))
            snd_max = g->seq + g->s.len;
    cr_assert_eq(snd_max, 20001, "sent up to %u", snd_max);
    /* keep 5000 bytes unsent: the window limits what is in flight */
    sp_write_pat(c, 20000, 5000);
    sp_expect_none();
    uint64_t rnd = 99;
    uint32_t una = 1;
    for (int k = 0; k < 400; k++) {
        sp_opts o;
        memset(&o, 0, sizeof o);
        o.nsack = 4;
        for (int b = 0; b < 4; b++) {
            rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(rnd >> 32);
            uint32_t l, rr;
            switch ((r >> 28) % 6) {
            case 0: /* reversed */
                l = una + 2000 + r % 10000;
                rr = l - 1 - (r >> 8) % 1000;
                break;
            case 1: /* beyond snd_max */
                l = snd_max + (r % 5000);
                rr = l + 1000 + (r >> 8) % 100000;
                break;
            case 2: /* straddling snd_max */
                l = snd_max - 500;
                rr = snd_max + 500 + r % 1000;
                break;
            case 3: /* below una / huge wrapping */
                l = una - 100000 + r % 1000;
                rr = l + 0x80000000u;
                break;
            case 4: /* overlapping valid-looking */
                l = una + 1000 + (r % 3) * 500;
                rr = l + 1500;
                break;
            default: /* empty */
                l = rr = una + 3000;
                break;
            }
            o.sack[b].left = l;
            o.sack[b].right = rr;
        }
        if (k % 40 == 39 && seq_lt(una, 20001))
            una += 1000; /* progress now and then */
        sp_send(JK_ACK, 1, una, 20000, NULL, 0, &o);
        if (k % 10 == 0)
            sp_advance_ms(250);
        while ((g = sp_next()) != NULL) {
            if (!g->s.len)
                continue;
            uint32_t end = g->seq + g->s.len;
            cr_assert(seq_ge(g->seq, una) || seq_gt(end, una), "retransmitted acked data: %s",
                      sp_str(g));
            if (seq_gt(end, snd_max)) {
                /* only new data within the window may extend snd_max */
                cr_assert(seq_le(end, una + 20000) && seq_le(end, 25001),
                          "sent beyond the window / the data: %s", sp_str(g));
                cr_assert(seq_le(g->seq, snd_max), "sent data beyond SND.MAX (%u) that skips "
                          "unsent bytes: %s", snd_max, sp_str(g));
                snd_max = end;
            }
            sp_assert_payload(g, g->seq - 1);
        }
    }
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    /* A clean cumulative ACK of everything still works. */
    sp_send(JK_ACK, 1, snd_max, 65535, NULL, 0, NULL);
    uint32_t acked = snd_max;
    while (seq_lt(acked, 25001)) {
        g = wait_seg(5000, NULL);
        cr_assert(g, "stalled at %u", acked);
        if (!g->s.len)
            continue;
        sp_assert_payload(g, g->seq - 1);
        if (seq_gt(g->seq + g->s.len, acked))
            acked = g->seq + g->s.len;
        sp_send(JK_ACK, 1, acked, 65535, NULL, 0, NULL);
    }
    cr_assert_eq(sp_info(c).bytes_sent, 25000);
    cr_assert_eq(sp_info(c).bytes_queued, 0);
}
