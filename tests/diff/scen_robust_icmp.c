/* SPDX-License-Identifier: MIT */
/*
 * Differential scenarios: ICMP errors about the SUT's segments (RFC 1122
 * §4.2.3.9, RFC 5927, RFC 5461; path MTU: RFC 1191, RFC 8201; RFC 6633).
 * Each report quotes a segment the SUT really sent (its first bytes, as a
 * router would), from the peer or from a router on the link (198.18.0.254
 * / fd00::fe: the kernel's TUN routes cover both).
 *
 * Path MTU reports leave a route exception in the kernel's namespace for
 * the peer's address (10 minutes); the scenarios flush it at the end, or
 * every later scenario would see the small MTU.
 */
#include "diff.h"
#include "icmp.h"
#include "netns.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define F_MAX 2048

static const char zeros[8192];

static bool v4(struct dx *x) { return dx_family(x) == 4; }

static const char *router(struct dx *x) { return v4(x) ? "198.18.0.254" : "fd00::fe"; }

/* A copy of a segment the SUT sent (dx_next's buffer is reused). */
struct quote {
    uint8_t f[F_MAX];
    size_t n;
    struct jk_addr sut, peer;
};

static bool take(struct quote *q, const struct dx_seg *g)
{
    if (!g)
        return false;
    memcpy(q->f, g->frame, g->flen);
    q->n = g->flen;
    q->sut = g->s.src;
    q->peer = g->s.dst;
    return true;
}

/* Add delta to the quoted segment's sequence number. */
static void shift_seq(struct quote *q, uint32_t delta)
{
    uint8_t *t = q->f + ((q->f[0] >> 4) == 4 ? (size_t)(q->f[0] & 15) * 4 : 40) + 4;
    uint32_t s = ((uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3]) + delta;
    t[0] = (uint8_t)(s >> 24);
    t[1] = (uint8_t)(s >> 16);
    t[2] = (uint8_t)(s >> 8);
    t[3] = (uint8_t)s;
}

/* Send an ICMP error about q from `from` (NULL: the peer): IPv4 type4 /
 * code4, IPv6 type6 / code6, the MTU field; bad_sum breaks its checksum. */
static void report(struct dx *x, const struct quote *q, const char *from, uint8_t type4,
                   uint8_t code4, uint8_t type6, uint8_t code6, uint32_t mtu, bool bad_sum)
{
    uint8_t f[F_MAX];
    struct jk_addr src = q->peer;
    if (from)
        jk_addr_parse(from, &src);
    size_t n = jk_build_icmp(f, sizeof f, &src, &q->sut, v4(x) ? type4 : type6,
                             v4(x) ? code4 : code6, mtu, q->f, q->n);
    if (!n)
        dx_fail(x, "could not build an ICMP report");
    if (bad_sum)
        f[(v4(x) ? 20 : 40) + 3] ^= 0x5a;
    dx_send_raw(x, f, n);
}

/* The kernel keeps what a "too big" taught it about the peer's address:
 * forget it (IPv4: a flush bumps the generation the exceptions carry;
 * IPv6: the flush removes them). */
static void forget_pmtu(struct dx *x)
{
    if (strcmp(dx_system(x), "kernel") == 0)
        jkt_sh(v4(x) ? "ip -4 route flush cache" : "ip -6 route flush cache", NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* Connecting (SYN-SENT)                                                   */
/* ---------------------------------------------------------------------- */

/* Connect; the SYN quoted in q. */
static bool connect_syn(struct dx *x, struct quote *q)
{
    dx_connect(x);
    const struct dx_seg *g = dx_next(x, 1000);
    dx_out(x, "syn", "%s", g ? dx_str(g) : "none");
    return take(q, g) && g->s.flags == JK_SYN;
}

/* What the application's connect says, and whether the SUT sends more. */
static void connect_outcome(struct dx *x)
{
    int r = dx_connect_result(x, 300);
    dx_out(x, "connect", "%s", r ? dx_errname(r) : "ok");
    dx_note_all(x, "then", 100);
}

/* The handshake completes after a report that had to be ignored. */
static void complete(struct dx *x)
{
    struct dx_opt o = dx_syn_opts(x);
    dx_send(x, JK_SYN | JK_ACK, 0, 1, NULL, 0, &o);
    dx_note(x, "ack of our SYN-ACK", 500);
    int r = dx_connect_result(x, 500);
    dx_out(x, "connect", "%s", r ? dx_errname(r) : "ok");
}

/* RFC 1122 §4.2.3.9: port unreachable is a hard error; the connect fails
 * with ECONNREFUSED at once (both, as Linux's tcp_v4_err / tcp_v6_err). */
DX(robust, icmp_port_unreach_connect, NULL, NULL, NULL)
{
    struct quote q;
    if (!connect_syn(x, &q))
        return;
    report(x, &q, NULL, 3, 3, 1, 4, 0, false);
    connect_outcome(x);
}

/* RFC 5461 §2: host unreachable from a router while connecting. RFC 1122
 * calls it soft, but both abort the connection attempt (as most stacks
 * do): EHOSTUNREACH. */
DX(robust, icmp_host_unreach_connect, NULL, NULL, NULL)
{
    struct quote q;
    if (!connect_syn(x, &q))
        return;
    report(x, &q, router(x), 3, 1, 1, 3, 0, false);
    connect_outcome(x);
}

/* RFC 5927 §4.1: a report quoting a sequence number outside what is in
 * flight (here the SYN's + 1000) cannot be about this connection and is
 * ignored: the handshake then completes. */
DX(robust, icmp_seq_outside_flight, NULL, NULL, NULL)
{
    struct quote q;
    if (!connect_syn(x, &q))
        return;
    shift_seq(&q, 1000);
    report(x, &q, NULL, 3, 3, 1, 4, 0, false);
    dx_out(x, "connect after the report", "%s", dx_errname(dx_connect_result(x, 200)));
    complete(x);
}

/* RFC 1122 §3.2.2 / RFC 4443 §2.4: an ICMP message whose checksum fails
 * is discarded: a port unreachable with a broken checksum does not fail
 * the connect. */
DX(robust, icmp_bad_checksum, NULL, NULL, NULL)
{
    struct quote q;
    if (!connect_syn(x, &q))
        return;
    report(x, &q, NULL, 3, 3, 1, 4, 0, true);
    dx_out(x, "connect after the report", "%s", dx_errname(dx_connect_result(x, 200)));
    complete(x);
}

/* RFC 792 / RFC 4443 §4.1: an echo request is no error report, even when
 * its payload looks like a quote of the SYN (laid out as a port
 * unreachable would carry it): TCP ignores it and the handshake
 * completes. (The kernel answers the echo; that is not TCP's business.) */
DX(robust, icmp_echo_quoting_syn, NULL, NULL, NULL)
{
    struct quote q;
    if (!connect_syn(x, &q))
        return;
    report(x, &q, NULL, 8, 0, 128, 0, 0x1234, false);
    dx_out(x, "connect after the echo", "%s", dx_errname(dx_connect_result(x, 200)));
    complete(x);
}

/* RFC 6633 (RFC 9293 MUST-55): Source Quench (IPv4 type 4) is silently
 * discarded: the handshake completes. IPv6 has no such message (n/a). */
DX(robust, icmp_source_quench, NULL, NULL, NULL)
{
    struct quote q;
    if (!v4(x)) {
        dx_out(x, "ipv6", "no source quench");
        return;
    }
    if (!connect_syn(x, &q))
        return;
    report(x, &q, router(x), 4, 0, 0, 0, 0, false);
    dx_out(x, "connect after the report", "%s", dx_errname(dx_connect_result(x, 200)));
    complete(x);
}

/* An error type the SUT does not know (IPv4 42, unassigned; IPv6 100,
 * private experimentation) quoting the SYN. IPv4: Linux discards unknown
 * types. IPv6: RFC 4443 §2.4(b) says an error of unknown type MUST be
 * passed to the upper layer; Linux's TCP then fails the connect with
 * EPROTO (icmpv6_err_convert's default); jktcp does the same (-EPROTO). */
DX(robust, icmp_unknown_error_type, NULL, NULL, NULL)
{
    struct quote q;
    if (!connect_syn(x, &q))
        return;
    report(x, &q, router(x), 42, 0, 100, 0, 0, false);
    dx_out(x, "connect after the report", "%s", dx_errname(dx_connect_result(x, 200)));
    complete(x);
}

/* ---------------------------------------------------------------------- */
/* Passive open (SYN-RECEIVED)                                             */
/* ---------------------------------------------------------------------- */

/* The SUT listens and answers the peer's SYN; its SYN-ACK in q. */
static bool syn_ack(struct dx *x, struct quote *q)
{
    struct dx_opt o = dx_syn_opts(x);
    dx_listen(x, 16);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, &o);
    const struct dx_seg *g = dx_next(x, 1000);
    dx_out(x, "syn-ack", "%s", g ? dx_str(g) : "none");
    return take(q, g) && g->s.flags == (JK_SYN | JK_ACK);
}

/* The peer completes the handshake after the report. */
static void ack_after(struct dx *x)
{
    dx_sleep_ms(20);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    dx_note_all(x, "reply to the ack", 150);
    dx_note_accept(x, "accept", 300);
}

/* RFC 1122 §4.2.3.9: host unreachable (code 1; IPv6 address unreachable)
 * is a soft error, "TCP MUST NOT abort the connection": the half-open
 * connection should survive a report about its SYN-ACK and the peer's ACK
 * complete it. Linux: IPv6 keeps it (tcp_req_err aborts on fatal codes
 * only), IPv4 drops it (tcp_v4_err aborts a request on net/host
 * unreachable). jktcp drops it in both, by design: a report that names
 * the half-open connection exactly is from the path it uses. */
DX(robust, icmp_host_unreach_syn_rcvd, NULL, "reply to the ack,accept",
   "jktcp drops a half-open passive connection on any unreachable quoting its SYN-ACK, in both families; Linux drops it on IPv4 only")
{
    struct quote q;
    if (!syn_ack(x, &q))
        return;
    report(x, &q, router(x), 3, 1, 1, 3, 0, false);
    ack_after(x);
}

/* RFC 1122 §4.2.3.9: port unreachable is a hard error, "TCP SHOULD abort
 * the connection": the half-open connection goes and the peer's ACK then
 * meets a RST. Linux: IPv6 does so, IPv4 keeps the request (port
 * unreachable is not among the codes tcp_v4_err aborts a request on).
 * jktcp aborts in both (by design). */
DX(robust, icmp_port_unreach_syn_rcvd, NULL, "reply to the ack,accept",
   "jktcp drops a half-open passive connection on port unreachable (RFC 1122 §4.2.3.9: a hard error), in both families; Linux keeps it on IPv4")
{
    struct quote q;
    if (!syn_ack(x, &q))
        return;
    report(x, &q, NULL, 3, 3, 1, 4, 0, false);
    ack_after(x);
}

/* ---------------------------------------------------------------------- */
/* Established                                                             */
/* ---------------------------------------------------------------------- */

/* RFC 1122 §4.2.3.9: an unreachable report while the connection is
 * established is soft: it lives on, data flows both ways. */
DX(robust, icmp_unreach_established, NULL, NULL, NULL)
{
    struct quote q;
    dx_open_passive(x, NULL);
    dx_write(x, zeros, 100);
    if (!take(&q, dx_note(x, "data", 500)))
        return;
    report(x, &q, router(x), 3, 1, 1, 3, 0, false);
    dx_sleep_ms(20);
    dx_note_read(x, "app after the report", 0);
    dx_send(x, JK_ACK | JK_PSH, 1, 101, "hello", 5, NULL);
    dx_note(x, "ack", 500);
    dx_note_read(x, "app", 300);
    dx_write(x, zeros, 100);
    dx_note(x, "more data", 500);
}

/* RFC 1122 §4.2.3.9 / RFC 5461: the soft error is what the application
 * hears when the retransmissions run out (Linux: sk_err_soft), rather
 * than ETIMEDOUT. By design jktcp then sends a RST, the kernel does not. */
DX(robust, icmp_soft_error_at_timeout, NULL, "reset",
   "jktcp sends a RST when retransmissions run out")
{
    struct quote q;
    dx_option(x, DX_O_RETRIES, 2);
    dx_open_passive(x, NULL);
    dx_write(x, zeros, 100);
    if (!take(&q, dx_note(x, "data", 500)))
        return;
    report(x, &q, router(x), 3, 1, 1, 3, 0, false);
    char rst[128] = "none", app[64] = "alive";
    double t0 = dx_ms(x);
    uint8_t buf[256];
    const struct dx_seg *g;
    while (dx_ms(x) < t0 + 4000 && !strcmp(app, "alive")) {
        if ((g = dx_next(x, 20)) != NULL && (g->s.flags & JK_RST))
            snprintf(rst, sizeof rst, "%s", dx_str(g));
        long r = dx_read(x, buf, sizeof buf, 0);
        if (r != -EAGAIN)
            snprintf(app, sizeof app, "%s", r < 0 ? dx_errname(r) : "data");
    }
    while ((g = dx_next(x, 300)) != NULL)
        if (g->s.flags & JK_RST)
            snprintf(rst, sizeof rst, "%s", dx_str(g));
    dx_out(x, "app", "%s", app);
    dx_out(x, "reset", "%s", rst);
}

/* ---------------------------------------------------------------------- */
/* Path MTU                                                                */
/* ---------------------------------------------------------------------- */

/* Passive open whose handshake takes 100 ms: both systems' tail-loss
 * probe is then ~200 ms away, so what follows a report within 150 ms is
 * the report's doing. */
static void open_slow(struct dx *x)
{
    struct dx_opt o = dx_syn_opts(x);
    dx_listen(x, 16);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, &o);
    const struct dx_seg *g = dx_next(x, 1000);
    if (!g || g->s.flags != (JK_SYN | JK_ACK))
        dx_fail(x, "no SYN-ACK (%s)", g ? dx_str(g) : "none");
    dx_sleep_ms(100);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    int r = dx_accept(x, 1000);
    if (r)
        dx_fail(x, "accept: %s", dx_errname(r));
}

/* Three segments in flight (two full), then a "too big" from a router
 * about the first (its sequence number moved by delta): what the SUT
 * sends within 150 ms — the first resend, the largest — and, once
 * everything is acknowledged, the size of new data. */
static void too_big(struct dx *x, uint32_t mtu, uint32_t delta)
{
    struct quote q;
    uint32_t full = v4(x) ? 1448 : 1428;
    forget_pmtu(x); /* in case a run that failed midway left one */
    open_slow(x);
    dx_write(x, zeros, 2 * full + 104);
    if (!take(&q, dx_next(x, 500)) || !dx_next(x, 500) || !dx_next(x, 500)) {
        dx_out(x, "sent", "fewer than 3 segments");
        return;
    }
    shift_seq(&q, delta);
    report(x, &q, router(x), 3, 4, 2, 0, mtu, false);
    double end = dx_ms(x) + 150;
    const struct dx_seg *g = dx_next(x, 150);
    dx_out(x, "first resend", "%s", g ? dx_str(g) : "none");
    uint32_t largest = g ? g->s.len : 0;
    while (g && dx_ms(x) < end && (g = dx_next(x, (int)(end - dx_ms(x)) + 1)) != NULL)
        if (g->s.len > largest)
            largest = g->s.len;
    dx_out(x, "largest resend", "%u", largest);
    dx_send(x, JK_ACK, 1, 2 * full + 105, NULL, 0, NULL);
    dx_write(x, zeros, 2 * full);
    dx_note(x, "new data", 500);
    forget_pmtu(x);
}

/* RFC 1191 §3 / RFC 8201 §4: "too big" with MTU 1280 lowers the path MTU:
 * what is in flight is resent at once in segments that fit (1280 - IP -
 * TCP - timestamp = 1228 / 1208 bytes), and new data uses that size. */
DX(robust, icmp_too_big, NULL, NULL, NULL)
{
    too_big(x, 1280, 0);
}

/* A reported MTU below the minimum (IPv4 300, IPv6 1000). IPv4: RFC
 * 1191 §3 only forbids going below 68; Linux and jktcp floor at 552
 * (min_pmtu). IPv6: RFC 8201 §4 says such a report must be discarded;
 * Linux and jktcp do. */
DX(robust, icmp_too_big_below_minimum, NULL, NULL, NULL)
{
    too_big(x, v4(x) ? 300 : 1000, 0);
}

/* An MTU field of 0. IPv4: an old router's "fragmentation needed"
 * (RFC 1191 §5: estimate from the plateau table, §7; jktcp takes 1492,
 * Linux treats 0 as below its minimum, 552). IPv6: RFC 8201 has no
 * plateaus (Appendix A) and 0 is below 1280: discard (Linux and jktcp
 * do). IPv4 differs by design. */
DX(robust, icmp_too_big_no_mtu, NULL, "first resend,largest resend,new data",
   "an IPv4 too-big report without an MTU (old routers) takes the next RFC 1191 plateau below the size sent (1492) in jktcp; Linux falls to its 552-byte minimum")
{
    too_big(x, 0, 0);
}

/* RFC 5927 §4.1 / RFC 8201 §4: a "too big" quoting a sequence number
 * beyond what was sent is not believed: nothing is resent, segments stay
 * full-sized. */
DX(robust, icmp_too_big_outside_flight, NULL, NULL, NULL)
{
    too_big(x, 1280, 100000);
}
