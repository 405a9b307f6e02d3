/* SPDX-License-Identifier: MIT */
/*
 * Spurious timeouts found by timestamps (RFC 3522 detection, RFC 4015
 * response; lib/tcp_recovery.c jk_tcp_eifel_*): the ACK after a timeout
 * echoes the TSval of what the peer received. From before the timeout:
 * the original arrived late, the window comes back. The resend's own:
 * the loss was real, the cut stays. (Undo by D-SACK is in
 * test_recovery.c.)
 *
 * Suite `scripted` (T): the macros are in tcp_test.h. Relative sequence
 * numbers as in scripted.h: the SYN is seq 0, the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

#include <string.h>

struct rto_case {
    jktcp_conn *c;
    uint32_t S;            /* first byte of the 5 segments the timeout hit */
    uint32_t cwnd, ssthresh; /* before the timeout */
    uint32_t orig_tsval, resend_tsval;
};

/* A timestamp peer (segments of 1000 bytes), slow start warmed; five segments go out,
 * nothing comes back, the RTO resends the first one. */
static struct rto_case timeout_hits_five(void)
{
    struct rto_case k;
    sp_option(JKTCP_OPT_CONGESTION, JKTCP_CC_NEWRENO); /* a window we can count */
    sp_hs hs = SP_HS_DEFAULT;
    hs.mss = 1012; /* 1000 bytes of data beside the timestamp option */
    k.c = sp_connect(&hs);
    cr_assert(sp.f.ts, "timestamps not negotiated");
    k.S = 1;
    transfer_acked(k.c, &k.S, 20000);
    jktcp_info i = sp_info(k.c);
    k.cwnd = i.cwnd;
    k.ssthresh = i.ssthresh;
    sp_write_pat(k.c, k.S - 1, 5000);
    const sp_seg *g = sp_next();
    cr_assert(g && g->seq == k.S && g->s.opt.has_ts, "first segment: %s", g ? sp_str(g) : "-");
    k.orig_tsval = g->s.opt.tsval;
    sp_brief b[8];
    cr_assert_eq(sp_drain(b, 8), 4);
    uint64_t waited;
    g = wait_seg(5000, &waited);
    cr_assert(g && g->seq == k.S && g->s.len == 1000, "the RTO's resend: %s", g ? sp_str(g) : "-");
    k.resend_tsval = g->s.opt.tsval;
    cr_assert(seq_gt(k.resend_tsval, k.orig_tsval), "TSval %u after %u", k.resend_tsval,
              k.orig_tsval);
    sp_expect_none();
    i = sp_info(k.c);
    cr_assert_eq(i.timeouts, 1);
    cr_assert_eq(i.cwnd, 1000, "cwnd %u after the timeout, want one segment", i.cwnd);
    return k;
}

/* The peer acknowledges all five, echoing tsecr. */
static void ack_five(const struct rto_case *k, uint32_t tsecr)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.ts_set = true;
    o.tsval = sp.f.peer_ts_max + 1;
    o.tsecr = tsecr;
    sp_send(JK_ACK, 1, k->S + 5000, SP_WND, NULL, 0, &o);
}

/* The ACK echoes the original's TSval: the timeout was needless. The
 * window from before it is back and ten segments go at once. */
T(eifel_spurious_timeout_restores_the_window)
{
    struct rto_case k = timeout_hits_five();
    ack_five(&k, k.orig_tsval);
    jktcp_info i = sp_info(k.c);
    cr_assert_eq(i.spurious_rtos, 1, "spurious timeout not seen");
    cr_assert_eq(i.undos, 1);
    cr_assert(i.cwnd >= k.cwnd, "cwnd %u, was %u before the timeout", i.cwnd, k.cwnd);
    cr_assert_eq(i.ssthresh, k.ssthresh, "ssthresh %u, was %u", i.ssthresh, k.ssthresh);
    sp_write_pat(k.c, k.S + 5000 - 1, 10000);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 10, "the restored window sends all ten");
}

/* The ACK echoes the resend's TSval: the original was lost, the timeout
 * was right and its cut stays (slow start from one segment). */
T(eifel_genuine_timeout_keeps_the_cut)
{
    struct rto_case k = timeout_hits_five();
    ack_five(&k, k.resend_tsval);
    jktcp_info i = sp_info(k.c);
    cr_assert_eq(i.spurious_rtos, 0);
    cr_assert_eq(i.undos, 0);
    cr_assert(i.cwnd < k.cwnd / 2, "cwnd %u, was %u before the timeout", i.cwnd, k.cwnd);
    cr_assert(i.ssthresh < k.cwnd, "ssthresh %u not cut", i.ssthresh);
    sp_write_pat(k.c, k.S + 5000 - 1, 10000);
    sp_brief b[16];
    int n = sp_drain(b, 16);
    cr_assert(n < 10, "%d segments at once after a real timeout", n);
}
