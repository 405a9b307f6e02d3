/* SPDX-License-Identifier: MIT */
/*
 * Timestamps (RFC 7323): which TSval is echoed (§4.3), PAWS (§5), segments
 * without the option once it was negotiated.
 *
 * Suite `scripted` (T, T6): the macros are in tcp_test.h. Relative sequence
 * numbers as in scripted.h: the SYN is seq 0, the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp_test.h"

#include <string.h>

/* ====================================================================== */
/* Timestamps (RFC 7323)                                                  */
/* ====================================================================== */

static sp_opts ts_opts(uint32_t tsval)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.ts_set = true;
    o.tsval = tsval;
    o.tsecr = sp.f.ts_recent;
    return o;
}

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

/* ---- Targeted cases -------------------------------------------------- */

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
