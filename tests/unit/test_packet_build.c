/* SPDX-License-Identifier: MIT */
/*
 * Suite `packet`: the packet codec (lib/packet.c). Checksums, hand-typed
 * frames, build/parse round trips, the builder. Shared frames and helpers:
 * packet_test.h.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "packet_test.h"

static unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

/* Builds, parses and compares; returns the frame length. */
static size_t round_trip(const struct jk_seg *s, const uint8_t *pl, size_t n)
{
    static uint8_t buf[JK_MAX_FRAME];
    struct jk_seg g;
    size_t len = build1(buf, sizeof buf, s, pl, n);
    cr_assert_eq(len, jk_header_len(s) + n);
    cr_assert_eq(jk_frame_length(buf, len), (long)len);
    cr_assert_eq(jk_parse_frame(buf, len, &g), JK_PARSE_TCP);
    assert_seg_eq(&g, s, pl, n);
    cr_assert(g.payload == buf + jk_header_len(s));
    return len;
}

/* -------------------------------------------------------------- checksums */

static const uint8_t rfc1071[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

Test(packet, csum_rfc1071_example)
{
    uint32_t s = jk_csum_add(0, rfc1071, sizeof rfc1071);
    cr_assert_eq(jk_csum_fold(s), 0x220d);
    cr_assert_eq(s & 0xffff, 0xddf2, "sum %#x", s);
    cr_assert_eq(jk_csum_fold(0xddf2), 0x220d);
    cr_assert_eq(jk_csum_fold(0x2ddf0), 0x220d, "carries fold back in");
}

Test(packet, csum_odd_length_pads_low_byte)
{
    cr_assert_eq(jk_csum_fold(jk_csum_add(0, "\x01", 1)), (uint16_t)~0x0100);
    cr_assert_eq(jk_csum_fold(jk_csum_add(0, rfc1071, 3)), (uint16_t)~(0x0001 + 0xf200));
    cr_assert_eq(jk_csum_fold(jk_csum_add(0, rfc1071, 7)), ref_fold(ref_add(0, rfc1071, 7)));
}

Test(packet, csum_chaining_even_chunks)
{
    uint8_t buf[301];
    fill_pattern(buf, sizeof buf, 1);
    uint16_t whole = jk_csum_fold(jk_csum_add(0, buf, sizeof buf));
    cr_assert_eq(whole, ref_fold(ref_add(0, buf, sizeof buf)));
    for (size_t cut = 0; cut <= sizeof buf; cut += 2) {
        uint32_t s = jk_csum_add(jk_csum_add(0, buf, cut), buf + cut, sizeof buf - cut);
        cr_assert_eq(jk_csum_fold(s), whole, "cut at %zu", cut);
    }
}

Test(packet, csum_initial_sum_and_zero_length)
{
    cr_assert_eq(jk_csum_fold(jk_csum_add(0x1fffe, rfc1071, 0)), 0x0000);
    cr_assert_eq(jk_csum_fold(jk_csum_add(0xffffffffu, rfc1071, 0)), ref_fold(0xffffffffu));
    cr_assert_eq(jk_csum_fold(jk_csum_add(0x12345, rfc1071, 8)),
                 ref_fold(ref_add(0x12345, rfc1071, 8)));
    cr_assert_eq(jk_csum_fold(jk_csum_add(0, rfc1071, 0)), 0xffff);
}

/* Every length and alignment, against the naive reference. */
Test(packet, csum_matches_reference)
{
    static uint8_t buf[1100];
    fill_pattern(buf, sizeof buf, 9);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += (n < 80 ? 1 : 37)) {
            uint16_t got = jk_csum_fold(jk_csum_add(0, buf + off, n));
            cr_assert_eq(got, ref_fold(ref_add(0, buf + off, n)), "off %zu len %zu", off, n);
        }
}

/* All-ones data makes every addition carry, in every accumulator lane. */
Test(packet, csum_carry_heavy)
{
    size_t n = (size_t)3 << 20;
    uint8_t *b = malloc(n + 1);
    cr_assert_not_null(b);
    memset(b, 0xff, n + 1);
    cr_assert_eq(jk_csum_fold(jk_csum_add(0, b, n)), 0x0000);
    cr_assert_eq(jk_csum_fold(jk_csum_add(0, b, n + 1)), ref_fold(ref_add(0, b, n + 1)));
    for (size_t i = 0; i < n; i += 3)
        b[i] = 0xfe;
    cr_assert_eq(jk_csum_fold(jk_csum_add(0, b, n)), ref_fold(ref_add(0, b, n)));
    free(b);
}

/* ------------------------------------------------------------ hand frames */

Test(packet, parse_hand_built_ipv4_syn)
{
    struct jk_seg s;
    cr_assert_eq(parse_exact(syn4, sizeof syn4, &s), JK_PARSE_TCP);
    struct jk_addr a;
    cr_assert_eq(jk_addr_parse("192.0.2.1", &a), 0);
    cr_assert(jk_addr_eq(&s.src, &a));
    cr_assert_eq(jk_addr_parse("198.51.100.2", &a), 0);
    cr_assert(jk_addr_eq(&s.dst, &a));
    cr_assert_eq(s.src.family, 4);
    cr_assert_eq(s.sport, 40000);
    cr_assert_eq(s.dport, 80);
    cr_assert_eq(s.seq, 0x01020304u);
    cr_assert_eq(s.ack, 0);
    cr_assert_eq(s.flags, JK_SYN);
    cr_assert_eq(s.wnd, 64240);
    cr_assert_eq(s.urp, 0);
    cr_assert(s.opt.has_mss && s.opt.mss == 1460);
    cr_assert(s.opt.sack_ok);
    cr_assert(s.opt.has_ts && s.opt.tsval == 0x11223344u && s.opt.tsecr == 0);
    cr_assert(s.opt.has_wscale && s.opt.wscale == 7);
    cr_assert_eq(s.opt.nsack, 0);
    cr_assert_eq(s.len, 0);
}

Test(packet, parse_hand_built_ipv6_syn)
{
    struct jk_seg s;
    uint8_t f[sizeof syn6];
    memcpy(f, syn6, sizeof f);
    cr_assert_eq(jk_parse_frame(f, sizeof f, &s), JK_PARSE_TCP);
    struct jk_addr a;
    cr_assert_eq(jk_addr_parse("2001:db8::1", &a), 0);
    cr_assert(jk_addr_eq(&s.src, &a));
    cr_assert_eq(jk_addr_parse("2001:db8::2", &a), 0);
    cr_assert(jk_addr_eq(&s.dst, &a));
    cr_assert_eq(s.dst.family, 6);
    cr_assert_eq(s.sport, 50000);
    cr_assert_eq(s.dport, 443);
    cr_assert_eq(s.seq, 0xfffffff0u);
    cr_assert_eq(s.flags, JK_SYN);
    cr_assert_eq(s.wnd, 65535);
    cr_assert(s.opt.has_mss && s.opt.mss == 1440);
    cr_assert(s.opt.sack_ok);
    cr_assert(!s.opt.has_ts);
    cr_assert(s.opt.has_wscale && s.opt.wscale == 14);
    cr_assert_eq(s.len, 0);
    cr_assert(s.payload == f + sizeof f);
}

/* The builder reproduces the hand-typed bytes exactly (layout + checksums). */
Test(packet, build_matches_hand_built_frames)
{
    uint8_t buf[128];
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    jk_addr_parse("192.0.2.1", &s.src);
    jk_addr_parse("198.51.100.2", &s.dst);
    s.sport = 40000, s.dport = 80, s.seq = 0x01020304, s.flags = JK_SYN, s.wnd = 64240;
    s.opt = (struct jk_tcp_opts){.has_mss = true, .mss = 1460, .sack_ok = true,
                                 .has_ts = true, .tsval = 0x11223344, .has_wscale = true,
                                 .wscale = 7};
    cr_assert_eq(jk_build_segment(buf, sizeof buf, &s, NULL, 0), sizeof syn4);
    cr_assert_arr_eq(buf, syn4, sizeof syn4);

    memset(&s, 0, sizeof s);
    jk_addr_parse("2001:db8::1", &s.src);
    jk_addr_parse("2001:db8::2", &s.dst);
    s.sport = 50000, s.dport = 443, s.seq = 0xfffffff0, s.flags = JK_SYN, s.wnd = 65535;
    s.opt = (struct jk_tcp_opts){.has_mss = true, .mss = 1440, .sack_ok = true,
                                 .has_wscale = true, .wscale = 14};
    cr_assert_eq(jk_build_segment(buf, sizeof buf, &s, NULL, 0), sizeof syn6);
    cr_assert_arr_eq(buf, syn6, sizeof syn6);
}

/* ------------------------------------------------------------- round trips */

static void round_trip_every_option(int fam, size_t plen)
{
    uint8_t pl[1500];
    struct jk_seg s = base_seg(fam);
    all_opts(&s.opt, 2);
    fill_pattern(pl, plen, 5);
    round_trip(&s, pl, plen);
}

Test(packet, round_trip_ipv4_no_payload) { round_trip_every_option(4, 0); }
Test(packet, round_trip_ipv4_payload) { round_trip_every_option(4, 1460); }
Test(packet, round_trip_ipv6_no_payload) { round_trip_every_option(6, 0); }
Test(packet, round_trip_ipv6_payload) { round_trip_every_option(6, 1441); }

/* Every subset of options with 0..4 SACK blocks, both families. */
Test(packet, round_trip_option_combinations)
{
    uint8_t pl[3] = {1, 2, 3};
    for (int fam = 4; fam <= 6; fam += 2)
        for (int bits = 0; bits < 16; bits++)
            for (int ns = 0; ns <= JK_MAX_SACK; ns++) {
                struct jk_seg s = base_seg(fam);
                all_opts(&s.opt, ns);
                s.opt.has_mss = bits & 1;
                s.opt.has_wscale = bits & 2;
                s.opt.sack_ok = bits & 4;
                s.opt.has_ts = bits & 8;
                size_t ol = jk_tcp_opts_len(&s.opt);
                cr_assert_eq(ol % 4, 0);
                cr_assert_leq(ol, 40);
                cr_assert_eq(jk_header_len(&s), iph_of(fam) + 20 + ol);
                round_trip(&s, pl, (size_t)(bits % 4));
            }
}

Test(packet, round_trip_max_sizes)
{
    uint8_t *pl = calloc(1, 65535);
    cr_assert_not_null(pl);
    struct jk_seg s = base_seg(4);
    all_opts(&s.opt, 1);
    round_trip(&s, pl, 65535 - jk_header_len(&s));
    s = base_seg(6);
    all_opts(&s.opt, 1);
    round_trip(&s, pl, 65535 - (jk_header_len(&s) - 40));
    free(pl);
}

/* ------------------------------------------------------------------ build */

static void assert_split_build(int fam, const size_t *cuts, int n)
{
    uint8_t pl[64], a[200], b[200];
    struct iovec iov[4];
    size_t total = 0;
    fill_pattern(pl, sizeof pl, 11);
    for (int i = 0; i < n; i++) {
        iov[i] = (struct iovec){pl + total, cuts[i]};
        total += cuts[i];
    }
    struct jk_seg s = base_seg(fam), g;
    all_opts(&s.opt, 1);
    size_t la = jk_build_segment(a, sizeof a, &s, iov, n);
    size_t lb = build1(b, sizeof b, &s, pl, total);
    cr_assert_eq(la, lb);
    cr_assert_arr_eq(a, b, la, "iovec split changed the frame");
    cr_assert_eq(jk_parse_frame(a, la, &g), JK_PARSE_TCP);
    assert_seg_eq(&g, &s, pl, total);
}

Test(packet, build_payload_split_odd_iovecs)
{
    static const size_t two[] = {7, 13}, three[] = {1, 0, 1}, four[] = {3, 5, 1, 10};
    for (int fam = 4; fam <= 6; fam += 2) {
        assert_split_build(fam, two, 2);
        assert_split_build(fam, three, 3);
        assert_split_build(fam, four, 4);
    }
}

Test(packet, build_ip_fields)
{
    uint8_t b[128];
    struct jk_seg s = base_seg(4);
    cr_assert_eq(build1(b, sizeof b, &s, NULL, 0), 40);
    cr_assert_eq(b[0], 0x45);
    cr_assert_eq(b[1], 0);
    cr_assert_eq(get16(b + 4), 0, "id 0");
    cr_assert_eq(get16(b + 6), 0x4000, "DF, no fragment");
    cr_assert_eq(b[8], 64, "default TTL");
    cr_assert_eq(b[9], 6);
    s.ttl = 7;
    cr_assert_eq(build1(b, sizeof b, &s, NULL, 0), 40);
    cr_assert_eq(b[8], 7);

    s = base_seg(6);
    cr_assert_eq(build1(b, sizeof b, &s, "ab", 2), 62);
    cr_assert_arr_eq(b, "\x60\0\0\0\0\x16\x06\x40", 8, "tc/flow 0, plen 22, hop limit 64");
    s.ttl = 255;
    cr_assert_eq(build1(b, sizeof b, &s, NULL, 0), 60);
    cr_assert_eq(b[7], 255);
}

Test(packet, build_tcp_fields)
{
    uint8_t b[128];
    struct jk_seg s = base_seg(4);
    s.flags = 0xff;
    cr_assert_eq(build1(b, sizeof b, &s, NULL, 0), 40);
    static const uint8_t want[] = {0x30, 0x39, 0x00, 0x50, 0xff, 0xff, 0xff, 0xf0, 0x80,
                                   0x00, 0x00, 0x01, 0x50, 0xff, 0xab, 0xcd};
    cr_assert_arr_eq(b + 20, want, sizeof want);
    cr_assert_eq(get16(b + 38), 0x1234);
    uint16_t c = (uint16_t)get16(b + 36);
    fix_tcp(b, 20, 20);
    cr_assert_eq(get16(b + 36), c, "TCP checksum matches the reference");
}

Test(packet, build_drops_sack_blocks_to_fit_40_bytes)
{
    struct jk_tcp_opts o;
    memset(&o, 0, sizeof o);
    all_opts(&o, 4);
    o.has_mss = o.has_wscale = false;
    o.sack_ok = false;
    cr_assert_eq(jk_tcp_opts_len(&o), 12 + 4 + 8 * 3, "TS leaves room for 3 blocks");
    o.has_ts = false;
    cr_assert_eq(jk_tcp_opts_len(&o), 4 + 8 * 4);
    all_opts(&o, 4);
    cr_assert_eq(jk_tcp_opts_len(&o), 20 + 4 + 8 * 2);
    o.nsack = 200; /* bogus count must not read past sack[] */
    cr_assert_eq(jk_tcp_opts_len(&o), 40);

    struct jk_seg s = base_seg(6), g;
    all_opts(&s.opt, 4);
    s.opt.has_mss = s.opt.has_wscale = false;
    uint8_t b[128];
    size_t len = build1(b, sizeof b, &s, NULL, 0);
    cr_assert_eq(len, 40 + 60);
    cr_assert_eq(jk_parse_frame(b, len, &g), JK_PARSE_TCP);
    cr_assert_eq(g.opt.nsack, 3);
    cr_assert_eq(g.opt.sack[2].left, s.opt.sack[2].left, "the last blocks are dropped");
}

Test(packet, build_clamps_window_scale)
{
    uint8_t b[128];
    struct jk_seg s = base_seg(4), g;
    s.opt.has_wscale = true;
    s.opt.wscale = 200;
    size_t len = build1(b, sizeof b, &s, NULL, 0);
    cr_assert_eq(b[40 + 3], 14);
    cr_assert_eq(jk_parse_frame(b, len, &g), JK_PARSE_TCP);
    cr_assert_eq(g.opt.wscale, 14);
}

Test(packet, build_fails_when_cap_too_small)
{
    uint8_t b[200];
    struct jk_seg s = base_seg(4);
    all_opts(&s.opt, 1);
    size_t need = jk_header_len(&s) + 10;
    for (size_t cap = 0; cap < need; cap++) {
        memset(b, 0xaa, sizeof b);
        cr_assert_eq(build1(b, cap, &s, "0123456789", 10), 0, "cap %zu", cap);
        for (size_t i = 0; i < sizeof b; i++)
            cr_assert_eq(b[i], 0xaa, "wrote byte %zu with cap %zu", i, cap);
    }
    cr_assert_eq(build1(b, need, &s, "0123456789", 10), need);
}

Test(packet, build_rejects_bad_families)
{
    uint8_t b[200];
    struct jk_seg s = base_seg(4);
    struct jk_seg t = base_seg(6);
    s.dst = t.dst;
    cr_assert_eq(build1(b, sizeof b, &s, NULL, 0), 0);
    memset(&s.src, 0, sizeof s.src);
    memset(&s.dst, 0, sizeof s.dst);
    cr_assert_eq(build1(b, sizeof b, &s, NULL, 0), 0, "family 0");
    s.src.family = s.dst.family = 5;
    cr_assert_eq(build1(b, sizeof b, &s, NULL, 0), 0, "family 5");
}

Test(packet, build_rejects_oversized)
{
    size_t cap = JK_MAX_FRAME + 100;
    uint8_t *b = malloc(cap), *pl = calloc(1, 70000);
    cr_assert(b && pl);
    struct jk_seg s = base_seg(4);
    size_t max4 = 65535 - 40;
    cr_assert_eq(build1(b, cap, &s, pl, max4), 65535);
    cr_assert_eq(build1(b, cap, &s, pl, max4 + 1), 0);
    s = base_seg(6);
    size_t max6 = 65535 - 20;
    cr_assert_eq(build1(b, cap, &s, pl, max6), 40 + 65535);
    cr_assert_eq(build1(b, cap, &s, pl, max6 + 1), 0);
    struct iovec iov[2] = {{pl, 40000}, {pl, 40000}};
    cr_assert_eq(jk_build_segment(b, cap, &s, iov, 2), 0);
    cr_assert_eq(jk_build_segment(b, cap, &s, iov, -1), 0);
    free(b);
    free(pl);
}
