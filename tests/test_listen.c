/* SPDX-License-Identifier: MIT */
/*
 * Suite `listen`: what a listening port answers to segments that are not
 * a plain SYN (RFC 9293 §3.10.7.2, as Linux): an ACK gets a RST, a RST
 * nothing; a segment with neither SYN, ACK nor RST (a NULL, FIN or Xmas
 * scan without ACK, data alone) is dropped unanswered, and so is a SYN
 * carrying FIN — a port that answers those is visible to a scan. A closed
 * port answers them all with a RST (§3.10.7.1).
 */
#include "scripted.h"

#define T(name) Test(listen, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 30)
#define T6(name) Test(listen, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 30)

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

T(no_syn_ack_rst_dropped_v4) { silent_to_listener(); }
T6(no_syn_ack_rst_dropped_v6) { silent_to_listener(); }

/* An ACK to a listener gets a RST (§3.10.7.2 "second"); a RST nothing. */
T(ack_gets_rst_rst_gets_nothing)
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
T(closed_port_answers_rst)
{
    static const uint8_t flags[] = {0, JK_FIN, JK_PSH, JK_SYN | JK_FIN};
    for (size_t i = 0; i < sizeof flags; i++) {
        sp.f.lport = 81;
        sp.f.rport = (uint16_t)(41000 + i);
        sp_send(flags[i], 1000, 0, 65535, NULL, 0, NULL);
        sp_expect(JK_RST | JK_ACK, 0, SP_ANY, 0);
    }
}
