/* SPDX-License-Identifier: MIT */
/*
 * RACK per resend (RFC 8985 §6.2, lib/tcp_rack.c): a retransmission that
 * is lost again is found by time — something sent after it arrived, and
 * a round trip plus the reordering window passed — and goes again at
 * once, not when the repair pass has come round.
 *
 * Suite `scripted` (T): the macros are in tcp_test.h. Relative sequence
 * numbers as in scripted.h: the SYN is seq 0, the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

#include <string.h>

/* Collect the data segments the adapter sends now: a bit per segment
 * index (seq - S) / 1000; each at most once. */
static uint32_t resent_mask(uint32_t S)
{
    uint32_t seen = 0;
    const sp_seg *g;
    while ((g = sp_next()) != NULL) {
        cr_assert(g->s.len == 1000, "%s", sp_str(g));
        sp_assert_payload(g, g->seq - 1);
        uint32_t k = (g->seq - S) / 1000;
        cr_assert(k < 32 && !(seen & (1u << k)), "segment %u sent twice", k);
        seen |= 1u << k;
    }
    return seen;
}

/* Twenty segments out, the first twelve lost. cwnd (half the flight)
 * lets ten resends go; then the peer SACKs resends 2..9 — resends 0 and 1,
 * sent before them, were lost again. The head (0) has its own rule; 1 is
 * RACK's: it goes now with the pass's last two holes (10, 11). Without
 * RACK per resend, 1 waited until the pass was over and a round trip had
 * passed since its last resend. */
T(rack_lost_resend_goes_again_before_the_pass_ends)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO); /* a window we can count */
    uint32_t S;
    jktcp_conn *c = sack_peer_warmed(&S);
    sp_write_pat(c, S - 1, 20000);
    sp_brief b[32];
    cr_assert_eq(sp_drain(b, 32), 20);
    const uint32_t blk[1][2] = {{S + 12000, S + 20000}};
    sp_sack_ack(S, blk, 1);
    cr_assert_eq(resent_mask(S), 0x3ffu, "the first pass: segments 0..9");
    cr_assert_eq(sp_info(c).cwnd, 10000);
    sp_advance_ms(5);
    const uint32_t blk2[2][2] = {{S + 2000, S + 10000}, {S + 12000, S + 20000}};
    sp_sack_ack(S, blk2, 2);
    uint32_t seen = resent_mask(S);
    cr_assert_eq(seen, 0xc03u, "resent %#x: want 0, 1 (lost again) and 10, 11 (the pass)", seen);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.timeouts, 0);
    cr_assert_eq(i.recoveries, 1);
    sp_peer_ack(1, S + 20000);
    sp_expect_none();
}

/* On a 40 ms path (reordering window min_rtt/4 = 10 ms) a resend that a
 * later one overtook waits its round trip and the window — 50 ms from
 * when it went — and then goes without any further ACK (the RACK timer),
 * long before the RTO. The peer here SACKs resends 2 and 3 of 0..4 a
 * round trip after they went; 0 and 1 were lost again. */
T(rack_lost_resend_waits_rtt_and_reordering_window)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO);
    uint32_t S;
    jktcp_conn *c = sack_peer_40ms(&S);
    sp_write_pat(c, S - 1, 10000);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 10);
    const uint32_t blk[1][2] = {{S + 6000, S + 10000}}; /* 0..5 lost */
    sp_sack_ack(S, blk, 1);
    cr_assert_eq(resent_mask(S), 0x1fu, "the pass within cwnd 5000: segments 0..4");
    sp_advance_ms(40);
    const uint32_t blk2[2][2] = {{S + 2000, S + 4000}, {S + 6000, S + 10000}};
    sp_sack_ack(S, blk2, 2);
    cr_assert_eq(resent_mask(S), 0x20u, "the pass goes on with segment 5 only");
    uint32_t waited;
    const sp_seg *g = sp_wait(500, &waited);
    cr_assert(g, "nothing resent");
    cr_assert(waited >= 9 && waited <= 12, "resent after %u ms, want 10 (50 ms after it went)",
              waited);
    uint32_t seen = 1u << ((g->seq - S) / 1000);
    seen |= resent_mask(S);
    cr_assert_eq(seen, 0x3u, "resent %#x: want 0 and 1", seen);
    cr_assert_eq(sp_info(c).timeouts, 0, "the RTO fired");
    sp_peer_ack(1, S + 10000);
    sp_expect_none();
}

/* The pipe is alive while SACKs keep coming: each ACK that SACKs new data
 * in recovery restarts the retransmission timer, so a lost resend of the
 * head is found by RACK (a round trip after it went, data sent later
 * having arrived), never by a timeout that would collapse the window to
 * one segment (RFC 8985 §6.3: the RTO is the last resort). Here the
 * peer SACKs one segment every half RTO for eight RTOs. */
T(rack_no_timeout_while_sacks_show_the_pipe_alive)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO);
    uint32_t S;
    jktcp_conn *c = sack_peer_warmed(&S);
    sp_write_pat(c, S - 1, 20000);
    sp_brief b[32];
    cr_assert_eq(sp_drain(b, 32), 20);
    const uint32_t blk[1][2] = {{S + 1000, S + 4000}};
    sp_sack_ack(S, blk, 1); /* recovery: the head goes again (and is lost again) */
    sp_drain(b, 32);
    uint32_t rto_ms = sp_info(c).rto_us / 1000;
    cr_assert(rto_ms >= 4, "rto %u ms", rto_ms);
    int head_resends = 0;
    for (uint32_t k = 4; k < 20; k++) {
        sp_advance_ms(rto_ms / 2);
        const uint32_t more[1][2] = {{S + 1000, S + 1000 * (k + 1)}};
        sp_sack_ack(S, more, 1);
        int n = sp_drain(b, 32);
        for (int j = 0; j < n; j++)
            head_resends += b[j].seq == S;
        jktcp_info i = sp_info(c);
        cr_assert_eq(i.timeouts, 0, "a timeout %u ms into the SACKs", (k - 3) * rto_ms / 2);
        cr_assert(i.cwnd >= 2000, "cwnd %u: collapsed", i.cwnd);
    }
    cr_assert(head_resends >= 1, "the lost head was never resent");
    sp_peer_ack(1, S + 20000);
}

/* NewReno (a window we can count) on the 40 ms SACK path, with the tail
 * probe on: RACK's reordering timer comes with it. */
static jktcp_conn *rack_path_40ms(uint32_t *S)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO);
    sp_option(JKTCP_OPT_TAIL_PROBE, 1);
    return sack_peer_40ms(S);
}

/* A round trip after segments 0 and 1 went, the peer SACKs 1 only. */
static void sack_second_segment(uint32_t S)
{
    sp_advance_ms(40);
    const uint32_t blk[1][2] = {{S + 1000, S + 2000}};
    sp_sack_ack(S, blk, 1);
}

/* g is segment 0 resent, in the connection's one recovery; then both
 * arrive and nothing more goes. */
static void head_resent_in_one_recovery(jktcp_conn *c, uint32_t S, const sp_seg *g)
{
    cr_assert_eq(g->seq, S, "%s", sp_str(g));
    cr_assert_eq(sp_info(c).recoveries, 1);
    sp_peer_ack(1, S + 2000);
    sp_expect_none();
}

/* RACK by send time for new data (RFC 8985 §6.2 step 5, the sent list):
 * on a 40 ms path (reordering window 10 ms) segment 0 goes, the
 * application writes segment 1 20 ms later, and the peer SACKs 1 only. 0
 * went 20 ms before 1, whose round trip was 40 ms: 0 has had its round
 * trip and more than the window, so it is lost now and goes at once.
 * Without send times the hole waited the reordering window from the SACK. */
T(rack_hole_sent_well_before_the_sacked_data_is_lost_at_once)
{
    uint32_t S;
    jktcp_conn *c = rack_path_40ms(&S);
    sp_write_pat(c, S - 1, 1000);
    sp_expect(JK_ACK, S, 1, 1000);
    sp_advance_ms(20);
    sp_write_pat(c, S - 1 + 1000, 1000);
    sp_expect(JK_ACK, S + 1000, 1, 1000);
    sack_second_segment(S);
    const sp_seg *g = sp_next();
    cr_assert(g, "segment 0 not resent on the SACK");
    cr_assert_eq(g->s.len, 1000);
    head_resent_in_one_recovery(c, S, g);
}

/* The same, but both segments went together: 0 may only be late (the
 * network reordered them), so it waits the reordering window from the
 * SACK — 10 ms — before it counts as lost and goes again. */
T(rack_hole_sent_with_the_sacked_data_waits_the_window)
{
    uint32_t S;
    jktcp_conn *c = rack_path_40ms(&S);
    sp_write_pat(c, S - 1, 2000);
    sp_expect(JK_ACK, S, 1, 1000);
    sp_expect(JK_ACK, S + 1000, 1, 1000);
    sack_second_segment(S);
    uint32_t waited;
    const sp_seg *g = sp_wait(100, &waited);
    cr_assert(g, "segment 0 never resent");
    cr_assert(waited >= 9 && waited <= 12, "resent after %u ms, want the 10 ms window", waited);
    head_resent_in_one_recovery(c, S, g);
}

/* The reordering timer belongs to the hole it was armed for. A SACK shows
 * segment 0 missing (timer for 10 ms later); 0 arrives 2 ms later (the
 * cumulative ACK moves: the timer goes); 7 ms after that a SACK shows 2
 * missing, sent with 3 in one burst, so 2 has its own 10 ms. 2 arrives
 * 3 ms later. Nothing was lost: no recovery, no resend. (Before, the
 * first hole's timer fired at 10 ms and took 2 for lost: a needless cut.) */
T(rack_timer_is_for_the_hole_it_was_armed_for)
{
    uint32_t S;
    jktcp_conn *c = rack_path_40ms(&S);
    sp_write_pat(c, S - 1, 4000);
    sp_brief b[8];
    cr_assert_eq(sp_drain(b, 8), 4);
    sp_advance_ms(40);
    const uint32_t blk[1][2] = {{S + 1000, S + 2000}};
    sp_sack_ack(S, blk, 1);
    sp_expect_none();
    sp_advance_ms(2);
    sp_peer_ack(1, S + 2000); /* 0 was only late */
    sp_advance_ms(7);
    const uint32_t blk2[1][2] = {{S + 3000, S + 4000}};
    sp_sack_ack(S + 2000, blk2, 1);
    sp_advance_ms(3);
    sp_expect_none();
    sp_peer_ack(1, S + 4000);
    cr_assert_eq(sp_info(c).recoveries, 0, "a needless recovery");
    cr_assert_eq(sp_info(c).retransmits, 0);
    sp_expect_none();
}
