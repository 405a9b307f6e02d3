/* SPDX-License-Identifier: MIT */
/*
 * Hostile and malformed input: frames that must be dropped (addresses,
 * protocols, checksums, lengths, IPv4 fragments), blind SYN / data / ACK
 * injection (RFC 5961 §4, §5, §7), spoofed and reflected sources, SYN
 * floods, malformed option lengths.
 *
 * Suites `scripted` (T, T6), `hostile` (H, H6): the macros are in
 * tcp_test.h. Relative sequence numbers as in scripted.h: the SYN is seq 0,
 * the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

#include <malloc.h>
#include <string.h>

/* ====================================================================== */
/* Robustness: frames that must be dropped                                */
/* ====================================================================== */

static size_t build_closed_port_syn(uint8_t *buf, size_t cap)
{
    sp.f.lport = 81;
    sp.f.rport = 40000;
    return sp_build(buf, cap, JK_SYN, 1000, 0, 65535, NULL, 0, NULL);
}

T(drop_other_destination_address)
{
    uint8_t buf[256];
    struct jk_addr keep = sp.local;
    cr_assert_eq(jk_addr_parse("198.18.0.99", &sp.local), 0);
    size_t n = build_closed_port_syn(buf, sizeof buf);
    sp.local = keep;
    sp_push_raw(buf, n);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_address, 1);
    cr_assert_eq(st.rst_sent, 0);
}

T(drop_other_source_address)
{
    uint8_t buf[256];
    struct jk_addr keep = sp.peer;
    cr_assert_eq(jk_addr_parse("198.18.0.77", &sp.peer), 0);
    size_t n = build_closed_port_syn(buf, sizeof buf);
    sp.peer = keep;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_address, 1);
}

T(drop_udp_ignored)
{
    uint8_t f[32] = { 0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17 };
    memcpy(f + 12, sp.peer.a, 4);
    memcpy(f + 16, sp.local.a, 4);
    f[20] = 0x14; f[21] = 0xe9; /* 5353 */
    f[22] = 0x14; f[23] = 0xe9;
    f[24] = 0; f[25] = 12;
    memcpy(f + 28, "ping", 4);
    sp_fix_checksums(f, sizeof f);
    sp_push_raw(f, sizeof f);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.ignored_proto, 1);
    cr_assert_eq(st.drop_checksum + st.drop_address + st.drop_length, 0);
}

T(drop_icmp_ignored)
{
    uint8_t f[28] = { 0x45, 0, 0, 28, 0, 2, 0, 0, 64, 1 };
    memcpy(f + 12, sp.peer.a, 4);
    memcpy(f + 16, sp.local.a, 4);
    f[20] = 8; /* echo request */
    sp_fix_checksums(f, sizeof f);
    sp_push_raw(f, sizeof f);
    sp_expect_none();
    cr_assert_eq(sp_stats().ignored_proto, 1);
}

T(drop_bad_tcp_checksum)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[20 + 16] ^= 0x5a;
    sp_push_raw(buf, n);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_checksum, 1);
    cr_assert_eq(st.rst_sent, 0);
}

T(drop_bad_ipv4_header_checksum)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[10] ^= 0x11;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_checksum, 1);
}

T6(drop_bad_tcp_checksum_ipv6)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[40 + 16] ^= 0x5a;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_checksum, 1);
    /* The intact frame is answered: the checksum was the only problem. */
    buf[40 + 16] ^= 0x5a;
    sp_push_raw(buf, n);
    sp_expect(JK_RST | JK_ACK, 0, 1001, 0);
}

T(drop_ipv6_frame_on_ipv4_adapter)
{
    uint8_t buf[256];
    struct jk_addr kl = sp.local, kp = sp.peer;
    jk_addr_parse("fd00::2", &sp.local);
    jk_addr_parse("fd00::1", &sp.peer);
    size_t n = build_closed_port_syn(buf, sizeof buf);
    sp.local = kl;
    sp.peer = kp;
    sp_push_raw(buf, n);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_version + st.drop_address, 1, "version %llu address %llu",
                 (unsigned long long)st.drop_version, (unsigned long long)st.drop_address);
}

/* Piece [off, off+len) of IPv4 frame f's upper layer (20-byte header). */
static size_t ip4_piece(uint8_t *out, const uint8_t *f, size_t off, size_t len, bool more)
{
    memcpy(out, f, 20);
    memcpy(out + 20, f + 20 + off, len);
    out[2] = (uint8_t)((20 + len) >> 8);
    out[3] = (uint8_t)(20 + len);
    out[6] = (uint8_t)((more ? 0x20 : 0) | (off / 8) >> 8);
    out[7] = (uint8_t)(off / 8);
    out[10] = out[11] = 0;
    uint16_t c = jk_csum_fold(jk_csum_add(0, out, 20));
    out[10] = (uint8_t)(c >> 8);
    out[11] = (uint8_t)c;
    return 20 + len;
}

/* RFC 1122 §3.3.2: a segment cut into IPv4 fragments, the last first, is
 * put together and taken; a lone first piece is held, unanswered. */
T(ipv4_fragments_reassembled)
{
    jktcp_conn *c = sp_connect(NULL);
    static uint8_t f[2048], p1[2048], p2[2048];
    size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 1000, NULL);
    size_t n1 = ip4_piece(p1, f, 0, 512, true), n2 = ip4_piece(p2, f, 512, n - 20 - 512, false);
    sp_push_raw(p2, n2);
    sp_expect_none();
    sp_push_raw(p1, n1);
    sp_expect(JK_ACK, 1, 1001, 0);
    sp_read_expect(c, 0, 1000);
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.frags_reassembled, 1);
    cr_assert_eq(st.drop_fragment, 0);
    /* a closed port's SYN in one piece with "more" set: held, no RST */
    n = build_closed_port_syn(f, sizeof f);
    n1 = ip4_piece(p1, f, 0, n - 20, true);
    sp_push_raw(p1, n1);
    sp_expect_none();
    cr_assert_eq(sp_stats().frags_reassembled, 1);
}

/* RFC 5722 (Linux does it for IPv4 too): overlapping pieces drop the
 * datagram; nothing is taken and the drops are counted. */
T(ipv4_overlapping_fragments_dropped)
{
    jktcp_conn *c = sp_connect(NULL);
    static uint8_t f[2048], p1[2048], p2[2048];
    size_t n = sp_build(f, sizeof f, JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 1000, NULL);
    size_t n1 = ip4_piece(p1, f, 0, 512, true), n2 = ip4_piece(p2, f, 504, n - 20 - 504, false);
    sp_push_raw(p1, n1);
    sp_push_raw(p2, n2);
    sp_expect_none();
    cr_assert_eq(sp_info(c).bytes_readable, 0);
    cr_assert_eq(sp_stats().drop_fragment, 2);
    cr_assert_eq(sp_stats().frags_reassembled, 0);
}

T(drop_truncated_frame)
{
    uint8_t buf[256];
    build_closed_port_syn(buf, sizeof buf);
    sp_push_raw(buf, 30);
    sp_push_raw(buf, 10);
    sp_expect_none();
    jktcp_stats st = sp_stats();
    cr_assert_eq(st.drop_short + st.drop_length, 2, "short %llu length %llu",
                 (unsigned long long)st.drop_short, (unsigned long long)st.drop_length);
}

T(drop_bad_tcp_data_offset)
{
    uint8_t buf[256];
    size_t n = build_closed_port_syn(buf, sizeof buf);
    buf[20 + 12] = (uint8_t)((buf[20 + 12] & 0x0f) | 0x40); /* doff 4 < 5 */
    sp_fix_checksums(buf, n);
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_stats().drop_options, 1);
}

/* A data segment with a bad checksum is neither ACKed nor delivered. */
T(drop_bad_checksum_data_not_acked)
{
    jktcp_conn *c = sp_connect(NULL);
    uint8_t buf[2048];
    size_t n = sp_build(buf, sizeof buf, JK_ACK | JK_PSH, 1, 1, SP_WND, sp_pat(0), 100, NULL);
    buf[n - 1] ^= 0xff;
    sp_push_raw(buf, n);
    sp_expect_none();
    cr_assert_eq(sp_info(c).bytes_readable, 0);
    cr_assert_eq(sp_stats().drop_checksum, 1);
}

/* ====================================================================== */
/* Blind injection, spoofed sources, floods, bad options (suite hostile)  */
/* ====================================================================== */

/* ---- RFC 5961: blind RST / SYN / data injection ---------------------- */

/* RFC 5961 §4.2: any SYN in a synchronized state, whatever its sequence
 * number (in the window, at RCV.NXT, outside it), draws a challenge ACK and
 * does not reset the connection. */
H(syn_in_established_always_challenge_ack)
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

/* RFC 5961 §7: a flood of bare segments that each owe a challenge ACK (in-
 * window RSTs and SYNs, ACKs for data never sent, ACKs out of the window)
 * gets one ACK per interval, not one each; the connection is untouched
 * and the next interval answers again. */
H(challenge_acks_rate_limited)
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
H(blind_data_outside_window_ignored)
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
H(ack_of_unsent_data_ignored_with_data_in_flight)
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
H(ack_older_than_max_window_ignored)
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

/* ---- Addresses and ports --------------------------------------------- */

H(spoofed_source_never_touches_connection)
{
    spoofed_source_common("198.18.0.77");
}

H6(spoofed_source_never_touches_connection_ipv6)
{
    spoofed_source_common("fd00::77");
}

/* The adapter's own address as the source (a reflected frame) is not
 * the peer either. */
H(reflected_own_address_dropped)
{
    spoofed_source_common("198.18.0.2");
}

/* RFC 9293 §3.10.7.1: a segment for no connection (right address, a
 * port pair nobody uses — including the live connection's ports swapped)
 * gets a RST; the live connection is untouched. */
H(unknown_port_gets_rst_connection_untouched)
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
H(listener_ignores_syn_from_other_address)
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

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* ---- SYN flood ------------------------------------------------------- */

/* jktcp.h: backlog bounds the half-open queue; SYNs beyond it are
 * answered with RST (RFC 9293 §3.10.7.2 form <SEQ=0><ACK=SEG.SEQ+1>
 * <CTL=RST,ACK>). Thousands of SYNs from distinct ports: at most N
 * connections exist at any time, memory stays flat, the half-open ones
 * time out, and a real handshake then succeeds. */
H(syn_flood_bounded_then_handshake_succeeds)
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
H(syn_flood_burst_bounded)
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
H(syn_flood_half_open_reset_frees_backlog)
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

/* ---- Malformed options inside an otherwise valid segment ------------- */

/* Mangled option lengths never drop a segment by themselves (as Linux's
 * tcp_parse_options: the list ends, or the option is ignored), but here
 * each mangles the timestamp option, so the segment has none once
 * timestamps were negotiated: dropped (RFC 7323 §3.2) and counted in
 * drop_invalid. A data offset beyond the segment is a drop_options. */
H(bad_option_lengths_leave_no_timestamp)
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
