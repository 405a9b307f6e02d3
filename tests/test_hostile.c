/* SPDX-License-Identifier: MIT */
/*
 * Reliability and hostile input: the engine against a scripted peer that
 * misbehaves (blind injection, spoofed addresses, floods, windows that
 * never open or shrink, garbage SACK blocks, conflicting retransmissions,
 * malformed options) and user-set limits that must hold. Suite `hostile`.
 *
 * Relative sequence numbers as in scripted.h: the adapter's first data
 * byte is seq 1, the peer's first data byte is seq 1.
 */
#include "scripted.h"
#include "tcp.h"

#include <malloc.h>
#include <string.h>

#define T(name) Test(hostile, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 120)
#define T6(name) Test(hostile, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 120)

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* Advance the fake clock timer by timer (jktcp_adapter_timeout) until the
 * adapter emits a segment, at most max_ms. Much faster than sp_wait for
 * waits of minutes. */
static const sp_seg *wait_seg(uint64_t max_ms, uint64_t *elapsed_ms)
{
    const sp_seg *g = sp_next();
    uint64_t t = 0;
    while (!g && t < max_ms) {
        int to = jktcp_adapter_timeout(sp.a);
        uint64_t step = to < 0 ? max_ms - t : (to == 0 ? 1 : (uint64_t)to);
        if (step > max_ms - t)
            step = max_ms - t;
        sp_advance_ms(step);
        t += step;
        g = sp_next();
    }
    if (elapsed_ms)
        *elapsed_ms = t;
    return g;
}

/* A byte pattern different from sp_pat at every offset (for conflicting
 * retransmissions). */
static const uint8_t *alt_pat(size_t off)
{
    static uint8_t p[65536 + 251];
    static bool init;
    if (!init) {
        for (size_t i = 0; i < sizeof p; i++)
            p[i] = (uint8_t)~sp_pat(i)[0];
        init = true;
    }
    return p + off % 251; /* byte k is stream offset off + k */
}

/* Byte i of the stream in the alternative pattern. */
static uint8_t alt_byte(size_t i) { return (uint8_t)~sp_pat(i)[0]; }

/* ====================================================================== */
/* RFC 5961: blind RST / SYN / data injection                              */
/* ====================================================================== */

/* RFC 5961 §3.2: an RST whose sequence number is in the window but not
 * exactly RCV.NXT draws a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
 * and does not reset. Checked at several offsets, with and without ACK. */
T(rst_in_window_inexact_challenge_ack)
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

/* RFC 5961 §4.2: any SYN in a synchronized state, whatever its sequence
 * number (in the window, at RCV.NXT, outside it), draws a challenge ACK and
 * does not reset the connection. */
T(syn_in_established_always_challenge_ack)
{
    jktcp_conn *c = sp_connect(NULL);
    const uint32_t seqs[] = { 1, 0, 500, 60000, 1u << 30, 0x90000000u };
    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        sp_opts o;
        memset(&o, 0, sizeof o);
        o.mss = 1460;
        o.ts = true;
        sp_advance_ms(JK_OOW_ACK_US / 1000); /* one challenge ACK per interval */
        sp_send(JK_SYN, seqs[k], 0, 65535, NULL, 0, &o);
        const sp_seg *g = sp_expect_any();
        cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1,
                  "SYN at relative seq %u: expected challenge ACK seq 1 ack 1 (RFC 5961 §4.2), "
                  "got %s", seqs[k], sp_str(g));
        cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
        sp_expect_none();
    }
    /* SYN|ACK too (with timestamps: without them it is dropped, RFC 7323 §3.2). */
    sp_opts oa;
    memset(&oa, 0, sizeof oa);
    oa.ts = true;
    sp_advance_ms(JK_OOW_ACK_US / 1000);
    sp_send(JK_SYN | JK_ACK, 0, 1, 65535, NULL, 0, &oa);
    const sp_seg *g = sp_expect_any();
    cr_assert(g->s.flags == JK_ACK && g->seq == 1 && g->ack == 1, "%s", sp_str(g));
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_data(1, 1, 10);
    sp_expect(JK_ACK, 1, 11, 0);
    sp_read_expect(c, 0, 10);
}

/* RFC 5961 §3.2 / RFC 9293 §3.10.7.4: an RST outside the window is
 * silently dropped — left of RCV.NXT, at RCV.NXT+RCV.WND (one past the
 * edge), and far away in both directions. */
T(blind_rst_outside_window_ignored)
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
T(rst_with_old_data_ignored)
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
T(rst_in_window_inexact_challenge_ack_other_states)
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

T(rst_in_window_inexact_challenge_ack_close_wait)
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

/* RFC 5961 §7: a flood of bare segments that each owe a challenge ACK (in-
 * window RSTs and SYNs, ACKs for data never sent, ACKs out of the window)
 * gets one ACK per interval, not one each; the connection is untouched
 * and the next interval answers again. */
T(challenge_acks_rate_limited)
{
    jktcp_conn *c = sp_connect(NULL);
    uint64_t limited0 = sp_stats().acks_limited;
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.ts = true; /* without timestamps the SYN is dropped first (RFC 7323 §3.2) */
    for (int k = 0; k < 250; k++) {
        sp_send(JK_RST, 2 + (uint32_t)k, 0, 0, NULL, 0, NULL);
        sp_send(JK_SYN, 500 + (uint32_t)k, 0, 65535, NULL, 0, &o);
        sp_send(JK_ACK, 1, 5000 + (uint32_t)k, SP_WND, NULL, 0, NULL);
        sp_send(JK_ACK, 1 + 0x40000000u, 1, SP_WND, NULL, 0, NULL);
    }
    sp_expect(JK_ACK, 1, 1, 0);
    sp_expect_none();
    cr_assert_eq(sp_stats().acks_limited - limited0, 999, "acks_limited %llu",
                 (unsigned long long)(sp_stats().acks_limited - limited0));
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    cr_assert_eq(jktcp_conn_error(c), 0);
    sp_advance_ms(JK_OOW_ACK_US / 1000 - 1);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect_none();
    sp_advance_ms(1);
    sp_send(JK_RST, 2, 0, 0, NULL, 0, NULL);
    sp_expect(JK_ACK, 1, 1, 0);
    /* data is never limited: its sender waits for the ACK */
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
}

/* RFC 9293 §3.10.7.4 first check: data outside the window is not
 * acceptable: answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, dropped.
 * The real stream afterwards is intact (no injected byte ever readable). */
T(blind_data_outside_window_ignored)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    uint32_t wnd = sp_info(c).rcv_wnd;
    const uint32_t seqs[] = { 101 + wnd, 101 + wnd + 5000, 101 + 0x7fff0000u,
                              101 - 0x40000000u, 101 - 70000 };
    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        sp_send(JK_ACK | JK_PSH, seqs[k], 1, SP_WND, alt_pat(0), 500, NULL);
        const sp_seg *g = sp_expect(JK_ACK, 1, 101, 0);
        (void)g;
        cr_assert_eq(sp_info(c).bytes_readable, 100, "out-of-window data at seq %u was kept",
                     seqs[k]);
        /* with FIN too */
        sp_send(JK_ACK | JK_FIN, seqs[k], 1, SP_WND, alt_pat(0), 10, NULL);
        sp_expect(JK_ACK, 1, 101, 0);
        cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    }
    cr_assert(sp_stats().drop_invalid >= 10, "drop_invalid %llu",
              (unsigned long long)sp_stats().drop_invalid);
    sp_peer_data(101, 1, 1000);
    sp_expect(JK_ACK, 1, 1101, 0);
    sp_read_expect(c, 0, 1100);
}

/* RFC 9293 §3.10.7.4 fifth (ESTABLISHED): SEG.ACK > SND.NXT -> send an
 * ACK, drop the segment and return: with data in flight the ACK must not
 * advance SND.UNA, and its payload is not delivered; RFC 5961 §5.2. */
T(ack_of_unsent_data_ignored_with_data_in_flight)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    sp_write_pat(c, 0, 2000);
    sp_expect(JK_ACK, 1, 1, 1000);
    sp_expect(JK_ACK, 1001, 1, 1000);
    const uint32_t acks[] = { 2002, 2100, 100000, 0x7fff0000u };
    for (size_t k = 0; k < sizeof acks / sizeof acks[0]; k++) {
        sp_send(JK_ACK | JK_PSH, 1, acks[k], SP_WND, sp_pat(0), 10, NULL);
        sp_expect(JK_ACK, 2001, 1, 0);
        jktcp_info i = sp_info(c);
        cr_assert_eq(i.bytes_readable, 0, "data on an ACK of unsent data (ack %u) was kept",
                     acks[k]);
        cr_assert_eq(i.bytes_queued, 2000, "ACK %u of unsent data acknowledged data",
                     acks[k]);
        cr_assert_eq(i.bytes_sent, 0);
    }
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_data(1, 2001, 10);
    sp_expect(JK_ACK, 2001, 11, 0);
    sp_read_expect(c, 0, 10);
    cr_assert_eq(sp_info(c).bytes_sent, 2000);
}

/* RFC 5961 §5.2: an ACK is acceptable only if
 * (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT; outside it the segment is
 * discarded and an ACK sent. MAX.SND.WND here is 1000 (the peer never
 * offers more), SND.UNA is 3001, so SEG.ACK = 2001 is the oldest
 * acceptable value and 2000 the newest unacceptable one. */
T(ack_older_than_max_window_ignored)
{
    sp_option(JKTCP_OPT_CONGESTION, 0);
    sp_hs hs = sp_plain(1000, 1000);
    jktcp_conn *c = sp_connect(&hs);
    for (uint32_t k = 0; k < 3; k++) {
        sp_write_pat(c, 1000 * k, 1000);
        sp_assert_payload(sp_expect(JK_ACK, 1 + 1000 * k, 1, 1000), 1000 * k);
        sp_peer_ack(1, 1001 + 1000 * k);
        sp_expect_none();
    }
    cr_assert_eq(sp_info(c).bytes_sent, 3000);
    /* a far too old pure ACK draws an ACK (RFC 5961 §5.2) */
    sp_peer_ack(1, 3001 - 0x40000000u);
    sp_expect(JK_ACK, 3001, 1, 0);
    /* far too old: dropped with an ACK, the data not taken */
    sp_send(JK_ACK | JK_PSH, 1, 3001 - 0x40000000u, SP_WND, sp_pat(0), 10, NULL);
    sp_expect(JK_ACK, 3001, 1, 0);
    cr_assert_eq(sp_info(c).bytes_readable, 0, "data with SEG.ACK far below SND.UNA - "
                 "MAX.SND.WND was accepted (RFC 5961 §5.2)");
    /* just outside: SEG.ACK = SND.UNA - MAX.SND.WND - 1 */
    sp_send(JK_ACK | JK_PSH, 1, 2000, SP_WND, sp_pat(0), 10, NULL);
    const sp_seg *g = sp_next();
    cr_assert(g && g->s.flags == JK_ACK && g->seq == 3001 && g->ack == 1,
              "SEG.ACK = SND.UNA - MAX.SND.WND - 1: expected an ACK seq 3001 ack 1 and the "
              "segment dropped (RFC 5961 §5.2), got %s", g ? sp_str(g) : "nothing");
    cr_assert_eq(sp_info(c).bytes_readable, 0,
                 "data with SEG.ACK = SND.UNA - MAX.SND.WND - 1 was accepted (RFC 5961 §5.2)");
    /* just inside: an acceptable old ACK, the data is taken */
    sp_send(JK_ACK | JK_PSH, 1, 2001, SP_WND, sp_pat(0), 10, NULL);
    sp_expect(JK_ACK, 3001, 11, 0);
    sp_read_expect(c, 0, 10);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    cr_assert_eq(sp_info(c).bytes_sent, 3000);
}

/* ====================================================================== */
/* Addresses and ports                                                     */
/* ====================================================================== */

/* A frame with another source address but the connection's ports and
 * exact sequence numbers (data, RST, FIN) never reaches the connection;
 * each is counted in drop_address. */
static void spoofed_source_common(const char *other)
{
    jktcp_conn *c = sp_connect(NULL);
    struct jk_addr keep = sp.peer;
    cr_assert_eq(jk_addr_parse(other, &sp.peer), 0);
    static uint8_t f[3][2048];
    size_t n0 = sp_build(f[0], sizeof f[0], JK_ACK | JK_PSH, 1, 1, SP_WND, alt_pat(0), 100, NULL);
    size_t n1 = sp_build(f[1], sizeof f[1], JK_RST, 1, 0, 0, NULL, 0, NULL);
    size_t n2 = sp_build(f[2], sizeof f[2], JK_ACK | JK_FIN, 1, 1, SP_WND, NULL, 0, NULL);
    sp.peer = keep;
    sp_push_raw(f[0], n0);
    sp_push_raw(f[1], n1);
    sp_push_raw(f[2], n2);
    sp_expect_none();
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.state, JKTCP_ESTABLISHED, "state %s after spoofed frames",
                 jktcp_state_name(i.state));
    cr_assert_eq(i.bytes_readable, 0);
    cr_assert_eq(i.bytes_received, 0);
    cr_assert_eq(sp_stats().drop_address, 3);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
}

T(spoofed_source_never_touches_connection)
{
    spoofed_source_common("198.18.0.77");
}

T6(spoofed_source_never_touches_connection_ipv6)
{
    spoofed_source_common("fd00::77");
}

/* The adapter's own address as the source (a reflected frame) is not
 * the peer either. */
T(reflected_own_address_dropped)
{
    spoofed_source_common("198.18.0.2");
}

/* RFC 9293 §3.10.7.1: a segment for no connection (right address, a
 * port pair nobody uses — including the live connection's ports swapped)
 * gets a RST; the live connection is untouched. */
T(unknown_port_gets_rst_connection_untouched)
{
    jktcp_conn *c = sp_connect(NULL);
    struct sp_flow keep = sp.f;
    sp.lenient_ports = true;
    /* the live flow's ports swapped */
    sp.f.lport = keep.rport;
    sp.f.rport = keep.lport;
    sp_send(JK_ACK | JK_PSH, 1, 4242, SP_WND, alt_pat(0), 10, NULL);
    const sp_seg *g = sp_expect_any();
    cr_assert((g->s.flags & (JK_RST | JK_ACK)) == JK_RST && g->s.seq == keep.iss + 4242 &&
                  g->s.sport == keep.rport && g->s.dport == keep.lport,
              "expected <SEQ=SEG.ACK><CTL=RST> from port %u: %s", keep.rport, sp_str(g));
    /* the right local port, another remote port */
    sp.f.lport = keep.lport;
    sp.f.rport = (uint16_t)(keep.rport + 1);
    sp_send(JK_SYN, 7, 0, 65535, NULL, 0, NULL);
    g = sp_expect_any();
    cr_assert((g->s.flags & (JK_RST | JK_ACK)) == (JK_RST | JK_ACK) && g->s.seq == 0 &&
                  g->s.ack == keep.irs + 8 && g->s.dport == keep.rport + 1,
              "expected <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>: %s", sp_str(g));
    sp.f = keep;
    sp.lenient_ports = false;
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_no_conn, 2);
    cr_assert_eq(st.rst_sent, 2);
    cr_assert_eq(st.conns_active, 1);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_data(1, 1, 10);
    sp_expect(JK_ACK, 1, 11, 0);
    sp_read_expect(c, 0, 10);
}

/* A listener accepts only from the adapter's peer: a SYN from another
 * address to the listening port is dropped (no SYN-ACK, no RST, no
 * connection). */
T(listener_ignores_syn_from_other_address)
{
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, 0, &sp.l), 0);
    sp.f.lport = 80;
    sp.f.rport = 40000;
    struct jk_addr keep = sp.peer;
    cr_assert_eq(jk_addr_parse("198.18.0.66", &sp.peer), 0);
    uint8_t buf[256];
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.mss = 1460;
    size_t n = sp_build(buf, sizeof buf, JK_SYN, 0, 0, 65535, NULL, 0, &o);
    sp.peer = keep;
    sp_push_raw(buf, n);
    sp_expect_none();
    sp_advance_ms(5000);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_address, 1);
    cr_assert_eq(st.conns_active, 0);
    cr_assert_eq(st.conns_opened, 0);
    cr_assert_eq(st.rst_sent, 0);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), -EAGAIN);
    /* The real peer still gets in. */
    sp_hs hs = SP_HS_DEFAULT;
    c = sp_accept(&hs);
    cr_assert(c);
}

/* ====================================================================== */
/* SYN flood                                                               */
/* ====================================================================== */

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* jktcp.h: backlog bounds the half-open queue; SYNs beyond it are
 * answered with RST (RFC 9293 §3.10.7.2 form <SEQ=0><ACK=SEG.SEQ+1>
 * <CTL=RST,ACK>). Thousands of SYNs from distinct ports: at most N
 * connections exist at any time, memory stays flat, the half-open ones
 * time out, and a real handshake then succeeds. */
T(syn_flood_bounded_then_handshake_succeeds)
{
    enum { N = 8, FLOOD = 5000 };
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, N, &sp.l), 0);
    sp.lenient_ports = true;
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.lport = 80;
    sp.f.wnd = 65535;
    sp.f.irs = 0;
    size_t synacks = 0, rsts = 0, heap0 = 0;
    static uint8_t buf[256];
    for (unsigned k = 0; k < FLOOD; k++) {
        uint16_t port = (uint16_t)(1024 + k);
        sp.f.rport = port;
        uint32_t seq = 1000u * k;
        sp_opts o;
        memset(&o, 0, sizeof o);
        o.mss = 1460;
        o.sack_ok = true;
        size_t n = sp_build(buf, sizeof buf, JK_SYN, seq, 0, 65535, NULL, 0, &o);
        sp_push_raw(buf, n);
        const sp_seg *g;
        unsigned got = 0;
        while ((g = sp_next()) != NULL) {
            got++;
            cr_assert_eq(g->s.dport, port, "answer to port %u went to %u: %s", port,
                         g->s.dport, sp_str(g));
            if ((g->s.flags & (JK_SYN | JK_ACK)) == (JK_SYN | JK_ACK)) {
                synacks++;
                cr_assert_eq(g->s.ack, seq + 1, "%s", sp_str(g));
            } else {
                cr_assert((g->s.flags & (JK_RST | JK_ACK)) == (JK_RST | JK_ACK) &&
                              g->s.seq == 0 && g->s.ack == seq + 1,
                          "SYN %u beyond the backlog: expected <SEQ=0><ACK=%u><CTL=RST,ACK>, "
                          "got %s", k, seq + 1, sp_str(g));
                rsts++;
            }
        }
        cr_assert_eq(got, 1, "SYN %u from port %u drew %u segments", k, port, got);
        jktcp_stats st = sp_stats();
        cr_assert(st.conns_active <= N, "%llu connections after %u SYNs with backlog %d",
                  (unsigned long long)st.conns_active, k + 1, N);
        if (k == 100)
            heap0 = heap_in_use();
    }
    size_t heap1 = heap_in_use();
    cr_assert(heap1 <= heap0 + (256u << 10), "heap grew from %zu to %zu bytes during the flood",
              heap0, heap1);
    cr_assert_eq(synacks, N);
    cr_assert_eq(rsts, FLOOD - N);
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.conns_active, N);
    cr_assert_eq(st.rst_sent, FLOOD - N);
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_adapter_accept(sp.l, 0, &c), -EAGAIN);
    /* Let the half-open ones give up (SYN-ACK retransmissions exhausted),
     * answering nothing. */
    for (int s = 0; s < 3600 && sp_stats().conns_active > 0; s++) {
        sp_advance_ms(1000);
        while (sp_next())
            ;
    }
    cr_assert_eq(sp_stats().conns_active, 0,
                 "%llu half-open connections still exist an hour after the flood",
                 (unsigned long long)sp_stats().conns_active);
    sp.lenient_ports = false;
    sp_hs hs = SP_HS_DEFAULT;
    c = sp_accept(&hs);
    cr_assert(c);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
}

/* A burst: 500 SYNs queued before the adapter runs (as when it was busy),
 * then one poll. Still at most N connections; each SYN beyond the backlog
 * is answered with RST (jktcp.h) — checked with cr_expect so the bounds
 * below are checked as well; then a real handshake succeeds. */
T(syn_flood_burst_bounded)
{
    enum { N = 8, BURST = 500 };
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, N, &sp.l), 0);
    sp.lenient_ports = true;
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.lport = 80;
    sp.f.wnd = 65535;
    static uint8_t buf[256];
    for (unsigned k = 0; k < BURST; k++) {
        sp.f.rport = (uint16_t)(5000 + k);
        size_t n = sp_build(buf, sizeof buf, JK_SYN, 77 * k, 0, 65535, NULL, 0, NULL);
        cr_assert_eq(jktcp_port_push(sp.port, buf, n), 0, "push %u", k);
    }
    sp_poll();
    size_t synacks = 0, rsts = 0;
    const sp_seg *g;
    while ((g = sp_next()) != NULL) {
        if ((g->s.flags & (JK_SYN | JK_ACK)) == (JK_SYN | JK_ACK))
            synacks++;
        else if (g->s.flags & JK_RST)
            rsts++;
        else
            cr_assert_fail("unexpected %s", sp_str(g));
    }
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.conns_active, N);
    cr_assert_eq(synacks, N);
    cr_expect_eq(rsts, BURST - N, "a burst of %d SYNs beyond backlog %d drew only %zu RSTs "
                 "(jktcp.h: \"SYNs beyond it are answered with RST\")", BURST - N, N, rsts);
    cr_expect_eq(st.rst_sent, rsts);
    sp.lenient_ports = false;
    /* the listener still works once the half-open ones are reset */
    jktcp_adapter_unlisten(sp.l);
    sp.l = NULL;
    while (sp_next())
        ;
    cr_assert_eq(sp_stats().conns_active, 0);
    cr_assert(sp_accept(NULL));
}

/* Same, the half-open connections reset by RST (RFC 9293 §3.10.7.4 SYN-
 * RECEIVED): room again at once. */
T(syn_flood_half_open_reset_frees_backlog)
{
    enum { N = 4 };
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, N, &sp.l), 0);
    sp.lenient_ports = true;
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.lport = 80;
    sp.f.wnd = 65535;
    uint32_t iss[N];
    for (unsigned k = 0; k < 200; k++) {
        sp.f.rport = (uint16_t)(2000 + k);
        sp.f.iss = 0;
        sp_send(JK_SYN, 0, 0, 65535, NULL, 0, NULL);
        const sp_seg *g = sp_expect_any();
        if (k < N) {
            cr_assert_eq(g->s.flags, JK_SYN | JK_ACK, "%s", sp_str(g));
            iss[k] = g->s.seq;
        } else {
            cr_assert_eq(g->s.flags & JK_RST, JK_RST, "SYN %u beyond backlog %d: %s", k, N,
                         sp_str(g));
        }
    }
    cr_assert_eq(sp_stats().conns_active, N);
    for (unsigned k = 0; k < N; k++) {
        sp.f.rport = (uint16_t)(2000 + k);
        sp.f.iss = iss[k];
        sp_send(JK_RST, 1, 0, 0, NULL, 0, NULL);
        sp_expect_none();
    }
    cr_assert_eq(sp_stats().conns_active, 0);
    sp.lenient_ports = false;
    jktcp_conn *c = sp_accept(NULL);
    cr_assert(c);
}

/* ====================================================================== */
/* Windows                                                                 */
/* ====================================================================== */

/* RFC 1122 §4.2.2.17 / RFC 9293 §3.8.6.1: the peer keeps its window
 * closed for half an hour but answers every probe: probes keep coming
 * with backoff up to RTO_MAX, the connection never dies, and once the
 * window opens the queued data goes out intact. */
T(zero_window_forever_probes_back_off_never_die)
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

/* RFC 1122 §4.2.2.16: a sender MUST be robust against window shrinking
 * and SHOULD NOT send new data beyond the (new) right edge. The peer's
 * right edge moves left and right at random; no new byte is ever sent
 * beyond the right edge of the last window seen, and the stream completes
 * intact. */
T(window_shrinking_never_sends_new_data_beyond_edge)
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

/* RFC 2018 §8 / RFC 6675: SACK blocks are only advice; garbage ones
 * (reversed, overlapping, below SND.UNA, beyond SND.MAX, wrapping) must
 * not crash the sender or make it send anything at or beyond SND.MAX
 * that was never sent, and retransmissions carry the right bytes. Four
 * blocks on every ACK (no timestamps so that four fit). */
T(huge_sack_lists_garbage_blocks)
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

/* ====================================================================== */
/* Conflicting / overlapping data from the peer                            */
/* ====================================================================== */

/* Data already delivered in order and then retransmitted with different
 * bytes: the first copy wins (the old part is trimmed, RFC 9293
 * §3.10.7.4); the new part of the overlapping segment is taken. */
T(conflicting_retransmission_of_delivered_data_first_wins)
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
T(conflicting_overlapping_out_of_order_data)
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
T(data_after_fin_ignored)
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
T(data_beyond_out_of_order_fin_ignored)
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
T(urgent_data_delivered_inline)
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

/* ====================================================================== */
/* Malformed options inside an otherwise valid segment                     */
/* ====================================================================== */

/* Find the timestamp option (kind 8) in a built IPv4 frame. */
static size_t find_ts_opt(const uint8_t *f)
{
    size_t doff = (size_t)(f[20 + 12] >> 4) * 4;
    for (size_t i = 40; i < 20 + doff;) {
        if (f[i] == 1) {
            i++;
            continue;
        }
        if (f[i] == 8)
            return i;
        cr_assert(f[i + 1] >= 2);
        i += f[i + 1];
    }
    cr_assert_fail("no TS option in the built frame");
    return 0;
}

/* Mangled option lengths never drop a segment by themselves (as Linux's
 * tcp_parse_options: the list ends, or the option is ignored), but here
 * each mangles the timestamp option, so the segment has none once
 * timestamps were negotiated: dropped (RFC 7323 §3.2) and counted in
 * drop_invalid. A data offset beyond the segment is a drop_options. */
T(bad_option_lengths_leave_no_timestamp)
{
    jktcp_conn *c = sp_connect(NULL);
    static uint8_t f[2048];
    /* each mutation of a data segment [1, 101) */
    struct { uint8_t kind, len; } bad[] = {
        { 8, 0 },   /* TS length 0 */
        { 8, 1 },   /* TS length 1 (would loop / underflow) */
        { 8, 9 },   /* TS of the wrong length */
        { 8, 40 },  /* runs past the option area */
        { 8, 255 }, /* runs past the frame */
        { 2, 10 },  /* MSS with a wrong length, also past the area */
        { 99, 1 },  /* unknown kind, length 1 */
        { 99, 0 },  /* unknown kind, length 0 */
    };
    uint64_t invalid = sp_stats().drop_invalid;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH, 1, 1, SP_WND, alt_pat(0), 100, NULL);
        size_t o = find_ts_opt(f);
        f[o] = bad[k].kind;
        f[o + 1] = bad[k].len;
        sp_fix_checksums(f, n);
        sp_push_raw(f, n);
        sp_expect_none();
        jktcp_info i = sp_info(c);
        cr_assert_eq(i.bytes_readable, 0, "segment with option kind %u length %u taken",
                     bad[k].kind, bad[k].len);
        cr_assert_eq(sp_stats().drop_invalid, invalid + k + 1,
                     "option kind %u length %u: not dropped for its missing timestamp",
                     bad[k].kind, bad[k].len);
    }
    cr_assert_eq(sp_stats().drop_options, 0);
    /* data offset beyond the segment */
    size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH, 1, 1, SP_WND, alt_pat(0), 0, NULL);
    f[20 + 12] = (uint8_t)(15 << 4);
    sp_fix_checksums(f, n);
    sp_push_raw(f, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_options, 1);
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    sp_peer_data(1, 1, 100);
    sp_expect(JK_ACK, 1, 101, 0);
    sp_read_expect(c, 0, 100);
}

/* An RST whose options are garbage is judged like any RST, by its
 * sequence number (RFC 5961 §3.2; RSTs need no timestamp): exact, it
 * resets. */
T(rst_with_bad_options_judged_by_sequence)
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
/* User limits                                                             */
/* ====================================================================== */

/* JKTCP_OPT_MAX_CONNS: connect beyond it -> -EMFILE. */
T(max_conns_connect_emfile)
{
    sp_option(JKTCP_OPT_MAX_CONNS, 3);
    jktcp_conn *c[4] = { 0 };
    for (int k = 0; k < 3; k++)
        cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c[k]), -EINPROGRESS, "connect %d", k);
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c[3]), -EMFILE);
    cr_assert_eq(jktcp_conn_connect(sp.a, 81, 1000, &c[3]), -EMFILE);
    cr_assert_eq(sp_stats().conns_active, 3);
    sp.lenient_ports = true;
    while (sp_next())
        ;
    /* freeing one makes room */
    cr_assert_eq(jktcp_conn_abort(c[0]), 0);
    while (sp_next())
        ;
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c[3]), -EINPROGRESS);
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c[0]), -EMFILE);
}

/* JKTCP_OPT_MAX_CONNS: passive SYNs beyond it get RST, whatever the
 * backlog; counting active connections too. */
T(max_conns_passive_syn_rst)
{
    sp_option(JKTCP_OPT_MAX_CONNS, 2);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 80, 100, &sp.l), 0);
    sp_hs hs = SP_HS_NONE;
    jktcp_conn *c1 = sp_accept(&hs); /* one established */
    cr_assert(c1);
    sp_accept_syn(&hs, 40001);       /* one half-open */
    sp.lenient_ports = true;
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.lport = 80;
    sp.f.wnd = 65535;
    for (unsigned k = 0; k < 50; k++) {
        sp.f.rport = (uint16_t)(41000 + k);
        sp_send(JK_SYN, 100, 0, 65535, NULL, 0, NULL);
        sp_expect(JK_RST | JK_ACK, 0, 101, 0);
    }
    cr_assert_eq(sp_stats().conns_active, 2);
    /* connect too */
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c), -EMFILE);
}

/* JKTCP_OPT_SNDBUF: write never queues more than the buffer; with
 * timeout 0 a full buffer gives -EAGAIN; bytes_queued never exceeds it. */
static void sndbuf_case(const long B)
{
    sp_option(JKTCP_OPT_SNDBUF, B);
    sp_hs hs = sp_plain(1000, 4000);
    jktcp_conn *c = sp_connect(&hs);
    ssize_t r = jktcp_conn_write(c, sp_pat(0), 30000, 0);
    cr_assert(r > 0 && r <= B, "write into a %ld-byte send buffer queued %zd", B, r);
    size_t q = (size_t)r;
    cr_assert_eq(jktcp_conn_write(c, sp_pat(q), 1, 0), -EAGAIN, "write to a full buffer");
    cr_assert_eq(jktcp_conn_write(c, sp_pat(q), 30000, 0), -EAGAIN);
    cr_assert(sp_info(c).bytes_queued <= (uint64_t)B);
    /* With the peer ACKing slowly, many small writes never exceed it. */
    uint32_t acked = 1;
    for (int k = 0; k < 50; k++) {
        ssize_t w;
        while ((w = jktcp_conn_write(c, sp_pat(q), 700, 0)) > 0)
            q += (size_t)w;
        cr_assert_eq(w, -EAGAIN);
        jktcp_info i = sp_info(c);
        cr_assert(i.bytes_queued <= (uint64_t)B, "bytes_queued %llu > SNDBUF %ld",
                  (unsigned long long)i.bytes_queued, B);
        const sp_seg *g;
        uint32_t hi = acked;
        while ((g = sp_next()) != NULL) {
            if (g->s.len) {
                sp_assert_payload(g, g->seq - 1);
                if (seq_gt(g->seq + g->s.len, hi))
                    hi = g->seq + g->s.len;
            }
        }
        if (hi != acked) {
            acked = acked + (hi - acked + 1) / 2 > acked ? acked + (hi - acked + 1) / 2 : hi;
            sp_peer_ack(1, acked);
        } else {
            sp_advance_ms(300);
        }
    }
}

/* JKTCP_OPT_RCVBUF: the advertised window never exceeds the buffer, and
 * data beyond it is not accepted. */
static void rcvbuf_case(long B, int wscale)
{
    sp_option(JKTCP_OPT_RCVBUF, B);
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = wscale;
    jktcp_conn *c = sp_connect(&hs);
    cr_assert(sp.f.syn_wnd <= (uint32_t)B, "SYN window %u > RCVBUF %ld", sp.f.syn_wnd, B);
    uint32_t seq = 1;
    /* push 3x the buffer without reading */
    for (int k = 0; k < (int)(3 * B / 1000) + 2; k++) {
        sp_peer_data(seq, 1, 1000);
        const sp_seg *g;
        uint32_t ack = 0;
        bool any = false;
        while ((g = sp_next()) != NULL) {
            cr_assert(g->wnd <= (uint32_t)B, "advertised window %u > RCVBUF %ld: %s", g->wnd,
                      B, sp_str(g));
            cr_assert(g->ack - 1 <= (uint32_t)B, "acked %u bytes, RCVBUF %ld", g->ack - 1, B);
            ack = g->ack;
            any = true;
        }
        cr_assert(any);
        seq = ack; /* the peer resends from what was acked */
        jktcp_info i = sp_info(c);
        cr_assert(i.bytes_readable <= (uint64_t)B, "%llu bytes buffered, RCVBUF %ld",
                  (unsigned long long)i.bytes_readable, B);
        cr_assert(i.rcv_wnd <= (uint32_t)B);
    }
    jktcp_info i = sp_info(c);
    cr_assert(i.bytes_readable + 1000 > (uint64_t)B, "only %llu of %ld buffered",
              (unsigned long long)i.bytes_readable, B);
    sp_read_expect(c, 0, (size_t)i.bytes_readable);
    const sp_seg *g;
    while ((g = sp_next()) != NULL)
        cr_assert(g->wnd <= (uint32_t)B, "window update %u > RCVBUF %ld", g->wnd, B);
}

T(sndbuf_limit_holds)
{
    sndbuf_case(10000);
}

T(sndbuf_limit_holds_pow2)
{
    sndbuf_case(8192);
}

T(rcvbuf_limit_holds_unscaled)
{
    rcvbuf_case(16384, -1);
}

T(rcvbuf_limit_holds_scaled)
{
    rcvbuf_case(100000, 7);
}

T(rcvbuf_limit_holds_scaled_pow2)
{
    rcvbuf_case(131072, 7);
}

T(rcvbuf_limit_holds_unscaled_odd)
{
    rcvbuf_case(20000, -1);
}

/* A SACK connection whose out-of-order table holds 2 islands. */
static jktcp_conn *connect_ooo_ranges_2(void)
{
    sp_option(JKTCP_OPT_OOO_RANGES, 2);
    sp_hs hs = sp_plain(1000, 65535);
    hs.sack = true;
    hs.wscale = 7;
    return sp_connect(&hs);
}

/* JKTCP_OPT_OOO_RANGES: with a limit of 2, ten out-of-order islands keep
 * at most 2 (SACK reports at most 2 blocks); once the holes fill the data
 * is correct and the islands that were not kept are asked for again
 * (the cumulative ACK stops at them). */
T(ooo_ranges_limit_bounded_and_refilled)
{
    jktcp_conn *c = connect_ooo_ranges_2();
    /* islands [1001+2000k, 2001+2000k) for k = 0..9, holes between */
    for (uint32_t k = 0; k < 10; k++) {
        sp_peer_data(1001 + 2000 * k, 1, 1000);
        const sp_seg *g = sp_expect(JK_ACK, 1, 1, 0);
        cr_assert(g->s.opt.nsack <= 2, "%u SACK blocks with OOO_RANGES 2: %s",
                  g->s.opt.nsack, sp_str(g));
    }
    cr_assert_eq(sp_info(c).bytes_readable, 0);
    /* Fill every hole in order; the ACK says what is still missing. */
    uint32_t acked = 1;
    int guard = 0;
    while (acked < 20001) {
        cr_assert(guard++ < 100, "no progress at %u", acked);
        uint32_t len = 1000;
        sp_peer_data(acked, 1, len);
        const sp_seg *g = sp_expect(JK_ACK, 1, SP_ANY, 0);
        cr_assert(seq_ge(g->ack, acked + len), "ACK %u after data [%u, %u)", g->ack, acked,
                  acked + len);
        cr_assert(g->ack <= 20001);
        cr_assert(g->s.opt.nsack <= 2, "%s", sp_str(g));
        acked = g->ack;
    }
    sp_read_expect(c, 0, 20000);
}

/* With the out-of-order table full, a new island is dropped and the
 * islands already SACKed stay (no reneging, RFC 2018 §8): a sender does
 * not resend SACKed bytes, so forgetting them would stall it. */
T(ooo_ranges_full_keeps_sacked_islands)
{
    jktcp_conn *c = connect_ooo_ranges_2();
    sp_peer_data(5001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_peer_data(3001, 1, 1000);
    sp_expect(JK_ACK, 1, 1, 0);
    sp_peer_data(1001, 1, 1000); /* nearer, but the table is full */
    const sp_seg *g = sp_expect(JK_ACK, 1, 1, 0);
    cr_assert_eq(g->s.opt.nsack, 2, "%s", sp_str(g));
    for (int i = 0; i < 2; i++) {
        uint32_t l = g->s.opt.sack[i].left - sp.f.irs;
        cr_assert(l == 3001 || l == 5001, "block %d starts at %u: %s", i, l, sp_str(g));
    }
    sp_peer_data(1, 1, 1000);
    sp_expect(JK_ACK, 1, 1001, 0); /* the dropped island is asked for again */
    sp_peer_data(1001, 1, 2000);
    sp_expect(JK_ACK, 1, 4001, 0); /* the kept island at 3001 counted */
    sp_peer_data(4001, 1, 1000);
    sp_expect(JK_ACK, 1, 6001, 0);
    sp_read_expect(c, 0, 6000);
}

/* Listening twice on a port -> -EADDRINUSE; after unlisten it is free. */
T(listen_twice_eaddrinuse_then_free)
{
    jktcp_conn_listener *l1 = NULL, *l2 = (jktcp_conn_listener *)0x1;
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 5, &l1), 0);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 5, &l2), -EADDRINUSE);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 0, &l2), -EADDRINUSE);
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, -1, &l2), -EADDRINUSE);
    jktcp_adapter_unlisten(l1);
    l2 = NULL;
    cr_assert_eq(jktcp_adapter_listen(sp.a, 8080, 5, &l2), 0);
    cr_assert(l2);
}
