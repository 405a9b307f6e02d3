/* SPDX-License-Identifier: MIT */
/*
 * Resets: the RST a closed port or a listener sends (RFC 9293 §3.10.7.1,
 * §3.10.7.2, suite `listen`: what a listener answers to segments that are
 * not a plain SYN), the RSTs we accept in each synchronized state, and the
 * blind-reset defence of RFC 5961 §3 (an in-window but inexact RST gets a
 * challenge ACK; one outside the window is dropped).
 *
 * Suites `scripted` (T, T6), `hostile` (H, H6), `listen` (L, L6): the macros
 * are in tcp_test.h. Relative sequence numbers as in scripted.h: the SYN is
 * seq 0, the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

#include <string.h>

/* ====================================================================== */
/* Resets sent and received                                               */
/* ====================================================================== */

/* ---- segments for no connection (RFC 9293 §3.10.7.1 / §3.5.2) -------- */

/* SYN to a closed port: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. */
T(rst_syn_to_closed_port)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_SYN, 1000, 0, 65535, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST | JK_ACK, 0, 1001, 0);
    (void)g;
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_no_conn, 1);
    cr_assert_eq(st.rst_sent, 1);
}

/* ACK set: <SEQ=SEG.ACK><CTL=RST>, no ACK bit. */
T(rst_ack_to_closed_port)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_ACK, 500, 77777, 65535, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST, 77777, SP_ANY, 0);
    cr_assert_eq(g->s.flags & JK_ACK, 0, "%s", sp_str(g));
}

/* No ACK, data and FIN: ack = SEG.SEQ + SEG.LEN (data + FIN). */
T(rst_data_fin_without_ack_to_closed_port)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_FIN | JK_PSH, 100, 0, 65535, sp_pat(0), 10, NULL);
    sp_expect(JK_RST | JK_ACK, 0, 111, 0);
}

/* An RST never elicits an RST. */
T(rst_rst_to_closed_port_ignored)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    sp_send(JK_RST, 100, 0, 0, NULL, 0, NULL);
    sp_send(JK_RST | JK_ACK, 100, 5, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_stats().rst_sent, 0);
}

/* RFC 9293 §3.10.7.2: in LISTEN, an ACK gets <SEQ=SEG.ACK><CTL=RST>, an
 * RST is ignored. */
T(rst_listen_ack_and_rst)
{
    jktcp_conn_listener *l = NULL;
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, 0, &l), 0);
    sp.f.lport = 80;
    sp.f.rport = 40000;
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    sp_send(JK_ACK, 1, 555, 65535, NULL, 0, NULL);
    const sp_seg *g = sp_expect(JK_RST, 555, SP_ANY, 0);
    cr_assert_eq(g->s.flags & JK_ACK, 0, "%s", sp_str(g));
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(l, 0, &c), -EAGAIN);
}

/* ---- RST in each synchronized state (RFC 9293 §3.10.7.4 second) ----- */

/* Exact RCV.NXT: reset; read/write give -ECONNRESET; no answer. */
T(rst_established_resets)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), -ECONNRESET);
    cr_assert_eq(jktcp_conn_write(c, "x", 1, 0), -ECONNRESET);
    cr_assert_eq(jktcp_conn_error(c), -ECONNRESET);
    cr_assert_eq(sp_stats().conns_active, 0);
}

/* RST|ACK is as good as RST. */
T(rst_ack_established_resets)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST | JK_ACK, 1, 1, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
}

/* Out-of-window RST is silently dropped. */
T(rst_out_of_window_ignored)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST, 1 + (64u << 20), 0, 0, NULL, 0, NULL); /* far right */
    sp_expect_none();
    sp_send(JK_RST, (uint32_t)-100000, 0, 0, NULL, 0, NULL); /* old */
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_data(1, 1, 10);
    sp_expect(JK_ACK, 1, 11, 0);
}

/* In window but not RCV.NXT: challenge ACK (RFC 5961 §3.2, as in RFC 9293)
 * or, for implementations without the mitigation, a reset. Never silent
 * acceptance without either. */
T(rst_in_window_inexact_challenge_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_RST, 1001, 0, 0, NULL, 0, NULL);
    const sp_seg *g = sp_next();
    if (sp_state_of(c) == JKTCP_ESTABLISHED) {
        cr_assert(g, "in-window RST neither reset the connection nor drew a challenge ACK");
        cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1, "challenge ACK: %s",
                  sp_str(g));
    } else {
        cr_assert(!g, "%s", sp_str(g));
    }
}

/* RFC 5961 §3.2: an RST whose sequence number is in the window but not
 * exactly RCV.NXT draws a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
 * and does not reset. Checked at several offsets, with and without ACK. */
H(rst_in_window_inexact_challenge_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    const uint32_t offs[] = { 2, 100, 1000, 30000, 65535 };
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        sp_advance_ms(JK_OOW_ACK_US / 1000); /* one challenge ACK per interval */
        sp_send(JK_RST, offs[k], 0, 0, NULL, 0, NULL);
        const sp_seg *g = sp_expect(JK_ACK, 1, 1, 0);
        (void)g;
        cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED,
                     "RST at rcv_nxt+%u (in window, inexact) reset the connection (RFC 5961 "
                     "§3.2)", offs[k] - 1);
        sp_advance_ms(JK_OOW_ACK_US / 1000);
        sp_send(JK_RST | JK_ACK, offs[k], 1, 0, NULL, 0, NULL);
        sp_expect(JK_ACK, 1, 1, 0);
        cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    }
    cr_assert_eq(jktcp_conn_error(c), 0);
    /* The stream is intact and an exact RST still works. */
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
    sp_send(JK_RST, 101, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    cr_assert_eq(jktcp_conn_error(c), -ECONNRESET);
}

/* RFC 9293 §3.10.7.4 fourth (RFC 5961 §4): SYN in a synchronized state ->
 * challenge ACK; or (RFC 793 behaviour) RST. */
T(rst_syn_in_established_challenge_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_opts o = full_syn_opts();
    sp_send(JK_SYN, 500, 0, 65535, NULL, 0, &o);
    const sp_seg *g = sp_expect_any();
    if (g->s.flags & JK_RST) {
        cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    } else {
        cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1, "challenge ACK: %s",
                  sp_str(g));
        cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    }
}

T(rst_fin_wait_1)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), -ECONNRESET);
    sp_advance_ms(5000);
    sp_expect_none(); /* no FIN retransmission */
}

T(rst_fin_wait_2)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_peer_ack(1, 2);
    sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    uint8_t b;
    cr_assert_eq(jktcp_conn_read(c, &b, 1, 0), -ECONNRESET);
}

T(rst_close_wait)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    cr_assert_eq(jktcp_conn_write(c, "x", 1, 0), -ECONNRESET);
}

/* LAST_ACK + RST: connection removed silently. */
T(rst_last_ack_silent)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    jktcp_conn_close(c);
    sp_expect(JK_ACK | JK_FIN, 1, 2, 0);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_stats().conns_active, 0);
    sp_advance_ms(5000);
    sp_expect_none();
}

/* CLOSING + RST: connection removed. */
T(rst_closing)
{
    jktcp_conn *c = sp_connect(NULL);
    jktcp_conn_shutdown(c);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 2, 0);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
}

/* ====================================================================== */
/* RFC 5961 §3: blind resets (suite hostile)                              */
/* ====================================================================== */

/* ---- RFC 5961: blind RST / SYN / data injection ---------------------- */

/* RFC 5961 §3.2 / RFC 9293 §3.10.7.4: an RST outside the window is
 * silently dropped — left of RCV.NXT, at RCV.NXT+RCV.WND (one past the
 * edge), and far away in both directions. */
H(blind_rst_outside_window_ignored)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    uint32_t wnd = sp_info(c).rcv_wnd;
    const uint32_t seqs[] = { 100, 1, 0, 101 + wnd, 101 + wnd + 1, 101 + (1u << 30),
                              101 + 0x80000000u, 101 - (1u << 30) };
    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        sp_send(JK_RST, seqs[k], 0, 0, NULL, 0, NULL);
        sp_expect_none();
        sp_send(JK_RST | JK_ACK, seqs[k], 1, 0, NULL, 0, NULL);
        sp_expect_none();
        cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED, "RST at relative seq %u (window "
                     "[101, %u)) reset the connection", seqs[k], 101 + wnd);
    }
    cr_assert_eq(jktcp_conn_error(c), 0);
    sp_peer_data(101, 1, 100);
    sp_expect(JK_ACK, 1, 201, 0);
    sp_read_expect(c, 0, 200);
    sp_write_pat(c, 0, 50);
    sp_assert_payload(sp_expect(JK_ACK, 1, 201, 50), 0);
}

/* An RST carrying data we already hold is an out-of-window RST like any
 * other: dropped without an answer (no duplicate ACK, no D-SACK). */
H(rst_with_old_data_ignored)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_send(JK_RST | JK_ACK, 1, 1, SP_WND, sp_pat(0), 50, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_send(JK_RST, 51, 0, 0, sp_pat(50), 50, NULL);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    cr_assert_eq(jktcp_conn_error(c), 0);
}

/* RFC 5961 §3.2 in the other synchronized states that take RSTs:
 * CLOSE-WAIT, FIN-WAIT-1, FIN-WAIT-2 — an inexact in-window RST draws a
 * challenge ACK and the state is kept. */
H(rst_in_window_inexact_challenge_ack_other_states)
{
    jktcp_conn *c = sp_connect(NULL);
    /* FIN-WAIT-1 */
    cr_assert_eq(jktcp_conn_shutdown(c), 0);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_RST, 500, 0, 0, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 1, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_FIN_WAIT_1);
    /* FIN-WAIT-2 */
    sp_peer_ack(1, 2);
    cr_assert_eq(sp_state_of(c), JKTCP_FIN_WAIT_2);
    sp_advance_ms(JK_OOW_ACK_US / 1000); /* one challenge ACK per interval */
    sp_send(JK_RST, 500, 0, 0, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 1, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_FIN_WAIT_2);
    sp_peer_data(1, 2, 10);
    sp_expect(JK_ACK, 2, 11, 0);
    sp_read_expect(c, 0, 10);
    cr_assert_eq(jktcp_conn_error(c), 0);
}

H(rst_in_window_inexact_challenge_ack_close_wait)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_send(JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSE_WAIT);
    sp_send(JK_RST, 700, 0, 0, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 2, 0);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSE_WAIT);
    sp_write_pat(c, 0, 10);
    sp_assert_payload(sp_expect(JK_ACK, 1, 2, 10), 0);
    cr_assert_eq(jktcp_conn_error(c), 0);
}

/* ---- Malformed options inside an otherwise valid segment ------------- */

/* An RST whose options are garbage is judged like any RST, by its
 * sequence number (RFC 5961 §3.2; RSTs need no timestamp): exact, it
 * resets. */
H(rst_with_bad_options_judged_by_sequence)
{
    jktcp_conn *c = sp_connect(NULL);
    static uint8_t f[256];
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.ts_set = true;
    o.tsval = sp.f.peer_ts_max;
    o.tsecr = sp.f.ts_recent;
    size_t n = sp_build(f, sizeof f, JK_RST, 1, 0, 0, NULL, 0, &o);
    size_t off = find_ts_opt(f);
    f[off + 1] = 1;
    sp_fix_checksums(f, n);
    sp_push_raw(f, n);
    sp_expect_none();
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    cr_assert_eq(sp_stats().drop_options, 0);
}

/* ====================================================================== */
/* What a listener answers (suite listen)                                 */
/* ====================================================================== */

/*
 * Suite `listen`: what a listening port answers to segments that are not
 * a plain SYN (RFC 9293 §3.10.7.2, as Linux): an ACK gets a RST, a RST
 * nothing; a segment with neither SYN, ACK nor RST (a NULL, FIN or Xmas
 * scan without ACK, data alone) is dropped unanswered, and so is a SYN
 * carrying FIN — a port that answers those is visible to a scan. A closed
 * port answers them all with a RST (§3.10.7.1).
 */

static void listen_on(uint16_t port)
{
    cr_assert_eq(jktcp_adapter_listen(sp.a, port, 0, &sp.l), 0);
    sp.lenient_ports = true;
}

/* Flags without SYN, ACK or RST (and SYN+FIN): nothing comes back, the
 * listener makes no connection. */
static void silent_to_listener(void)
{
    listen_on(80);
    static const uint8_t flags[] = {0, JK_FIN, JK_PSH, JK_URG, JK_FIN | JK_PSH | JK_URG,
                                    JK_SYN | JK_FIN, JK_SYN | JK_FIN | JK_PSH};
    for (size_t i = 0; i < sizeof flags; i++) {
        sp.f.lport = 80;
        sp.f.rport = (uint16_t)(40000 + i);
        sp_send(flags[i], 1000, 0, 65535, i % 2 ? "data" : NULL, i % 2 ? 4 : 0, NULL);
        sp_expect_none();
    }
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), -EAGAIN, "a connection came of it");
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.rst_sent, 0);
    cr_assert_eq(st.drop_invalid, sizeof flags);
}

L(no_syn_ack_rst_dropped_v4) { silent_to_listener(); }
L6(no_syn_ack_rst_dropped_v6) { silent_to_listener(); }

/* An ACK to a listener gets a RST (§3.10.7.2 "second"); a RST nothing. */
L(ack_gets_rst_rst_gets_nothing)
{
    listen_on(80);
    sp.f.lport = 80;
    sp.f.rport = 40000;
    sp_send(JK_ACK, 1000, 5000, 65535, NULL, 0, NULL);
    sp_expect(JK_RST, 5000, SP_ANY, 0);
    sp_send(JK_RST, 1000, 0, 0, NULL, 0, NULL);
    sp_send(JK_RST | JK_ACK, 1000, 5000, 0, NULL, 0, NULL);
    sp_expect_none();
}

/* The same segments to a closed port: a RST each (a FIN gets a RST too). */
L(closed_port_answers_rst)
{
    static const uint8_t flags[] = {0, JK_FIN, JK_PSH, JK_SYN | JK_FIN};
    for (size_t i = 0; i < sizeof flags; i++) {
        sp.f.lport = 81;
        sp.f.rport = (uint16_t)(41000 + i);
        sp_send(flags[i], 1000, 0, 65535, NULL, 0, NULL);
        sp_expect(JK_RST | JK_ACK, 0, SP_ANY, 0);
    }
}
