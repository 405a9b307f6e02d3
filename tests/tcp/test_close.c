/* SPDX-License-Identifier: MIT */
/*
 * Closing (RFC 9293 §3.6, §3.10.7.4): the passive and the active close,
 * FIN retransmission, TIME_WAIT, simultaneous close, FIN out of order,
 * graceful close and shutdown with data queued, abort (§3.10.5), close
 * with unread data (RFC 1122 §4.2.2.13).
 *
 * Suite `scripted` (T, T6): the macros are in tcp_test.h. Relative sequence
 * numbers as in scripted.h: the SYN is seq 0, the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp_test.h"

#include <string.h>

/* ====================================================================== */
/* Close (RFC 9293 §3.6, §3.10.7.4)                                       */
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

/* ---- More state-machine cases ---------------------------------------- */

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

/* ---- Targeted cases -------------------------------------------------- */

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
