/* SPDX-License-Identifier: MIT */
/*
 * Receiving data: in-order delivery and ACKs, the receive window and its
 * updates (SWS avoidance), out-of-order data and SACK blocks (RFC 2018),
 * D-SACK (RFC 2883), delayed ACKs (RFC 1122 §4.2.3.2, RFC 5681 §4.2),
 * duplicates, overlaps and conflicting retransmissions, data after a FIN,
 * URG (RFC 6093).
 *
 * Suites `scripted` (T, T6), `hostile` (H, H6): the macros are in
 * tcp_test.h. Relative sequence numbers as in scripted.h: the SYN is seq 0,
 * the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

/* ====================================================================== */
/* Data: receiving                                                        */
/* ====================================================================== */

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

/* ---- Targeted cases -------------------------------------------------- */

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

/* ====================================================================== */
/* Conflicting / overlapping data from the peer (suite hostile)           */
/* ====================================================================== */

/* Byte i of the stream in the alternative pattern. */
static uint8_t alt_byte(size_t i) { return (uint8_t)~sp_pat(i)[0]; }

/* Data already delivered in order and then retransmitted with different
 * bytes: the first copy wins (the old part is trimmed, RFC 9293
 * §3.10.7.4); the new part of the overlapping segment is taken. */
H(conflicting_retransmission_of_delivered_data_first_wins)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    /* [51, 151) with other bytes: [51, 101) conflicts, [101, 151) is new */
    sp_send(JK_ACK | JK_PSH, 51, 1, SP_WND, alt_pat(0) + 50, 100, NULL);
    sp_expect(JK_ACK, 1, 151, 0);
    uint8_t buf[200];
    cr_assert_eq(sp_read_now(c, buf, sizeof buf), 150);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(buf[i], sp_pat(i)[0], "delivered byte %zu was overwritten", i);
    for (size_t i = 100; i < 150; i++)
        cr_assert_eq(buf[i], alt_byte(i), "new byte %zu of the overlapping segment", i);
}

/* Out-of-order islands overlapping each other with conflicting bytes,
 * then the hole filled by a segment that overlaps the first island with
 * conflicting bytes too. Non-conflicting bytes must be exact; in each
 * conflicting range every byte must come from one copy (no mixing within
 * the range). Documented behaviour (observed): out-of-order data is
 * written in place, so for overlaps among held (not yet delivered) data
 * the LAST copy received wins; bytes already delivered in order are
 * never rewritten (first wins, see the previous test). */
H(conflicting_overlapping_out_of_order_data)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    /* island A: [1001, 2001) pattern */
    sp_peer_data(1001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    /* island B: [1501, 2501) alternative bytes; [1501, 2001) conflicts */
    sp_send(JK_ACK | JK_PSH, 1501, 1, SP_WND, alt_pat(0) + 1500, 1000, NULL);
    sp_expect(JK_ACK, 1, 1, 0);
    /* filler F: [1, 1201) alternative bytes; [1001, 1201) conflicts with A */
    sp_send(JK_ACK | JK_PSH, 1, 1, SP_WND, alt_pat(0), 1200, NULL);
    sp_expect(JK_ACK, 1, 2501, 0);
    static uint8_t buf[3000];
    cr_assert_eq(sp_read_now(c, buf, sizeof buf), 2500);
    /* non-conflicting: [0, 1000) only F; [1200, 1500) only A; [2000, 2500) only B */
    for (size_t i = 0; i < 1000; i++)
        cr_assert_eq(buf[i], alt_byte(i), "byte %zu (only in the filler) corrupted", i);
    for (size_t i = 1200; i < 1500; i++)
        cr_assert_eq(buf[i], sp_pat(i)[0], "byte %zu (only in island A) corrupted", i);
    for (size_t i = 2000; i < 2500; i++)
        cr_assert_eq(buf[i], alt_byte(i), "byte %zu (only in island B) corrupted", i);
    /* conflicting ranges: one copy each, no mixing */
    bool fa = buf[1000] == sp_pat(1000)[0];
    for (size_t i = 1000; i < 1200; i++)
        cr_assert(buf[i] == (fa ? sp_pat(i)[0] : alt_byte(i)),
                  "byte %zu of the A/filler overlap mixes copies", i);
    bool ab = buf[1500] == sp_pat(1500)[0];
    for (size_t i = 1500; i < 2000; i++)
        cr_assert(buf[i] == (ab ? sp_pat(i)[0] : alt_byte(i)),
                  "byte %zu of the A/B overlap mixes copies", i);
    cr_log_info("overlap A(first)/filler(later): %s wins; A(first)/B(later): %s wins",
                fa ? "first" : "last", ab ? "first" : "last");
    /* the observed (documented) behaviour: the last copy wins */
    cr_expect(!fa && !ab, "documented: the last copy of held data wins (A/F %s, A/B %s)",
              fa ? "first" : "last", ab ? "first" : "last");
}

/* RFC 9293 §3.10.7.4 (seventh, CLOSE-WAIT etc.): text after the FIN is
 * ignored; read returns the pre-FIN data, then 0. */
H(data_after_fin_ignored)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_send(JK_ACK | JK_FIN, 101, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 102, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSE_WAIT);
    /* after the FIN, and overlapping the FIN's sequence number */
    sp_send(JK_ACK | JK_PSH, 102, 1, SP_WND, alt_pat(0), 200, NULL);
    sp_next();
    sp_send(JK_ACK | JK_PSH, 101, 1, SP_WND, alt_pat(0), 50, NULL);
    sp_next();
    sp_send(JK_ACK | JK_PSH | JK_FIN, 302, 1, SP_WND, alt_pat(0), 20, NULL);
    sp_next();
    sp_expect_none();
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.state, JKTCP_CLOSE_WAIT);
    cr_assert_eq(i.bytes_received, 100, "bytes after the FIN were taken: %llu",
                 (unsigned long long)i.bytes_received);
    static uint8_t buf[1000];
    cr_assert_eq(sp_read_now(c, buf, sizeof buf), 100);
    for (size_t k = 0; k < 100; k++)
        cr_assert_eq(buf[k], sp_pat(k)[0]);
    cr_assert_eq(jktcp_conn_read(c, buf, sizeof buf, 0), 0, "read after the FIN's data");
    cr_assert_eq(jktcp_conn_read(c, buf, sizeof buf, 0), 0);
}

/* FIN held out of order, then more data beyond the FIN's sequence
 * number: only the data before the FIN is delivered, then EOF. */
H(data_beyond_out_of_order_fin_ignored)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    /* FIN at 201 (data [101, 201) + FIN), held: [1, 101) missing */
    sp_send(JK_ACK | JK_FIN | JK_PSH, 101, 1, SP_WND, sp_pat(100), 100, NULL);
    sp_expect(JK_ACK, 1, 1, 0);
    /* data after the FIN */
    sp_send(JK_ACK | JK_PSH, 202, 1, SP_WND, alt_pat(0), 100, NULL);
    while (sp_next())
        ;
    sp_peer_data(1, 1, 100);
    const sp_seg *g = sp_expect_any();
    cr_assert(g->ack == 202 && (g->s.flags & JK_ACK), "expected ACK of the FIN (202): %s",
              sp_str(g));
    while (sp_next())
        ;
    static uint8_t buf[1000];
    cr_assert_eq(sp_read_now(c, buf, sizeof buf), 200);
    for (size_t k = 0; k < 200; k++)
        cr_assert_eq(buf[k], sp_pat(k)[0], "byte %zu", k);
    cr_assert_eq(jktcp_conn_read(c, buf, sizeof buf, 0), 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSE_WAIT);
}

/* RFC 9293 §3.8.5 / RFC 6093: URG is obsolete for new applications; the
 * data of a segment with URG and an urgent pointer is delivered inline
 * like any other. */
H(urgent_data_delivered_inline)
{
    jktcp_conn *c = sp_connect(NULL);
    static uint8_t f[2048];
    const uint16_t urps[] = { 1, 50, 100, 65535, 0 };
    uint32_t seq = 1;
    for (size_t k = 0; k < sizeof urps / sizeof urps[0]; k++) {
        size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH | JK_URG, seq, 1, SP_WND,
                            sp_pat(seq - 1), 100, NULL);
        f[20 + 18] = (uint8_t)(urps[k] >> 8);
        f[20 + 19] = (uint8_t)urps[k];
        sp_fix_checksums(f, n);
        sp_push_raw(f, n);
        seq += 100;
        sp_expect(JK_ACK, 1, seq, 0);
    }
    /* urgent pointer without URG set: ignored */
    size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH, seq, 1, SP_WND, sp_pat(seq - 1), 100, NULL);
    f[20 + 18] = 0x12;
    f[20 + 19] = 0x34;
    sp_fix_checksums(f, n);
    sp_push_raw(f, n);
    seq += 100;
    sp_expect(JK_ACK, 1, seq, 0);
    sp_read_expect(c, 0, seq - 1);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
}
