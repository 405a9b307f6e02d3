/* SPDX-License-Identifier: MIT */
/*
 * Proportional Rate Reduction (RFC 6937, lib/tcp_prr.c): the window
 * during SACK recovery for NewReno and CUBIC.
 *
 * Suite `scripted` (T): the macros are in tcp_test.h. Relative sequence
 * numbers as in scripted.h: the SYN is seq 0, the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

#include <string.h>

/* New data segments sent now (each at snd_max in order from *next). */
static int new_segments(uint32_t *next)
{
    int n = 0;
    const sp_seg *g;
    while ((g = sp_next()) != NULL) {
        cr_assert(g->s.len == 1000 && g->seq == *next, "want new data at %u: %s", *next, sp_str(g));
        sp_assert_payload(g, g->seq - 1);
        *next += 1000;
        n++;
    }
    return n;
}

/* The peer holds segment 0 back (lost) and SACKs 1..k, one per ACK. */
static void sack_up_to(uint32_t S, uint32_t k)
{
    const uint32_t blk[1][2] = {{S + 1000, S + 1000 * (k + 1)}};
    sp_sack_ack(S, blk, 1);
}

/* 30 segments in flight (cwnd 30,000), more queued; segment 0 lost and
 * the rest SACKed one per ACK. Before recovery each SACK lets a new
 * segment go (the pipe fell by one); the third SACK begins recovery with
 * 32 segments out: ssthresh 16,000, RecoverFS 32,000. While the pipe is
 * above ssthresh PRR sends ssthresh/RecoverFS = one segment per two ACKs
 * (RFC 6937 §3: sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) -
 * prr_out; the head's resend counts in prr_out): after ACKs 6, 8, 10 ...
 * The old rule (cwnd = ssthresh at once) sent nothing until the pipe had
 * drained below 16,000, 14 ACKs later. Once the pipe is down to ssthresh,
 * PRR-SSRB sends what each ACK delivered and no more. */
T(prr_sends_one_segment_per_two_acks_after_a_halving)
{
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO);
    uint32_t S;
    jktcp_conn *c = sack_peer_warmed(&S);
    sp_write_pat(c, S - 1, 30000);
    sp_brief b[40];
    cr_assert_eq(sp_drain(b, 40), 30);
    sp_write_pat(c, S - 1 + 30000, 40000);
    cr_assert_eq(sp_info(c).bytes_queued, 70000);
    uint32_t next = S + 30000;
    sack_up_to(S, 1);
    cr_assert_eq(new_segments(&next), 1, "a SACK before recovery frees one segment");
    sack_up_to(S, 2);
    cr_assert_eq(new_segments(&next), 1);
    sack_up_to(S, 3); /* recovery: the head goes again */
    sp_assert_payload(sp_expect(JK_ACK, S, 1, 1000), S - 1);
    sp_expect_none();
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.recoveries, 1);
    cr_assert_eq(i.ssthresh, 16000, "ssthresh %u, want half of 32 segments", i.ssthresh);
    for (uint32_t k = 4; k <= 25; k++) {
        sack_up_to(S, k);
        int want = k >= 6 && k % 2 == 0;
        int got = new_segments(&next);
        cr_assert_eq(got, want, "ACK %u (pipe above ssthresh): %d new segments, want %d", k, got,
                     want);
    }
    /* ACK 26 brings the pipe down to ssthresh (42 out, 26 SACKed): from
     * here PRR-SSRB keeps it there, one segment per ACK that delivered one */
    for (uint32_t k = 26; k <= 29; k++) {
        sack_up_to(S, k);
        int got = new_segments(&next);
        cr_assert_eq(got, k > 26, "ACK %u (pipe at ssthresh): %d new segments", k, got);
    }
    sp_peer_ack(1, next); /* the head's resend arrived: recovery over */
    i = sp_info(c);
    cr_assert(i.cwnd <= 16000, "cwnd %u after recovery, want at most ssthresh", i.cwnd);
    cr_assert_eq(i.timeouts, 0);
}
