/* SPDX-License-Identifier: MIT */
/* Helpers shared by the scripted TCP tests (see tcp_test.h). */
#include "tcp_test.h"

#include <string.h>

/* Active open up to the SYN: returns the connection in SYN_SENT with the
 * flow set up (iss known, irs = sp_irs_next). */
jktcp_conn *syn_sent(void)
{
    jktcp_conn *c = NULL;
    int r = jktcp_conn_connect(sp.a, 80, 0, &c);
    cr_assert_eq(r, -EINPROGRESS, "connect: %d", r);
    memset(&sp.f, 0, sizeof sp.f);
    sp.f.rport = 80;
    sp.f.wnd = 65535;
    const sp_seg *g = sp_expect(JK_SYN, SP_ANY, SP_ANY, 0);
    sp.f.lport = g->s.sport;
    sp.f.iss = g->s.seq;
    sp.f.syn_wnd = g->s.wnd;
    sp.f.irs = sp_irs_next;
    if (g->s.opt.has_ts) {
        sp.f.ts_recent = g->s.opt.tsval;
        sp.f.ts_seen = true;
    }
    sp.c = c;
    return c;
}

sp_opts full_syn_opts(void)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.mss = 1460;
    o.ws = true;
    o.wscale = 7;
    o.sack_ok = true;
    o.ts = true;
    return o;
}

/* RFC 6298 §2: SRTT follows the measured RTT (alpha 1/8). */
void rtt_round(jktcp_conn *c, uint32_t *nxt, uint32_t rtt_ms)
{
    sp_write_pat(c, *nxt - 1, 100);
    sp_expect(JK_ACK, *nxt, 1, 100);
    sp_advance_ms(rtt_ms);
    *nxt += 100;
    sp_peer_ack(1, *nxt);
}

/* Advance the fake clock timer by timer (jktcp_adapter_timeout) until the
 * adapter emits a segment, at most max_ms. Much faster than sp_wait for
 * waits of minutes. */
const sp_seg *wait_seg(uint64_t max_ms, uint64_t *elapsed_ms)
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
const uint8_t *alt_pat(size_t off)
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

/* Find the timestamp option (kind 8) in a built IPv4 frame. */
size_t find_ts_opt(const uint8_t *f)
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

/* Adapter -> peer transfer of n bytes starting at relative seq *nxt; the
 * peer ACKs every segment as it arrives (slow start grows cwnd). */
void transfer_acked(jktcp_conn *c, uint32_t *nxt, size_t n)
{
    sp_write_pat(c, *nxt - 1, n);
    uint32_t end = *nxt + (uint32_t)n, acked = *nxt;
    while (seq_lt(acked, end)) {
        const sp_seg *g = sp_next();
        cr_assert(g, "transfer stalled at %u of %u", acked, end);
        cr_assert(g->s.len > 0 && g->seq == acked, "expected data at seq %u, got %s", acked,
                  sp_str(g));
        sp_assert_payload(g, g->seq - 1);
        acked = g->seq + g->s.len;
        sp_peer_ack(1, acked);
    }
    *nxt = end;
    sp_expect_none();
}

/* An ACK of ack carrying the SACK blocks blk[0..n). */
void sp_sack_ack(uint32_t ack, const uint32_t (*blk)[2], int n)
{
    sp_opts o;
    memset(&o, 0, sizeof o);
    o.nsack = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        o.sack[i].left = blk[i][0];
        o.sack[i].right = blk[i][1];
    }
    sp_send(JK_ACK, 1, ack, SP_WND, NULL, 0, &o);
}

/* A SACK peer (MSS 1000, window scale 7) after 20,000 bytes of slow start:
 * cwnd 30,000; *S is the next sequence number. */
jktcp_conn *sack_peer_warmed(uint32_t *S)
{
    sp_hs hs = sp_plain(1000, 65535);
    hs.wscale = 7;
    hs.sack = true;
    jktcp_conn *c = sp_connect(&hs);
    *S = 1;
    transfer_acked(c, S, 20000);
    return c;
}

/* A SACK peer (MSS 1000, no timestamps) on a 40 ms path: the handshake
 * and four 100-byte rounds each took 40 ms, so min RTT and SRTT are 40 ms
 * (the reordering window min_rtt / 4 = 10 ms); *S is the next sequence
 * number. */
jktcp_conn *sack_peer_40ms(uint32_t *S)
{
    jktcp_conn *c = syn_sent();
    sp_advance_ms(40); /* every RTT sample 40 ms, the handshake's too */
    sp_opts o = full_syn_opts();
    o.mss = 1000;
    o.ts = false;
    sp_send(JK_SYN | JK_ACK, 0, 1, 65535, NULL, 0, &o);
    sp_expect(JK_ACK, 1, 1, 0);
    *S = 1;
    for (int i = 0; i < 4; i++)
        rtt_round(c, S, 40);
    return c;
}
