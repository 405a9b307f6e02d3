/* SPDX-License-Identifier: MIT */
/*
 * Limits that must hold: JKTCP_OPT_MAX_CONNS, JKTCP_OPT_SNDBUF,
 * JKTCP_OPT_RCVBUF, JKTCP_OPT_OOO_RANGES (a full out-of-order table), and
 * ephemeral ports until they run out.
 *
 * Suites `scripted` (T, T6), `hostile` (H, H6): the macros are in
 * tcp_test.h. Relative sequence numbers as in scripted.h: the SYN is seq 0,
 * the first data byte seq 1.
 */
#include "scripted.h"
#include "tcp.h"
#include "tcp_test.h"

#include <string.h>

/* ====================================================================== */
/* Send buffer and ephemeral ports                                        */
/* ====================================================================== */

/* ---- More data-path cases -------------------------------------------- */

/* The send buffer bounds what write queues; -EAGAIN when full, room
 * again after ACKs. */
T(data_sndbuf_limits_write)
{
    sp_option(JKTCP_OPT_SNDBUF, 8192);
    sp_hs hs = sp_plain(1000, 65535);
    jktcp_conn *c = sp_connect(&hs);
    ssize_t r = jktcp_conn_write(c, sp_pat(0), 20000, 0);
    cr_assert(r > 0 && r <= 8192 && r >= 4096, "write into an 8 KiB send buffer queued %zd", r);
    uint32_t q = (uint32_t)r;
    cr_assert_eq(jktcp_conn_write(c, sp_pat(q), 1000, 0), -EAGAIN, "write to a full buffer");
    cr_assert_eq(sp_info(c).bytes_queued, q);
    sp_brief b[32];
    size_t n = sp_drain(b, 32);
    uint32_t sent = 0;
    for (size_t k = 0; k < n; k++)
        sent += b[k].len;
    cr_assert_eq(sent, q, "sent %u of %u queued", sent, q);
    sp_peer_ack(1, 4001);
    r = jktcp_conn_write(c, sp_pat(q), 20000, 0);
    cr_assert_eq(r, 4000, "after 4000 bytes were ACKed write queued %zd", r);
}

/* ---- Targeted cases -------------------------------------------------- */

/* Ephemeral ports: random in 49152..65535, all distinct while their
 * connections exist, a port in TIME_WAIT is never handed out again, and an
 * exhausted range gives -EADDRNOTAVAIL instead of reuse. */
T(ephemeral_ports_unique_until_exhausted)
{
    sp_option(JKTCP_OPT_MAX_CONNS, 20000);
    sp_option(JKTCP_OPT_SNDBUF, 4096);
    sp_option(JKTCP_OPT_RCVBUF, 4096);
    sp_option(JKTCP_OPT_TIMEWAIT_MS, 60000);
    jktcp_conn *c = sp_connect(NULL);
    jktcp_info in;
    cr_assert_eq(jktcp_conn_info(c, &in, sizeof in), 0);
    uint16_t tw_port = in.local_port;
    cr_assert_eq(jktcp_conn_close(c), 0);
    sp_expect(JK_ACK | JK_FIN, 1, 1, 0);
    sp_send(JK_ACK | JK_FIN, 1, 2, SP_WND, NULL, 0, NULL);
    sp_expect(JK_ACK, 2, 2, 0); /* now in TIME_WAIT, holding tw_port */
    static uint8_t seen[65536];
    memset(seen, 0, sizeof seen);
    seen[tw_port] = 1;
    unsigned n = 0;
    uint16_t first = 0, second = 0;
    for (;;) {
        jktcp_conn *x;
        int r = jktcp_conn_connect(sp.a, 80, 0, &x);
        if (r != -EINPROGRESS) {
            cr_assert_eq(r, -EADDRNOTAVAIL, "connect %u: %s", n, jktcp_strerror(r));
            break;
        }
        cr_assert_eq(jktcp_conn_info(x, &in, sizeof in), 0);
        cr_assert(in.local_port >= 49152, "port %u outside the ephemeral range", in.local_port);
        cr_assert(!seen[in.local_port], "port %u handed out twice (TIME_WAIT port %u)",
                  in.local_port, tw_port);
        seen[in.local_port] = 1;
        if (n == 0)
            first = in.local_port;
        else if (n == 1)
            second = in.local_port;
        n++; /* the SYNs pile up in the port's bounded queue: not read */
    }
    cr_assert_eq(n, 16384 - 1, "%u ports before exhaustion", n);
    cr_assert(second != (uint16_t)(first + 1) || first != (uint16_t)(tw_port + 1),
              "ports look sequential, not random");
}

/* ====================================================================== */
/* User limits (suite hostile)                                            */
/* ====================================================================== */

/* JKTCP_OPT_MAX_CONNS: connect beyond it -> -EMFILE. */
H(max_conns_connect_emfile)
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
H(max_conns_passive_syn_rst)
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

H(sndbuf_limit_holds)
{
    sndbuf_case(10000);
}

H(sndbuf_limit_holds_pow2)
{
    sndbuf_case(8192);
}

H(rcvbuf_limit_holds_unscaled)
{
    rcvbuf_case(16384, -1);
}

H(rcvbuf_limit_holds_scaled)
{
    rcvbuf_case(100000, 7);
}

H(rcvbuf_limit_holds_scaled_pow2)
{
    rcvbuf_case(131072, 7);
}

H(rcvbuf_limit_holds_unscaled_odd)
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
H(ooo_ranges_limit_bounded_and_refilled)
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
H(ooo_ranges_full_keeps_sacked_islands)
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
