/* SPDX-License-Identifier: MIT */
/*
 * Differential scenarios: robustness against what arrives (RFC 9293 §3.1,
 * §3.10.7.4; RFC 791 / RFC 1122 §3.2.1 for IPv4; RFC 8200 for IPv6).
 * Frames are built as the peer's usual segments (dx_build) and then edited
 * byte by byte: options and extension headers inserted, checksums broken,
 * fragments cut, addresses changed. Each scenario records what came back
 * and whether the connection still carries the peer's next data (the
 * hostile frame carries the same bytes at the same sequence number, so a
 * frame that was wrongly taken shows as a duplicate afterwards).
 *
 * ICMP scenarios: scen_robust_icmp.c.
 */
#include "diff.h"

#include <stdio.h>
#include <string.h>

#define F_MAX 2048

static void wr16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static bool v4(struct dx *x) { return dx_family(x) == 4; }

/* Where the upper layer starts in a frame dx_build made. */
static size_t l4_of(const uint8_t *f) { return (f[0] >> 4) == 4 ? (size_t)(f[0] & 15) * 4 : 40; }

/* Lengths and checksums after an edit: the IP header (IPv4 total length
 * and header checksum, IPv6 payload length) and the TCP checksum of the
 * segment at f + l4 (to the end of the frame). */
static void fix(uint8_t *f, size_t n, size_t l4)
{
    uint32_t sum;
    if ((f[0] >> 4) == 4) {
        size_t hl = (size_t)(f[0] & 15) * 4;
        wr16(f + 2, (unsigned)n);
        wr16(f + 10, 0);
        wr16(f + 10, jk_csum_fold(jk_csum_add(0, f, hl)));
        sum = jk_csum_add(0, f + 12, 8);
    } else {
        wr16(f + 4, (unsigned)(n - 40));
        sum = jk_csum_add(0, f + 8, 32);
    }
    uint8_t *t = f + l4;
    size_t tl = n - l4;
    wr16(t + 16, 0);
    wr16(t + 16, jk_csum_fold(jk_csum_add(sum + JK_IPPROTO_TCP + (uint32_t)tl, t, tl)));
}

/* Insert k bytes at pos; the new length. */
static size_t insert(uint8_t *f, size_t n, size_t pos, const void *b, size_t k)
{
    memmove(f + pos + k, f + pos, n - pos);
    memcpy(f + pos, b, k);
    return n + k;
}

/* The peer's data "hello" at seq 1 (what still_works sends properly). */
static size_t hello(struct dx *x, uint8_t *f)
{
    return dx_build(x, f, F_MAX, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
}

/* IPv4 options (k bytes, a multiple of 4) into a dx_build frame. */
static size_t with_ip4_opts(uint8_t *f, size_t n, const void *opts, size_t k)
{
    n = insert(f, n, 20, opts, k);
    f[0] = (uint8_t)(0x40 | (20 + k) / 4);
    fix(f, n, 20 + k);
    return n;
}

/* An IPv6 extension header (type nh, k bytes, its next-header byte set
 * here) right after the fixed header of a dx_build frame. */
static size_t with_ip6_ext(uint8_t *f, size_t n, uint8_t nh, const uint8_t *ext, size_t k)
{
    uint8_t e[64];
    memcpy(e, ext, k);
    e[0] = f[6];
    f[6] = nh;
    n = insert(f, n, 40, e, k);
    fix(f, n, 40 + k);
    return n;
}

/* TCP option bytes (k, a multiple of 4) after the segment's own options. */
static size_t with_tcp_opts(uint8_t *f, size_t n, const void *opts, size_t k)
{
    size_t l4 = l4_of(f), doff = (size_t)(f[l4 + 12] >> 4) * 4;
    n = insert(f, n, l4 + doff, opts, k);
    f[l4 + 12] = (uint8_t)(((doff + k) / 4) << 4 | (f[l4 + 12] & 15));
    fix(f, n, l4);
    return n;
}

/* A hostile copy of "hello" went in: what came back, what the
 * application got; then the real "hello": the connection still takes it
 * (ACK 6, five bytes read) — or not, if the copy was wrongly taken. */
static void after_hostile(struct dx *x, const uint8_t *f, size_t n)
{
    dx_send_raw(x, f, n);
    dx_note_all(x, "reply", 150);
    dx_note_read(x, "app", 0);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    dx_note(x, "then hello", 500);
    dx_note_read(x, "then app", 500);
}

/* The frame "hello" went in with a harmless oddity: it must be taken
 * like the plain one (ACK 6, five bytes read). */
static void taken(struct dx *x, const uint8_t *f, size_t n)
{
    dx_send_raw(x, f, n);
    dx_note(x, "ack", 500);
    dx_note_read(x, "app", 500);
}

/* ---------------------------------------------------------------------- */
/* Checksums and lengths                                                   */
/* ---------------------------------------------------------------------- */

/* RFC 9293 §3.1 (MUST-2/3): a segment whose TCP checksum fails is
 * discarded without a trace. */
DX(robust, tcp_checksum_bad, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f);
    f[l4_of(f) + 17] ^= 0x5a;
    after_hostile(x, f, n);
}

/* RFC 1122 §3.2.1.2: an IPv4 datagram whose header checksum fails is
 * discarded (IPv6 has no header checksum: n/a). */
DX(robust, ip_header_checksum_bad, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    if (!v4(x)) {
        dx_out(x, "ipv6", "no header checksum");
        return;
    }
    size_t n = hello(x, f);
    f[11] ^= 0x5a;
    after_hostile(x, f, n);
}

/* RFC 791 / RFC 8200 §3: the IP length says where the datagram ends;
 * bytes after it (link padding) are not data. */
DX(robust, ip_trailing_bytes, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f);
    memcpy(f + n, "GARBAGE", 7);
    taken(x, f, n + 7);
}

/* RFC 791 / RFC 8200 §3: a frame shorter than its IP length says is a
 * truncated datagram, discarded. */
DX(robust, ip_truncated, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f);
    after_hostile(x, f, n - 2);
}

/* ---------------------------------------------------------------------- */
/* Other protocols, other addresses                                        */
/* ---------------------------------------------------------------------- */

/* RFC 791 / RFC 8200: the protocol field decides. A RST for the
 * connection (exact sequence number) labelled UDP is no TCP segment: the
 * connection lives. */
DX(robust, rst_labelled_udp, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = dx_build(x, f, F_MAX, JK_RST, 1, 0, NULL, 0, NULL);
    if (v4(x)) {
        f[9] = 17;
        wr16(f + 10, 0);
        wr16(f + 10, jk_csum_fold(jk_csum_add(0, f, 20)));
    } else {
        f[6] = 17;
    }
    after_hostile(x, f, n);
}

/* Rewrite one address of a dx_build frame (src: 1, dst: 0). */
static size_t readdress(uint8_t *f, size_t n, bool src, const char *text)
{
    struct jk_addr a;
    jk_addr_parse(text, &a);
    if ((f[0] >> 4) == 4)
        memcpy(f + (src ? 12 : 16), a.a, 4);
    else
        memcpy(f + (src ? 8 : 24), a.a, 16);
    fix(f, n, l4_of(f));
    return n;
}

/* RFC 9293 §3.10.7: a connection is its address/port 4-tuple. Data for
 * the connection's ports sent to an address that is not the SUT's (off
 * link) is not the connection's. */
DX(robust, to_other_address, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = readdress(f, hello(x, f), false, v4(x) ? "198.51.100.7" : "2001:db8::7");
    after_hostile(x, f, n);
}

/* RFC 9293 §3.10.7: a RST with the connection's ports and exact sequence
 * number but from a third address (198.18.0.3 / fd00::3) belongs to no
 * connection: this one lives. */
DX(robust, rst_from_other_address, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = dx_build(x, f, F_MAX, JK_RST, 1, 0, NULL, 0, NULL);
    readdress(f, n, true, v4(x) ? "198.18.0.3" : "fd00::3");
    after_hostile(x, f, n);
}

/* RFC 9293 §3.10.7.2: a listener answers a SYN from any address. The
 * kernel SYN-ACKs a third host (198.18.0.3 / fd00::3); jktcp's adapter
 * has one peer address and drops everything else (docs/design.md,
 * "Differences from Linux"): by design. */
DX(robust, syn_from_other_address, NULL, "reply to the third address",
   "a jktcp adapter has one peer address (the tunnel's far end) and drops frames from any other; the kernel listener answers any host")
{
    uint8_t f[F_MAX], r[F_MAX];
    const char *other = v4(x) ? "198.18.0.3" : "fd00::3";
    dx_listen(x, 16);
    struct dx_opt o = dx_syn_opts(x);
    o.sack_perm = o.ts = false;
    o.ws = -1;
    size_t n = readdress(f, dx_build(x, f, F_MAX, JK_SYN, 0, 0, NULL, 0, &o), true, other);
    dx_send_raw(x, f, n);
    struct jk_addr a;
    jk_addr_parse(other, &a);
    size_t k = dx_next_frame_to(x, &a, r, sizeof r, 200);
    struct jk_seg s;
    if (!k)
        dx_out(x, "reply to the third address", "none");
    else if (jk_parse_frame(r, k, &s) != JK_PARSE_TCP)
        dx_out(x, "reply to the third address", "not TCP");
    else
        dx_out(x, "reply to the third address", "%s acking %s",
               s.flags == (JK_SYN | JK_ACK) ? "SYN-ACK" : "other flags",
               s.ack == 3000000001u ? "its SYN" : "something else"); /* the peer's ISS + 1 */
}

/* ---------------------------------------------------------------------- */
/* IP options and IPv6 extension headers                                   */
/* ---------------------------------------------------------------------- */

/* RFC 1122 §3.2.1.8 / RFC 8200 §4.3: IP options (IPv4 Record Route;
 * IPv6 a Hop-by-Hop Options header of padding) do not keep the segment
 * from TCP. */
DX(robust, ip_options_taken, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f);
    if (v4(x)) {
        static const uint8_t rr[8] = {7, 7, 4, 0, 0, 0, 0, 0}; /* RR, room for 1, EOL */
        n = with_ip4_opts(f, n, rr, sizeof rr);
    } else {
        static const uint8_t hbh[8] = {0, 0, 1, 4, 0, 0, 0, 0}; /* PadN */
        n = with_ip6_ext(f, n, 0, hbh, sizeof hbh);
    }
    taken(x, f, n);
}

/* RFC 8200 §4.2: an unrecognised option in a Destination Options header
 * whose type's top bits are 01 means "discard the packet"; IPv4 (RFC
 * 1122 §3.2.1.8: unknown options are ignored) takes the segment with an
 * unknown option. */
DX(robust, unknown_ip_option, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f);
    if (v4(x)) {
        static const uint8_t o[4] = {0x9e, 4, 0, 0}; /* an experiment's number */
        taken(x, f, with_ip4_opts(f, n, o, sizeof o));
    } else {
        static const uint8_t dst[8] = {0, 0, 0x5e, 4, 0, 0, 0, 0}; /* 01: discard */
        after_hostile(x, f, with_ip6_ext(f, n, 60, dst, sizeof dst));
    }
}

/* Source routes. IPv4: a Loose Source Route that is complete (pointer
 * past the end; RFC 1122 §3.2.1.8 says a host must be able to be its
 * final destination; Linux drops any source-routed datagram unless
 * accept_source_route is set, RFC 7126 §4.3). IPv6: a type 0 routing
 * header with a segment left (RFC 5095 §3, RFC 8200 §4.4: discard it). */
DX(robust, source_routed, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f);
    if (v4(x)) {
        static const uint8_t lsrr[8] = {0x83, 7, 8, 198, 18, 0, 9, 0};
        n = with_ip4_opts(f, n, lsrr, sizeof lsrr);
    } else {
        uint8_t rh[24] = {0, 2, 0, 1}; /* type 0, segments left 1 */
        struct jk_addr a;
        jk_addr_parse("fd00::9", &a);
        memcpy(rh + 8, a.a, 16);
        n = with_ip6_ext(f, n, 43, rh, sizeof rh);
    }
    after_hostile(x, f, n);
}

/* ---------------------------------------------------------------------- */
/* Fragments                                                               */
/* ---------------------------------------------------------------------- */

/* Cut a dx_build frame into two fragments at upper-layer offset 40 (a
 * multiple of 8): the lengths of a and b. */
static void fragment(const uint8_t *f, size_t n, uint8_t *a, size_t *na, uint8_t *b, size_t *nb)
{
    const size_t cut = 40;
    if ((f[0] >> 4) == 4) {
        memcpy(a, f, 20 + cut);
        memcpy(b, f, 20);
        memcpy(b + 20, f + 20 + cut, n - 20 - cut);
        *na = 20 + cut;
        *nb = n - cut;
        wr16(a + 4, 0x1234);
        wr16(b + 4, 0x1234);
        wr16(a + 6, 0x2000);              /* MF, offset 0 */
        wr16(b + 6, (unsigned)(cut / 8)); /* offset 5 */
        for (int i = 0; i < 2; i++) {
            uint8_t *p = i ? b : a;
            wr16(p + 2, (unsigned)(i ? *nb : *na));
            wr16(p + 10, 0);
            wr16(p + 10, jk_csum_fold(jk_csum_add(0, p, 20)));
        }
        return;
    }
    uint8_t fh[8] = {JK_IPPROTO_TCP, 0, 0, 1, 0, 0, 0x12, 0x34}; /* offset 0, M */
    memcpy(a, f, 40);
    memcpy(a + 40, fh, 8);
    memcpy(a + 48, f + 40, cut);
    *na = 48 + cut;
    fh[2] = 0;
    fh[3] = (uint8_t)cut; /* offset 5 (in 8-byte units, << 3), M clear */
    memcpy(b, f, 40);
    memcpy(b + 40, fh, 8);
    memcpy(b + 48, f + 40 + cut, n - 40 - cut);
    *nb = 48 + n - 40 - cut;
    a[6] = b[6] = 44;
    wr16(a + 4, (unsigned)(*na - 40));
    wr16(b + 4, (unsigned)(*nb - 40));
}

/* RFC 1122 §3.3.2 (MUST reassemble) / RFC 8200 §4.5: a segment that
 * arrives in two fragments is reassembled and taken. */
DX(robust, fragmented_segment, NULL, NULL, NULL)
{
    uint8_t f[F_MAX], a[F_MAX], b[F_MAX];
    static const char data[64] = "fragmented";
    dx_open_passive(x, NULL);
    size_t n = dx_build(x, f, F_MAX, JK_ACK | JK_PSH, 1, 1, data, sizeof data, NULL), na, nb;
    fragment(f, n, a, &na, b, &nb);
    dx_send_raw(x, a, na);
    dx_send_raw(x, b, nb);
    dx_note(x, "ack", 500);
    dx_note_read(x, "app", 300);
}

/* RFC 6946 / RFC 8200 §4.5: an IPv6 "atomic fragment" (fragment header,
 * offset 0, M clear) is a whole packet and is processed as such. IPv4
 * (RFC 6864): an unfragmented datagram with an ID and no DF is whole too. */
DX(robust, atomic_fragment, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f);
    if (v4(x)) {
        wr16(f + 4, 0x1234);
        wr16(f + 6, 0); /* no DF, no MF, offset 0 */
        fix(f, n, 20);
    } else {
        static const uint8_t fh[8] = {0, 0, 0, 0, 0, 0, 0x12, 0x34};
        n = with_ip6_ext(f, n, 44, fh, sizeof fh);
    }
    taken(x, f, n);
}

/* ---------------------------------------------------------------------- */
/* TCP header and options                                                  */
/* ---------------------------------------------------------------------- */

/* RFC 9293 §3.1 (MUST-6): an option of unknown kind is skipped by its
 * length; the segment is processed. */
DX(robust, tcp_option_unknown, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    static const uint8_t o[8] = {99, 6, 1, 2, 3, 4, 1, 1};
    dx_open_passive(x, NULL);
    taken(x, f, with_tcp_opts(f, hello(x, f), o, sizeof o));
}

/* RFC 9293 §3.1 (MUST-7): an option with an illegal length (zero) after
 * the timestamp. Linux stops parsing the options there and processes the
 * segment; so does jktcp (packet.c, parse_opts). */
DX(robust, tcp_option_length_zero, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    static const uint8_t o[4] = {99, 0, 0, 0};
    dx_open_passive(x, NULL);
    taken(x, f, with_tcp_opts(f, hello(x, f), o, sizeof o));
}

/* RFC 9293 §3.1: an option whose length runs past the header's end
 * (after the timestamp). Linux stops parsing there and processes the
 * segment, as jktcp does. */
DX(robust, tcp_option_past_header, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    static const uint8_t o[4] = {99, 12, 0, 0};
    dx_open_passive(x, NULL);
    taken(x, f, with_tcp_opts(f, hello(x, f), o, sizeof o));
}

/* RFC 7323 §2.2: a Window Scale option of the wrong length (4, not 3) in
 * a SYN. Linux ignores that option (no scaling) and answers, as jktcp
 * does. */
DX(robust, syn_option_wrong_length, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    static const uint8_t ws[4] = {3, 4, 7, 0};
    struct dx_opt o = dx_syn_opts(x);
    o.sack_perm = o.ts = false; /* only MSS: what the SYN-ACK may carry is known */
    o.ws = -1;
    dx_listen(x, 16);
    size_t n = dx_build(x, f, F_MAX, JK_SYN, 0, 0, NULL, 0, &o);
    dx_send_raw(x, f, with_tcp_opts(f, n, ws, sizeof ws));
    dx_note(x, "reply", 500);
}

/* RFC 9293 §3.2: End of Option List ends the list; what follows it in
 * the header is padding, whatever its bytes. */
DX(robust, tcp_option_eol_then_junk, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    static const uint8_t o[4] = {0, 0xff, 0x02, 0xff};
    dx_open_passive(x, NULL);
    taken(x, f, with_tcp_opts(f, hello(x, f), o, sizeof o));
}

/* RFC 9293 §3.1: a data offset below 5 words cannot hold the header:
 * the segment is discarded. */
DX(robust, tcp_offset_too_small, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f), l4 = l4_of(f);
    f[l4 + 12] = (uint8_t)(4 << 4);
    fix(f, n, l4);
    after_hostile(x, f, n);
}

/* RFC 9293 §3.1: a data offset beyond the segment's end: discarded. */
DX(robust, tcp_offset_past_end, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f), l4 = l4_of(f);
    f[l4 + 12] = (uint8_t)(15 << 4); /* 60 bytes; the segment has 37 */
    fix(f, n, l4);
    after_hostile(x, f, n);
}

/* RFC 9293 §3.1: the reserved header bits are ignored on receipt. */
DX(robust, tcp_reserved_bits, NULL, NULL, NULL)
{
    uint8_t f[F_MAX];
    dx_open_passive(x, NULL);
    size_t n = hello(x, f), l4 = l4_of(f);
    f[l4 + 12] |= 0x0e;
    fix(f, n, l4);
    taken(x, f, n);
}
