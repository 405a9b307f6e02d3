/* SPDX-License-Identifier: MIT */
/*
 * Sending data: segments sized by the peer's MSS, the initial window and
 * slow start (RFC 5681, RFC 6928), the peer's window (scaled, RFC 7323
 * §2.3; zero: persist probes, RFC 9293 §3.8.6.1 and RFC 1122 §4.2.2.17;
 * shrinking, RFC 1122 §4.2.2.16), the send buffer, Nagle, old ACKs, two
 * connections at once.
 *
 * Suites `scripted` (T, T6), `hostile` (H, H6): the macros are in
 * tcp_test.h. Relative sequence numbers as in scripted.h: the SYN is seq 0,
 * the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

/* ====================================================================== */
/* Data: sending                                                          */
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

/* RFC 1122 §4.2.2.17 / RFC 9293 §3.8.6.1: the peer keeps its window
 * closed for half an hour but answers every probe: probes keep coming
 * with backoff up to RTO_MAX, the connection never dies, and once the
 * window opens the queued data goes out intact. */
H(zero_window_forever_probes_back_off_never_die)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 1000);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 1000);
    sp_expect(JK_ACK, 1, 1, 1000);
    sp_peer_ackw(1, 1001, 0);
    sp_write_pat(c, 1000, 3000);
    sp_expect_none();
    uint64_t total = 0, prev = 0, maxgap = 0;
    unsigned probes = 0;
    while (total < 30ull * 60 * 1000) {
        uint64_t e;
        const sp_seg *g = wait_seg(200000, &e);
        cr_assert(g, "no probe for 200 s after %u probes (t=%llu ms)", probes,
                  (unsigned long long)total);
        total += e;
        cr_assert(!(g->s.flags & JK_RST), "connection reset while the peer answers probes "
                  "(RFC 1122 §4.2.2.17): %s", sp_str(g));
        cr_assert(g->s.len <= 1, "more than one byte sent into a zero window: %s", sp_str(g));
        if (g->s.len == 1)
            sp_assert_payload(g, g->seq - 1);
        if (probes >= 1 && prev < 30000)
            cr_assert(e + 1 >= prev, "probe interval shrank from %llu to %llu ms",
                      (unsigned long long)prev, (unsigned long long)e);
        cr_assert(e <= 60000 + 1000, "probe interval %llu ms above RTO_MAX",
                  (unsigned long long)e);
        if (e > maxgap)
            maxgap = e;
        prev = e;
        probes++;
        sp_peer_ackw(1, 1001, 0);
        while ((g = sp_next()) != NULL)
            cr_assert(g->s.len <= 1 && !(g->s.flags & JK_RST), "%s", sp_str(g));
    }
    cr_assert(probes >= 30, "only %u probes in 30 minutes", probes);
    cr_assert(maxgap >= 30000, "probe interval never backed off beyond %llu ms",
              (unsigned long long)maxgap);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    cr_assert_eq(jktcp_conn_error(c), 0);
    /* The window opens: everything queued arrives, in order and intact. */
    uint32_t acked = 1001;
    sp_peer_ackw(1, acked, 4000);
    while (acked < 4001) {
        const sp_seg *g = wait_seg(5000, NULL);
        cr_assert(g, "data stalled at %u after the window opened", acked);
        if (!g->s.len)
            continue;
        cr_assert(seq_le(g->seq, acked), "gap: segment at %u, acked %u", g->seq, acked);
        sp_assert_payload(g, g->seq - 1);
        if (seq_gt(g->seq + g->s.len, acked))
            acked = g->seq + g->s.len;
        sp_peer_ackw(1, acked, 4000);
    }
}

/* ---- More data-path cases -------------------------------------------- */

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

/* ---- Targeted cases -------------------------------------------------- */

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

/* ====================================================================== */
/* Windows that never open or shrink (suite hostile)                      */
/* ====================================================================== */

/* RFC 1122 §4.2.2.16: a sender MUST be robust against window shrinking
 * and SHOULD NOT send new data beyond the (new) right edge. The peer's
 * right edge moves left and right at random; no new byte is ever sent
 * beyond the right edge of the last window seen, and the stream completes
 * intact. */
H(window_shrinking_never_sends_new_data_beyond_edge)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(500, 8000);
    jktcp_conn *c = sp_connect(&hs);
    const uint32_t total = 40000;
    sp_write_pat(c, 0, total);
    uint32_t una = 1, snd_max = 1, edge = 1 + 8000;
    uint64_t rnd = 12345;
    int rounds = 0;
    while (seq_lt(una, 1 + total)) {
        cr_assert(rounds++ < 20000, "no progress: una %u", una);
        const sp_seg *g;
        while ((g = sp_next()) != NULL) {
            if (!g->s.len)
                continue;
            uint32_t end = g->seq + g->s.len;
            if (seq_gt(end, snd_max)) {
                /* new data: within the latest right edge (a 1-byte zero
                 * window probe excepted) */
                cr_assert(seq_le(end, edge) || (g->s.len == 1 && seq_ge(g->seq, edge)),
                          "new data up to %u beyond the right edge %u: %s", end, edge,
                          sp_str(g));
                snd_max = end;
            }
            sp_assert_payload(g, g->seq - 1);
        }
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(rnd >> 33);
        /* advance una by up to what was sent, window 0..6000 */
        uint32_t adv = (snd_max - una) ? r % (snd_max - una + 1) : 0;
        if (r & 0x100000)
            adv = 0; /* pure window change */
        una += adv;
        uint32_t wnd = (r >> 8) % 6001;
        if ((r & 7) == 0)
            wnd = 0;
        if (rounds % 50 == 0)
            wnd = 6000;
        sp_peer_ackw(1, una, wnd);
        edge = una + wnd;
        if (una == snd_max && wnd == 0) {
            /* probes: answer them */
            sp_advance_ms(2000);
        } else if (adv == 0) {
            sp_advance_ms(300); /* let retransmissions happen */
        }
    }
    sp_expect_none();
    cr_assert_eq(sp_info(c).bytes_sent, total);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
}
