/* SPDX-License-Identifier: MIT */
/*
 * Suite `packet`: the packet codec (lib/packet.c). Malformed IP: every
 * truncation, IPv4 header and options, IPv6 extension headers and fragments,
 * other protocols. Shared frames and helpers: packet_test.h.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "packet.h"
#include "packet_test.h"

/* --------------------------------------------------------- malformed: IP */

/* Every truncation of a valid frame is rejected, with the precise reason. */
static void assert_prefixes_rejected(const uint8_t *f, size_t len, size_t iph)
{
    struct jk_seg s;
    for (size_t n = 0; n < len; n++) {
        enum jk_parse r = parse_exact(f, n, &s);
        cr_assert_neq(r, JK_PARSE_TCP, "prefix %zu", n);
        cr_assert_eq(r, n < iph ? JK_PARSE_SHORT : JK_PARSE_LENGTH, "prefix %zu gave %d", n, r);
    }
    cr_assert_eq(parse_exact(f, len, &s), JK_PARSE_TCP);
}

Test(packet, every_prefix_rejected)
{
    uint8_t b[400];
    assert_prefixes_rejected(b, full_frame(b, sizeof b, 4, 33), 20);
    assert_prefixes_rejected(b, full_frame(b, sizeof b, 6, 33), 40);
    assert_prefixes_rejected(syn4, sizeof syn4, 20);
    assert_prefixes_rejected(syn6, sizeof syn6, 40);
}

Test(packet, bad_version)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 10);
    for (unsigned v = 0; v < 16; v++) {
        if (v == 4 || v == 6)
            continue;
        b[0] = (uint8_t)(v << 4 | 5);
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_VERSION, "version %u", v);
        cr_assert_eq(jk_parse_frame(b, 1, &s), JK_PARSE_VERSION, "version %u", v);
    }
    cr_assert_eq(jk_parse_frame(b, 0, &s), JK_PARSE_SHORT);
}

Test(packet, ipv4_ihl_below_5)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 10);
    for (int ihl = 0; ihl < 5; ihl++) {
        b[0] = (uint8_t)(0x40 | ihl);
        fix_ip4(b);
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_LENGTH, "ihl %d", ihl);
    }
}

Test(packet, ipv4_ihl_past_frame)
{
    uint8_t b[200];
    struct jk_seg s, t = base_seg(4);
    size_t len = build1(b, sizeof b, &t, NULL, 0);
    cr_assert_eq(len, 40);
    b[0] = 0x4f; /* 60-byte IP header in a 40-byte frame */
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_SHORT);
}

/* IP options are skipped: the TCP header starts after IHL * 4 bytes. */
Test(packet, ipv4_options_skipped)
{
    uint8_t b[200];
    struct jk_seg s = base_seg(4), g;
    size_t len = build1(b, sizeof b, &s, "data", 4);
    memmove(b + 28, b + 20, len - 20);
    memcpy(b + 20, "\x01\x01\x01\x00\x00\x00\x00\x00", 8); /* NOP NOP NOP EOL */
    b[0] = 0x47;
    len += 8;
    set_ip_len(b, len);
    cr_assert_eq(jk_parse_frame(b, len, &g), JK_PARSE_TCP);
    assert_seg_eq(&g, &s, "data", 4);
}

Test(packet, ipv4_total_length_past_frame)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 10);
    put16(b + 2, (unsigned)len + 1);
    fix_ip4(b);
    b[len] = 0;
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_LENGTH);
    cr_assert_eq(jk_parse_frame(b, len + 1, &s), JK_PARSE_CHECKSUM, "extra byte is payload");
}

Test(packet, ipv4_total_length_below_header)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 10);
    put16(b + 2, 19);
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_LENGTH);
    b[0] = 0x46; /* 24-byte header, total 22 */
    put16(b + 2, 22);
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_LENGTH);
}

Test(packet, ipv4_tcp_shorter_than_header)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 0);
    put16(b + 2, 39); /* 19 bytes of TCP */
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_SHORT);
    put16(b + 2, 20);
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_SHORT);
}

Test(packet, ipv4_bad_header_checksum)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 10);
    b[8] ^= 0x01; /* TTL */
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_CHECKSUM);
    b[8] ^= 0x01;
    b[11] ^= 0x80;
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_CHECKSUM);
}

Test(packet, bad_tcp_checksum)
{
    uint8_t b[200];
    struct jk_seg s;
    for (int fam = 4; fam <= 6; fam += 2) {
        size_t len = full_frame(b, sizeof b, fam, 11);
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_TCP);
        b[len - 1] ^= 0x10; /* last (odd) payload byte */
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_CHECKSUM);
        b[len - 1] ^= 0x10;
        b[len - 6] ^= 0x01;
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_CHECKSUM);
    }
}

/* A frame whose TCP checksum its transport made (a cut super-segment):
 * that sum is not repeated, every other check still holds. */
Test(packet, csum_ours_skips_only_the_tcp_sum)
{
    uint8_t b[200];
    struct jk_seg s;
    for (int fam = 4; fam <= 6; fam += 2) {
        size_t len = full_frame(b, sizeof b, fam, 11);
        b[len - 1] ^= 0x10;
        cr_assert_eq(jk_parse_frame_as(b, len, &s, false), JK_PARSE_CHECKSUM);
        cr_assert_eq(jk_parse_frame_as(b, len, &s, true), JK_PARSE_TCP, "IPv%d", fam);
        cr_assert_eq(s.len, 11);
        cr_assert_eq(s.payload[10], b[len - 1]);
        cr_assert_eq(jk_parse_frame_as(b, len - 1, &s, true), JK_PARSE_LENGTH,
                     "IP length past the bytes: still refused");
    }
    size_t len = full_frame(b, sizeof b, 4, 10);
    b[8] ^= 0x01; /* TTL: the IPv4 header checksum is still checked */
    cr_assert_eq(jk_parse_frame_as(b, len, &s, true), JK_PARSE_CHECKSUM);
}

/* The pseudo-header is covered: a changed address breaks the TCP checksum. */
Test(packet, tcp_checksum_covers_pseudo_header)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 10);
    b[15] ^= 1;
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_CHECKSUM);
    len = full_frame(b, sizeof b, 6, 10);
    b[39] ^= 1;
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_CHECKSUM);
    b[39] ^= 1;
    b[8] ^= 0x80;
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_CHECKSUM);
}

Test(packet, ipv4_fragments)
{
    uint8_t b[200];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 4, 10);
    put16(b + 6, 0x2000); /* MF */
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_FRAGMENT);
    struct jk_ip ip;
    cr_assert_eq(jk_parse_ip(b, len, &ip), JK_PARSE_FRAGMENT);
    cr_assert(ip.frag.more && ip.frag.off == 0 && ip.frag.nh == 6 && ip.frag.hdr_len == 20);
    cr_assert_eq(ip.frag.len, len - 20);
    cr_assert_eq(ip.frag.data, b + 20);
    put16(b + 6, 0x4001); /* DF + offset 8 */
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_FRAGMENT);
    put16(b + 6, 0x1000); /* offset only, high bit */
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_FRAGMENT);
    put16(b + 6, 0x0000); /* no DF is still a whole datagram */
    fix_ip4(b);
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_TCP);
}

/* IPv4 options between the header and TCP (n a multiple of 4). */
static size_t with_ip4_opts(uint8_t *b, size_t len, const uint8_t *o, size_t n)
{
    memmove(b + 20 + n, b + 20, len - 20);
    memcpy(b + 20, o, n);
    b[0] = (uint8_t)(0x40 | (20 + n) / 4);
    put16(b + 2, (unsigned)(len + n));
    fix_ip4(b);
    return len + n;
}

/* IPv4 options are skipped (record route, an unknown one), but a source
 * route drops the packet (Linux: accept_source_route 0), and so does a
 * malformed option list. */
Test(packet, ipv4_options)
{
    static const struct {
        uint8_t o[8];
        enum jk_parse want;
    } cases[] = {
        {{7, 7, 4, 0, 0, 0, 0, 0}, JK_PARSE_TCP},          /* record route, room for 1 */
        {{0x9e, 4, 0, 0, 1, 1, 1, 0}, JK_PARSE_TCP},       /* unknown, NOPs, EOL */
        {{131, 7, 8, 1, 2, 3, 4, 0}, JK_PARSE_IP_OPTION},  /* loose source route */
        {{1, 137, 7, 4, 1, 2, 3, 4}, JK_PARSE_IP_OPTION},  /* strict source route */
        {{0x9e, 1, 0, 0, 0, 0, 0, 0}, JK_PARSE_IP_OPTION}, /* length 1 */
        {{0x9e, 9, 0, 0, 0, 0, 0, 0}, JK_PARSE_IP_OPTION}, /* past the header */
        {{0, 131, 7, 8, 1, 2, 3, 4}, JK_PARSE_TCP},        /* after EOL: not read */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t b[300];
        struct jk_seg s;
        size_t len = with_ip4_opts(b, full_frame(b, sizeof b, 4, 10), cases[i].o, 8);
        cr_assert_eq(parse_exact(b, len, &s), cases[i].want, "case %zu", i);
        if (cases[i].want == JK_PARSE_TCP)
            cr_assert_eq(s.len, 10, "case %zu", i);
    }
}

Test(packet, trailing_bytes_ignored)
{
    uint8_t b[200], pl[10];
    fill_pattern(pl, sizeof pl, 3);
    for (int fam = 4; fam <= 6; fam += 2) {
        struct jk_seg s = base_seg(fam), g;
        all_opts(&s.opt, 1);
        size_t len = build1(b, sizeof b, &s, pl, sizeof pl);
        memset(b + len, 0xee, 17);
        cr_assert_eq(parse_exact(b, len + 17, &g), JK_PARSE_TCP);
        cr_assert_eq(jk_parse_frame(b, len + 17, &g), JK_PARSE_TCP);
        assert_seg_eq(&g, &s, pl, sizeof pl);
    }
}

/* --------------------------------------------------- malformed: IPv6 ext */

Test(packet, ipv6_extension_headers_skipped)
{
    uint8_t b[300], pl[9];
    fill_pattern(pl, sizeof pl, 4);
    struct jk_seg s = base_seg(6), g;
    all_opts(&s.opt, 1);
    size_t len = build1(b, sizeof b, &s, pl, sizeof pl);
    len = insert_ext(b, len, 0, ext_chain, sizeof ext_chain);
    cr_assert_eq(parse_exact(b, len, &g), JK_PARSE_TCP);
    cr_assert_eq(jk_parse_frame(b, len, &g), JK_PARSE_TCP);
    assert_seg_eq(&g, &s, pl, sizeof pl);
    cr_assert(g.payload == b + len - sizeof pl);
}

Test(packet, ipv6_extension_header_past_end)
{
    uint8_t b[300];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 6, 0);
    uint8_t ext[8] = {6, 0, 1, 4, 0, 0, 0, 0};
    len = insert_ext(b, len, 60, ext, sizeof ext);
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_TCP);
    b[41] = (uint8_t)((len - 40) / 8); /* one 8-octet unit too long */
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_LENGTH);
    b[41] = 255;
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_LENGTH);
    /* Fewer than 8 bytes left for the extension header itself. */
    put16(b + 4, 4);
    cr_assert_eq(parse_exact(b, 44, &s), JK_PARSE_SHORT);
    put16(b + 4, 0);
    cr_assert_eq(parse_exact(b, 40, &s), JK_PARSE_SHORT);
}

Test(packet, ipv6_fragment_header)
{
    uint8_t b[300];
    struct jk_seg s;
    struct jk_ip ip;
    size_t len = full_frame(b, sizeof b, 6, 5);
    uint8_t frag[8] = {6, 0, 0, 1, 0, 0, 0, 9}; /* offset 0, more */
    len = insert_ext(b, len, 44, frag, sizeof frag);
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_FRAGMENT);
    cr_assert_eq(jk_parse_ip(b, len, &ip), JK_PARSE_FRAGMENT);
    cr_assert(ip.frag.more && ip.frag.off == 0 && ip.frag.id == 9 && ip.frag.nh == 6);
    cr_assert_eq(ip.frag.hdr_len, 40);
    cr_assert_eq(ip.frag.nh_at, 6);
    cr_assert_eq(ip.frag.len, len - 48);
    uint8_t hbh[8] = {44, 0, 1, 4, 0, 0, 0, 0};
    len = insert_ext(b, len, 0, hbh, sizeof hbh);
    cr_assert_eq(jk_parse_ip(b, len, &ip), JK_PARSE_FRAGMENT);
    cr_assert_eq(ip.frag.hdr_len, 48, "the hop-by-hop header is unfragmentable");
    cr_assert_eq(ip.frag.nh_at, 40);
    b[48 + 3] = 0;
    b[48 + 2] = 1; /* offset 256, last */
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_FRAGMENT);
}

/* RFC 6946: offset 0 and no more pieces is a whole packet. */
Test(packet, ipv6_atomic_fragment)
{
    uint8_t b[300];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 6, 5);
    uint8_t frag[8] = {6, 0, 0, 0, 0, 0, 0, 1};
    len = insert_ext(b, len, 44, frag, sizeof frag);
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_TCP);
    cr_assert_eq(s.len, 5);
}

/* RFC 8200 §4.2: an option we do not know is skipped only when its type's
 * two high bits are 00; 01, 10 and 11 discard the packet. PadN is known. */
Test(packet, ipv6_unknown_option_action)
{
    uint8_t b[300];
    struct jk_seg s;
    static const struct {
        uint8_t type;
        enum jk_parse want;
    } cases[] = {{0x1e, JK_PARSE_TCP}, {0x5e, JK_PARSE_IP_OPTION}, {0x9e, JK_PARSE_IP_OPTION},
                 {0xde, JK_PARSE_IP_OPTION}, {0x01, JK_PARSE_TCP}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (uint8_t eh = 0; eh <= 60; eh += 60) {
            size_t len = full_frame(b, sizeof b, 6, 5);
            uint8_t ext[8] = {6, 0, cases[i].type, 4, 0, 0, 0, 0};
            len = insert_ext(b, len, eh, ext, sizeof ext);
            cr_assert_eq(parse_exact(b, len, &s), cases[i].want, "type %#x in header %u",
                         cases[i].type, eh);
        }
    size_t len = full_frame(b, sizeof b, 6, 5);
    uint8_t overrun[8] = {6, 0, 1, 9, 0, 0, 0, 0}; /* PadN longer than the header */
    len = insert_ext(b, len, 60, overrun, sizeof overrun);
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_IP_OPTION);
}

/* RFC 8200 §4.4: a routing header with segments left is not for us to
 * process (we forward nothing): dropped; with none left, skipped. A
 * hop-by-hop header anywhere but first is dropped (§4.1). */
Test(packet, ipv6_routing_and_hop_by_hop_order)
{
    uint8_t b[300];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 6, 5);
    uint8_t rh[8] = {6, 0, 0, 1, 0, 0, 0, 0};
    len = insert_ext(b, len, 43, rh, sizeof rh);
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_IP_OPTION);
    b[43] = 0;
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_TCP);
    len = full_frame(b, sizeof b, 6, 5);
    uint8_t two[16] = {0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0}; /* dst opts, then HBH */
    len = insert_ext(b, len, 60, two, sizeof two);
    cr_assert_eq(parse_exact(b, len, &s), JK_PARSE_IP_OPTION);
}

Test(packet, ipv6_payload_length_past_frame)
{
    uint8_t b[300];
    struct jk_seg s;
    size_t len = full_frame(b, sizeof b, 6, 5);
    put16(b + 4, (unsigned)(len - 40 + 1));
    cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_LENGTH);
}

/* ---------------------------------------------------------- other protocols */

Test(packet, other_protocols)
{
    struct jk_seg s;
    /* IPv4 UDP 10.0.0.1:53 -> 10.0.0.2:53, 4 bytes of data. */
    uint8_t u4[32] = {0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                      0, 53, 0, 53, 0, 12, 0, 0, 'a', 'b', 'c', 'd'};
    fix_ip4(u4);
    cr_assert_eq(parse_exact(u4, sizeof u4, &s), JK_PARSE_OTHER_PROTO);
    u4[9] = 1; /* ICMP: the adapter looks closer (jk_parse_icmp) */
    fix_ip4(u4);
    cr_assert_eq(parse_exact(u4, sizeof u4, &s), JK_PARSE_ICMP);
    u4[8]++;
    cr_assert_eq(parse_exact(u4, sizeof u4, &s), JK_PARSE_CHECKSUM, "IP header checked first");
    u4[6] = 0x20;
    fix_ip4(u4);
    cr_assert_eq(parse_exact(u4, sizeof u4, &s), JK_PARSE_FRAGMENT);

    uint8_t b[300];
    static const uint8_t protos[] = {17, 58, 59, 1, 255};
    for (size_t i = 0; i < sizeof protos; i++) {
        size_t len = full_frame(b, sizeof b, 6, 0);
        b[6] = protos[i];
        /* ICMPv6 is looked at closer; ICMP (v4) inside IPv6 is just another protocol */
        enum jk_parse want = protos[i] == 58 ? JK_PARSE_ICMP : JK_PARSE_OTHER_PROTO;
        cr_assert_eq(parse_exact(b, len, &s), want, "next header %u", protos[i]);
        uint8_t hbh[8] = {protos[i], 0, 1, 4, 0, 0, 0, 0};
        len = insert_ext(b, len, 0, hbh, sizeof hbh);
        cr_assert_eq(parse_exact(b, len, &s), want, "after hop-by-hop");
    }
}
