/* SPDX-License-Identifier: MIT */
/*
 * Suite `icmp`: ICMP and ICMPv6 errors about our segments, packet by
 * packet (tests/support/scripted.h).
 *  - "Fragmentation needed" / "packet too big" (RFC 1191, RFC 8201) lower
 *    the path MTU (IPv4 never below 552; an IPv6 report below 1280 is
 *    ignored) and never up, and what is in
 *    flight goes again at once in segments that fit, without a window cut.
 *  - Unreachable in SYN-SENT fails the connect at once (port ->
 *    -ECONNREFUSED, host -> -EHOSTUNREACH), as Linux; while connected it is
 *    a soft error (RFC 1122 §4.2.3.9): reported in jktcp_info, and it
 *    becomes the connection's error only if the retries run out.
 *  - A report is believed only if it quotes a segment of ours to the peer
 *    with a sequence number in flight (RFC 5927); others are counted and
 *    ignored.
 */
#include "scripted.h"

#include "icmp.h"

#include <string.h>

#define T(name) Test(icmp, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 60)
#define T6(name) Test(icmp, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 60)

/* A router between us and the peer: reports come from it, not the peer. */
static struct jk_addr router(void)
{
    struct jk_addr r;
    cr_assert_eq(jk_addr_parse(sp.family == 4 ? "198.18.0.254" : "fd00::fe", &r), 0);
    return r;
}

/* Wire type/code of the three reports the tests send. */
enum report { TOO_BIG, PORT_UNREACH, HOST_UNREACH, UNKNOWN_ERROR };

static void type_code(enum report r, uint8_t *type, uint8_t *code)
{
    bool v4 = sp.family == 4;
    switch (r) {
    case TOO_BIG: *type = v4 ? 3 : 2, *code = v4 ? 4 : 0; break;
    case PORT_UNREACH: *type = v4 ? 3 : 1, *code = v4 ? 3 : 4; break;
    case HOST_UNREACH: *type = v4 ? 3 : 1, *code = v4 ? 1 : 3; break;
    case UNKNOWN_ERROR: *type = 100, *code = 0; break; /* IPv6 only: an error type (< 128) */
    }
}

/* Push a report from `from` quoting the frame of g. */
static void report_from(const struct jk_addr *from, enum report r, uint32_t mtu, const sp_seg *g)
{
    uint8_t f[1400], type, code;
    type_code(r, &type, &code);
    size_t n = jk_build_icmp(f, sizeof f, from, &sp.local, type, code, mtu, g->frame, g->flen);
    cr_assert(n > 0, "jk_build_icmp");
    sp_push_raw(f, n);
}

static void report(enum report r, uint32_t mtu, const sp_seg *g)
{
    struct jk_addr rt = router();
    report_from(&rt, r, mtu, g);
}

/* Connected, ten full segments (1448 bytes: MTU 1500 with timestamps) in
 * flight; returns a copy of the first one. */
static sp_seg flight(jktcp_conn **cp)
{
    jktcp_conn *c = sp_connect(NULL);
    sp_write_pat(c, 0, 20000);
    static sp_seg first;
    first = *sp_expect(JK_ACK, 1, 1, SP_ANY);
    sp_brief b[16];
    cr_assert_eq(sp_drain(b, 16), 9, "the rest of the initial window");
    *cp = c;
    return first;
}

static uint32_t payload_for(uint32_t mtu)
{
    return mtu - (sp.family == 4 ? 20 : 40) - 20 - 12;
}

/* The report's effect: the path MTU, the segment size, and everything in
 * flight sent again at once in segments that fit. */
static void expect_resent_at(jktcp_conn *c, uint32_t mtu)
{
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.pmtu, mtu, "path MTU %u, want %u", i.pmtu, mtu);
    cr_assert_eq(i.mss, payload_for(mtu), "send MSS %u after the report", i.mss);
    uint32_t cwnd = i.cwnd;
    uint32_t want_seq = 1;
    for (int k = 0; k < 3; k++) { /* at once: no clock advance */
        const sp_seg *g = sp_expect(JK_ACK, want_seq, 1, SP_ANY);
        cr_assert(g->flen <= mtu, "a %zu-byte frame after the MTU went to %u", g->flen, mtu);
        cr_assert_eq(g->s.len, payload_for(mtu));
        want_seq += g->s.len;
    }
    cr_assert_geq(sp_info(c).cwnd, cwnd, "the window was cut for a smaller path");
}

T(too_big_v4_lowers_pmtu_and_resends)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(TOO_BIG, 1280, &first);
    expect_resent_at(c, 1280);
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.icmp_in, 1);
    cr_assert_eq(st.icmp_ignored, 0);
}

T6(too_big_v6_lowers_pmtu_and_resends)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(TOO_BIG, 1400, &first);
    expect_resent_at(c, 1400);
    cr_assert_eq(sp_stats().icmp_in, 1);
}

/* IPv4: never below Linux's min_pmtu (552), whatever a router claims. */
T(too_big_v4_floor_552)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(TOO_BIG, 300, &first);
    expect_resent_at(c, 552);
}

/* IPv6: every link carries 1280, so a report below it is bogus (RFC 8201
 * §4, RFC 8021): ignored, nothing resent, the MTU stays. */
T6(too_big_v6_below_1280_ignored)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(TOO_BIG, 1000, &first);
    cr_assert_eq(sp_info(c).pmtu, 1500);
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.icmp_in, 0);
    cr_assert_eq(st.icmp_ignored, 1);
    report(TOO_BIG, 0, &first);
    cr_assert_eq(sp_info(c).pmtu, 1500);
    cr_assert_eq(sp_stats().icmp_ignored, 2);
}

/* RFC 1191 §7: a router that leaves the MTU field 0 gets the next plateau
 * below the dropped packet (1500 -> 1492). */
T(too_big_v4_unknown_mtu_plateau)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(TOO_BIG, 0, &first);
    expect_resent_at(c, 1492);
}

/* ICMP lowers the path MTU, never raises it. */
T(too_big_never_raises)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(TOO_BIG, 1280, &first);
    expect_resent_at(c, 1280);
    const sp_seg *g = sp_expect_any();
    (void)g;
    report(TOO_BIG, 1400, &first);
    cr_assert_eq(sp_info(c).pmtu, 1280);
    report(TOO_BIG, 9000, &first);
    cr_assert_eq(sp_info(c).pmtu, 1280);
}

/* Later connections start with what the path was found to carry. */
T(too_big_applies_to_new_connections)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(TOO_BIG, 1280, &first);
    cr_assert_eq(sp_info(c).pmtu, 1280);
    cr_assert_eq(jktcp_conn_abort(c), 0);
    sp.c = NULL;
    sp_brief b[32];
    sp_drain(b, 32);
    jktcp_conn *c2 = sp_connect(NULL);
    cr_assert_eq(sp_info(c2).mss, payload_for(1280));
}

/* RFC 5927 §4.1: a report quoting a sequence number not in flight
 * (already acknowledged, or never sent) is ignored. */
T(report_outside_flight_ignored)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    sp_seg old = first, future = first;
    /* rewrite the quoted sequence number: 1 before snd_una, and past snd_max */
    uint8_t *tcp = old.frame + 20;
    uint32_t s0 = sp.f.iss; /* the SYN: acknowledged long ago */
    tcp[4] = (uint8_t)(s0 >> 24), tcp[5] = (uint8_t)(s0 >> 16), tcp[6] = (uint8_t)(s0 >> 8),
    tcp[7] = (uint8_t)s0;
    tcp = future.frame + 20;
    uint32_t s1 = sp.f.iss + 1 + 10 * 1448 + 1000;
    tcp[4] = (uint8_t)(s1 >> 24), tcp[5] = (uint8_t)(s1 >> 16), tcp[6] = (uint8_t)(s1 >> 8),
    tcp[7] = (uint8_t)s1;
    report(TOO_BIG, 1280, &old);
    report(TOO_BIG, 1280, &future);
    report(HOST_UNREACH, 0, &future);
    sp_expect_none();
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.pmtu, 1500);
    cr_assert_eq(i.soft_error, 0);
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.icmp_ignored, 3);
    cr_assert_eq(st.icmp_in, 0);
}

/* Reports about segments we did not send to our peer, or sent to
 * someone else: ignored. The outer source may be anyone (a router). */
T(report_about_other_flows_ignored)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    sp_seg other = first;
    other.frame[19] ^= 1; /* the quoted destination is not our peer */
    report(TOO_BIG, 1280, &other);
    sp_seg ports = first;
    ports.frame[20] ^= 0x40; /* our port: no such connection */
    report(TOO_BIG, 1280, &ports);
    cr_assert_eq(sp_info(c).pmtu, 1500);
    cr_assert_eq(sp_stats().icmp_ignored, 2);
    /* from the peer itself it counts too */
    report_from(&sp.peer, TOO_BIG, 1280, &first);
    cr_assert_eq(sp_info(c).pmtu, 1280);
}

T(report_bad_checksum_dropped)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    uint8_t f[1400], type, code;
    type_code(TOO_BIG, &type, &code);
    struct jk_addr rt = router();
    size_t n = jk_build_icmp(f, sizeof f, &rt, &sp.local, type, code, 1280, first.frame, first.flen);
    f[n - 1] ^= 0x55;
    sp_push_raw(f, n);
    cr_assert_eq(sp_info(c).pmtu, 1500);
    cr_assert_eq(sp_stats().drop_checksum, 1);
}

/* The connect fails at once on an unreachable report about its SYN. */
static void connect_gets(enum report r, int want)
{
    jktcp_conn *c = NULL;
    cr_assert_eq(jktcp_conn_connect(sp.a, 80, 0, &c), -EINPROGRESS);
    sp.c = c;
    static sp_seg syn;
    syn = *sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    sp.f.iss = syn.s.seq;
    report(r, 0, &syn);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED, "state after the report");
    cr_assert_eq(jktcp_conn_error(c), want, "connect error %d (%s)", jktcp_conn_error(c),
                 jktcp_strerror(jktcp_conn_error(c)));
    sp_expect_none(); /* no RST for it, no more SYNs */
    sp_advance_ms(3000);
    sp_expect_none();
}

T(syn_sent_port_unreachable_refused) { connect_gets(PORT_UNREACH, -ECONNREFUSED); }
T(syn_sent_host_unreachable) { connect_gets(HOST_UNREACH, -EHOSTUNREACH); }
T6(syn_sent_port_unreachable_refused_v6) { connect_gets(PORT_UNREACH, -ECONNREFUSED); }
T6(syn_sent_addr_unreachable_v6) { connect_gets(HOST_UNREACH, -EHOSTUNREACH); }
/* RFC 4443 §2.4(b): an ICMPv6 error type we do not know still reaches TCP
 * (Linux: -EPROTO) */
T6(syn_sent_unknown_error_type_v6) { connect_gets(UNKNOWN_ERROR, -EPROTO); }

/* Connected: unreachable is soft. The connection stays, the error shows
 * in jktcp_info, data flows on when the path comes back; and if it never
 * does, the error is the report's, not -ETIMEDOUT. */
T(established_unreachable_is_soft)
{
    sp_option(JKTCP_OPT_MAX_RETRIES, 3);
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(HOST_UNREACH, 0, &first);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.state, JKTCP_ESTABLISHED);
    cr_assert_eq(i.soft_error, -EHOSTUNREACH);
    cr_assert_eq(jktcp_conn_error(c), 0, "a soft error is no connection error");
    uint8_t b[8];
    cr_assert_eq(jktcp_conn_read(c, b, sizeof b, 0), -EAGAIN);
    /* nothing ever answers: the retries run out with the report's error */
    for (int k = 0; k < 200 && sp_state_of(c) != JKTCP_CLOSED; k++)
        sp_advance_ms(500);
    cr_assert_eq(sp_state_of(c), JKTCP_CLOSED);
    cr_assert_eq(jktcp_conn_error(c), -EHOSTUNREACH, "gave up with %d",
                 jktcp_conn_error(c));
}

T(established_unreachable_then_recovers)
{
    jktcp_conn *c;
    sp_seg first = flight(&c);
    report(PORT_UNREACH, 0, &first);
    cr_assert_eq(sp_info(c).soft_error, -ECONNREFUSED);
    sp_peer_ack(1, 1 + 10 * 1448); /* the path is back */
    sp_brief b[32];
    cr_assert(sp_drain(b, 32) > 0, "no new data after the ACK");
    cr_assert_eq(sp_state_of(c), JKTCP_ESTABLISHED);
    cr_assert_eq(jktcp_conn_error(c), 0);
}

/* Echo requests and other informational ICMP stay ignored protocols. */
T(echo_request_ignored)
{
    struct jk_addr rt = router();
    uint8_t f[64];
    size_t n = jk_build_icmp(f, sizeof f, &rt, &sp.local, 8, 0, 0, (const uint8_t *)"ping", 4);
    sp_push_raw(f, n);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.ignored_proto, 1);
    cr_assert_eq(st.icmp_in + st.icmp_ignored, 0);
}
