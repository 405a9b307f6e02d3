/* SPDX-License-Identifier: MIT */
/*
 * Keep-alives (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): answered, sent when
 * idle and enabled, off by default, and the connection they end.
 *
 * Suite `scripted` (T, T6): the macros are in tcp_test.h. Relative sequence
 * numbers as in scripted.h: the SYN is seq 0, the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp_test.h"

/* ====================================================================== */
/* Keepalive                                                              */
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

/* ---- Targeted cases -------------------------------------------------- */

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
