/* SPDX-License-Identifier: MIT */
/* Tests for the packet codec (lib/packet.c). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

/* ------------------------------------------------------------------ helpers */

/*
 * Frames typed in byte by byte, with checksums computed by a separate
 * Python script and confirmed by Wireshark ("[correct]"), so parsing and
 * building are checked against something other than this codec.
 *
 * 192.0.2.1:40000 -> 198.51.100.2:80 SYN seq 0x01020304 win 64240,
 * TTL 64, DF, options MSS 1460, SACK_PERM, TS 0x11223344/0, NOP, WS 7.
 */
static const uint8_t syn4[] = {
    0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00,
    0x40, 0x06, 0x4e, 0x85, 0xc0, 0x00, 0x02, 0x01,
    0xc6, 0x33, 0x64, 0x02, 0x9c, 0x40, 0x00, 0x50,
    0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0x7b, 0xdb, 0x00, 0x00,
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x03, 0x03, 0x07,
};

/* [2001:db8::1]:50000 -> [2001:db8::2]:443 SYN seq 0xfffffff0 win 65535,
 * hop limit 64, options MSS 1440, NOP, NOP, SACK_PERM, NOP, WS 14. */
static const uint8_t syn6[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x06, 0x40,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xc3, 0x50, 0x01, 0xbb, 0xff, 0xff, 0xff, 0xf0,
    0x00, 0x00, 0x00, 0x00, 0x80, 0x02, 0xff, 0xff,
    0x4e, 0xad, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0,
    0x01, 0x01, 0x04, 0x02, 0x01, 0x03, 0x03, 0x0e,
};

/* Deliberately naive RFC 1071 sum, independent of jk_csum_add. */
static uint32_t ref_add(uint32_t s, const uint8_t *p, size_t n)
{
    uint64_t a = s;
    for (size_t i = 0; i < n; i++)
        a += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
    while (a >> 16)
        a = (a & 0xffff) + (a >> 16);
    return (uint32_t)a;
}

static uint16_t ref_fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

static void fix_ip4(uint8_t *f)
{
    size_t ihl = (size_t)(f[0] & 15) * 4;
    put16(f + 10, 0);
    put16(f + 10, ref_fold(ref_add(0, f, ihl)));
}

/* Recomputes the TCP checksum of the tlen bytes at f + off. */
static void fix_tcp(uint8_t *f, size_t off, size_t tlen)
{
    uint32_t s = (f[0] >> 4) == 4 ? ref_add(0, f + 12, 8) : ref_add(0, f + 8, 32);
    put16(f + off + 16, 0);
    s = ref_add(s + 6 + (uint32_t)tlen, f + off, tlen);
    put16(f + off + 16, ref_fold(s));
}

/* Sets the IP length fields for a frame of len bytes (no extension headers
 * assumed for IPv4 options; IPv6 payload is everything after 40 bytes). */
static void set_ip_len(uint8_t *f, size_t len)
{
    if ((f[0] >> 4) == 4) {
        put16(f + 2, (unsigned)len);
        fix_ip4(f);
    } else {
        put16(f + 4, (unsigned)(len - 40));
    }
}

static size_t iph_of(int fam) { return fam == 4 ? 20 : 40; }

static struct jk_seg base_seg(int fam)
{
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    cr_assert_eq(jk_addr_parse(fam == 4 ? "10.1.2.3" : "2001:db8::10", &s.src), 0);
    cr_assert_eq(jk_addr_parse(fam == 4 ? "10.9.8.7" : "2001:db8:ff::20", &s.dst), 0);
    s.sport = 12345;
    s.dport = 80;
    s.seq = 0xfffffff0u;
    s.ack = 0x80000001u;
    s.flags = JK_ACK | JK_PSH | JK_URG | JK_ECE | JK_CWR;
    s.wnd = 0xabcd;
    s.urp = 0x1234;
    return s;
}

static void all_opts(struct jk_tcp_opts *o, int nsack)
{
    o->has_mss = o->has_wscale = o->sack_ok = o->has_ts = true;
    o->mss = 1460;
    o->wscale = 9;
    o->tsval = 0xdeadbeef;
    o->tsecr = 0x01020304;
    o->nsack = (uint8_t)nsack;
    for (int i = 0; i < JK_MAX_SACK; i++)
        o->sack[i] = (struct jk_sack_block){0x1000u * (i + 1), 0x1000u * (i + 1) + 0x800};
}

static size_t build1(uint8_t *buf, size_t cap, const struct jk_seg *s, const void *pl, size_t n)
{
    struct iovec iov = {(void *)pl, n};
    return jk_build_segment(buf, cap, s, &iov, n ? 1 : 0);
}

/* SACK blocks the builder can fit next to the other options (40-byte limit). */
static int expect_nsack(const struct jk_tcp_opts *o)
{
    int room = 40 - (o->has_mss ? 4 : 0) - (o->has_ts ? 12 : o->sack_ok ? 4 : 0) -
               (o->has_wscale ? 4 : 0);
    int n = o->nsack < JK_MAX_SACK ? o->nsack : JK_MAX_SACK;
    while (n > 0 && 4 + 8 * n > room)
        n--;
    return n;
}

static void assert_opts_eq(const struct jk_tcp_opts *g, const struct jk_tcp_opts *w, int nsack)
{
    cr_assert_eq(g->has_mss, w->has_mss);
    if (w->has_mss)
        cr_assert_eq(g->mss, w->mss);
    cr_assert_eq(g->has_wscale, w->has_wscale);
    if (w->has_wscale)
        cr_assert_eq(g->wscale, w->wscale > 14 ? 14 : w->wscale);
    cr_assert_eq(g->sack_ok, w->sack_ok);
    cr_assert_eq(g->has_ts, w->has_ts);
    if (w->has_ts) {
        cr_assert_eq(g->tsval, w->tsval);
        cr_assert_eq(g->tsecr, w->tsecr);
    }
    cr_assert_eq(g->nsack, nsack);
    for (int i = 0; i < nsack; i++) {
        cr_assert_eq(g->sack[i].left, w->sack[i].left);
        cr_assert_eq(g->sack[i].right, w->sack[i].right);
    }
}

/* Compares a parsed segment with the one it was built from. */
static void assert_seg_eq(const struct jk_seg *g, const struct jk_seg *w, const void *pl, size_t n)
{
    cr_assert(jk_addr_eq(&g->src, &w->src));
    cr_assert(jk_addr_eq(&g->dst, &w->dst));
    cr_assert_eq(g->sport, w->sport);
    cr_assert_eq(g->dport, w->dport);
    cr_assert_eq(g->seq, w->seq);
    cr_assert_eq(g->ack, w->ack);
    cr_assert_eq(g->flags, w->flags);
    cr_assert_eq(g->wnd, w->wnd);
    cr_assert_eq(g->urp, w->urp);
    assert_opts_eq(&g->opt, &w->opt, expect_nsack(&w->opt));
    cr_assert_eq(g->len, n);
    if (n)
        cr_assert_arr_eq(g->payload, pl, n);
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 8));
}

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

/* A valid frame carrying "hello" with the given option bytes (n % 4 == 0). */
static size_t frame_with_opts(uint8_t *buf, size_t cap, int fam, const uint8_t *opts, size_t n)
{
    struct jk_seg s = base_seg(fam);
    size_t iph = iph_of(fam), len = build1(buf, cap - n, &s, "hello", 5);
    cr_assert_eq(len, iph + 20 + 5);
    memmove(buf + iph + 20 + n, buf + iph + 20, 5);
    memcpy(buf + iph + 20, opts, n);
    buf[iph + 12] = (uint8_t)((20 + n) / 4 << 4);
    len += n;
    set_ip_len(buf, len);
    fix_tcp(buf, iph, len - iph);
    return len;
}

/* A parse whose input is an exact-size heap copy, so ASan sees overreads. */
static enum jk_parse parse_exact(const uint8_t *f, size_t n, struct jk_seg *s)
{
    uint8_t *c = malloc(n ? n : 1);
    cr_assert_not_null(c);
    if (n)
        memcpy(c, f, n);
    enum jk_parse r = jk_parse_frame(c, n, s);
    if (r == JK_PARSE_TCP)
        cr_assert(s->payload >= c && s->payload + s->len <= c + n);
    free(c);
    return r;
}

/* Parses option bytes in an otherwise valid frame, for both families. */
static enum jk_parse parse_opts_both(const uint8_t *opts, size_t n, struct jk_seg *out)
{
    uint8_t buf[128];
    enum jk_parse r4, r6;
    struct jk_seg s6;
    r4 = parse_exact(buf, frame_with_opts(buf, sizeof buf, 4, opts, n), out);
    r6 = parse_exact(buf, frame_with_opts(buf, sizeof buf, 6, opts, n), &s6);
    cr_assert_eq(r4, r6, "IPv4 gave %d, IPv6 gave %d", r4, r6);
    if (r4 == JK_PARSE_TCP) {
        cr_assert_eq(out->len, 5);
        cr_assert_eq(s6.len, 5);
        assert_opts_eq(&s6.opt, &out->opt, out->opt.nsack);
    }
    return r4;
}

/* A valid data segment with every option and a payload. */
static size_t full_frame(uint8_t *buf, size_t cap, int fam, size_t plen)
{
    uint8_t pl[256];
    struct jk_seg s = base_seg(fam);
    all_opts(&s.opt, 1);
    fill_pattern(pl, plen, 3);
    size_t len = build1(buf, cap, &s, pl, plen);
    cr_assert_gt(len, 0);
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

/* Inserts an extension header chain (already linked to TCP) after the IPv6
 * header. The TCP checksum stays valid: it covers only the TCP length. */
static size_t insert_ext(uint8_t *b, size_t len, uint8_t first_nh, const uint8_t *ext, size_t n)
{
    memmove(b + 40 + n, b + 40, len - 40);
    memcpy(b + 40, ext, n);
    b[6] = first_nh;
    len += n;
    set_ip_len(b, len);
    return len;
}

static const uint8_t ext_chain[] = {
    43, 0, 1, 4, 0, 0, 0, 0,                  /* hop-by-hop: PadN -> routing */
    60, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* routing, 16 bytes, segs left 0 */
    6, 0, 1, 4, 0, 0, 0, 0,                   /* destination options -> TCP */
};

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

/* ------------------------------------------------------- malformed: TCP */

Test(packet, data_offset_below_5)
{
    uint8_t b[200];
    struct jk_seg s;
    for (int fam = 4; fam <= 6; fam += 2)
        for (int doff = 0; doff < 5; doff++) {
            size_t iph = iph_of(fam), len = full_frame(b, sizeof b, fam, 30);
            b[iph + 12] = (uint8_t)(doff << 4);
            fix_tcp(b, iph, len - iph);
            cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_OPTIONS, "doff %d", doff);
        }
}

Test(packet, data_offset_past_end)
{
    uint8_t b[200];
    struct jk_seg s;
    for (int fam = 4; fam <= 6; fam += 2) {
        struct jk_seg t = base_seg(fam);
        size_t iph = iph_of(fam), len = build1(b, sizeof b, &t, "abcdefgh", 8);
        b[iph + 12] = 0xf0; /* 60 bytes claimed, 28 present */
        fix_tcp(b, iph, len - iph);
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_OPTIONS);
        b[iph + 12] = 0x70; /* all 28 bytes: "abcdefgh" read as options, which overrun */
        fix_tcp(b, iph, len - iph);
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_TCP);
        cr_assert_eq(s.len, 0);
        cr_assert(!s.opt.has_mss && !s.opt.has_ts);
        b[iph + 12] = 0x60; /* "abcd" as options: the list ends, "efgh" is data */
        fix_tcp(b, iph, len - iph);
        cr_assert_eq(jk_parse_frame(b, len, &s), JK_PARSE_TCP);
        cr_assert_eq(s.len, 4);
    }
}

/* Malformed option lists never drop a segment (as Linux's
 * tcp_parse_options): a length of 0 or 1 ends the list there, keeping what
 * came before; nothing after it is read. A zero length would loop forever
 * if followed: bound the test. */
Test(packet, option_length_0_or_1, .timeout = 30)
{
    struct jk_seg s;
    static const uint8_t after[] = {0x1e, 0x00, 2, 4, 0x05, 0xb4, 1, 1};
    cr_assert_eq(parse_opts_both(after, sizeof after, &s), JK_PARSE_TCP);
    cr_assert(!s.opt.has_mss, "nothing after the bad length is read");
    static const uint8_t before[] = {2, 4, 0x05, 0xb4, 0x1e, 0x01, 3, 3};
    cr_assert_eq(parse_opts_both(before, sizeof before, &s), JK_PARSE_TCP);
    cr_assert(s.opt.has_mss && s.opt.mss == 1460, "what came before is kept");
    cr_assert(!s.opt.has_wscale);
    cr_assert_eq(parse_opts_both((const uint8_t *)"\x02\x00\x05\xb4", 4, &s), JK_PARSE_TCP);
    cr_assert(!s.opt.has_mss);
    cr_assert_eq(parse_opts_both((const uint8_t *)"\x01\x01\x1e\x02", 4, &s), JK_PARSE_TCP,
                 "length 2 is the smallest valid");
}

/* An option running past the header ends the list; the segment stays. */
Test(packet, option_past_end)
{
    struct jk_seg s;
    static const char *cut[] = {"\x01\x01\x1e\x03", "\x01\x01\x1e\xff", "\x01\x01\x01\x02",
                                "\x01\x08\x0a\x00"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(parse_opts_both((const uint8_t *)cut[i], 4, &s), JK_PARSE_TCP, "case %zu", i);
        cr_assert(!s.opt.has_ts && !s.opt.has_mss, "case %zu", i);
    }
    static const uint8_t ws_then_cut[] = {3, 3, 7, 8, 10, 0, 0, 0};
    cr_assert_eq(parse_opts_both(ws_then_cut, sizeof ws_then_cut, &s), JK_PARSE_TCP);
    cr_assert(s.opt.has_wscale && s.opt.wscale == 7 && !s.opt.has_ts);
}

/* A known option of a length its kind does not allow is ignored (Linux
 * checks each kind's exact length); the options around it still count. */
Test(packet, known_option_wrong_length)
{
    struct jk_seg s;
    static const char *bad[] = {
        "\x02\x03\x05\x01",                 /* MSS length 3 */
        "\x02\x05\x05\xb4\x00\x01\x01\x01", /* MSS length 5 */
        "\x05\x03\x00\x01",                 /* SACK length 3 */
        "\x05\x02\x01\x01",                 /* SACK with no block */
        "\x05\x0b\x00\x00\x00\x01\x00\x00\x00\x02\x00\x01", /* SACK 11 */
        "\x03\x04\x07\x00",                 /* WS length 4 */
        "\x04\x03\x00\x01",                 /* SACK_PERM length 3 */
        "\x08\x09\x00\x00\x00\x01\x00\x00\x00\x01\x01\x01", /* TS 9 */
        "\x08\x0c\x00\x00\x00\x01\x00\x00\x00\x01\x01\x01", /* TS 12 */
        "\x04\x04\x00\x01",                 /* SACK_PERM length 4 */
    };
    static const size_t len[] = {4, 8, 4, 4, 12, 4, 4, 12, 12, 4};
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++) {
        cr_assert_eq(parse_opts_both((const uint8_t *)bad[i], len[i], &s), JK_PARSE_TCP,
                     "case %zu", i);
        cr_assert(!s.opt.has_mss && !s.opt.has_wscale && !s.opt.sack_ok && !s.opt.has_ts &&
                      s.opt.nsack == 0,
                  "case %zu: the option was taken", i);
    }
    static const uint8_t mixed[] = {3, 4, 7, 0, 2, 4, 0x05, 0xb4}; /* bad WS, good MSS */
    cr_assert_eq(parse_opts_both(mixed, sizeof mixed, &s), JK_PARSE_TCP);
    cr_assert(!s.opt.has_wscale && s.opt.has_mss && s.opt.mss == 1460);
}

Test(packet, unknown_option_skipped)
{
    struct jk_seg s;
    static const uint8_t o[] = {0x1e, 6, 0xff, 0xff, 0x02, 0x04, 0x22, 2, 2, 4, 0x05, 0xb4};
    cr_assert_eq(parse_opts_both(o, sizeof o, &s), JK_PARSE_TCP);
    cr_assert(s.opt.has_mss);
    cr_assert_eq(s.opt.mss, 1460, "the bytes inside the unknown option were not parsed");
    cr_assert(!s.opt.sack_ok && !s.opt.has_ts && !s.opt.has_wscale);
}

Test(packet, eol_ends_options)
{
    struct jk_seg s;
    static const uint8_t o[] = {2, 4, 0x05, 0xb4, 0, 0xff, 0x00, 0x01};
    cr_assert_eq(parse_opts_both(o, sizeof o, &s), JK_PARSE_TCP);
    cr_assert(s.opt.has_mss && s.opt.mss == 1460);
    uint8_t nops[40];
    memset(nops, 1, sizeof nops);
    cr_assert_eq(parse_opts_both(nops, sizeof nops, &s), JK_PARSE_TCP);
    cr_assert(!s.opt.has_mss && !s.opt.has_wscale && !s.opt.sack_ok && !s.opt.has_ts);
    cr_assert_eq(s.opt.nsack, 0);
}

Test(packet, window_scale_clamped_to_14)
{
    struct jk_seg s;
    cr_assert_eq(parse_opts_both((const uint8_t *)"\x01\x03\x03\x0e", 4, &s), JK_PARSE_TCP);
    cr_assert_eq(s.opt.wscale, 14);
    cr_assert_eq(parse_opts_both((const uint8_t *)"\x01\x03\x03\x0f", 4, &s), JK_PARSE_TCP);
    cr_assert_eq(s.opt.wscale, 14);
    cr_assert_eq(parse_opts_both((const uint8_t *)"\x01\x03\x03\xff", 4, &s), JK_PARSE_TCP);
    cr_assert_eq(s.opt.wscale, 14);
    cr_assert_eq(parse_opts_both((const uint8_t *)"\x01\x03\x03\x00", 4, &s), JK_PARSE_TCP);
    cr_assert(s.opt.has_wscale && s.opt.wscale == 0);
}

static void sack_opt(uint8_t *o, int nblocks)
{
    o[0] = 1, o[1] = 1, o[2] = 5, o[3] = (uint8_t)(2 + 8 * nblocks);
    for (int i = 0; i < 2 * nblocks; i++) {
        uint8_t *p = o + 4 + 4 * i;
        p[0] = 0xf0, p[1] = 0, p[2] = (uint8_t)i, p[3] = 0x10;
    }
}

Test(packet, sack_blocks)
{
    struct jk_seg s;
    uint8_t o[48];
    for (int n = 1; n <= 4; n++) {
        sack_opt(o, n);
        cr_assert_eq(parse_opts_both(o, 4 + 8 * (size_t)n, &s), JK_PARSE_TCP);
        cr_assert_eq(s.opt.nsack, n);
        for (int i = 0; i < n; i++) {
            cr_assert_eq(s.opt.sack[i].left, 0xf0000010u | (uint32_t)(2 * i) << 8);
            cr_assert_eq(s.opt.sack[i].right, 0xf0000010u | (uint32_t)(2 * i + 1) << 8);
        }
    }
}

/*
 * Five blocks need a 42-byte option, more than the 40-byte option area, so
 * "more than JK_MAX_SACK blocks" cannot occur in a well-formed segment: the
 * option overruns the header and is not read.
 */
Test(packet, sack_five_blocks_cannot_fit)
{
    struct jk_seg s;
    uint8_t o[40] = {0};
    sack_opt(o, 4);
    o[3] = 42;
    cr_assert_eq(parse_opts_both(o, sizeof o, &s), JK_PARSE_TCP);
    cr_assert_eq(s.opt.nsack, 0, "an option past the header is not read");
}

/* Later copies of an option win; options are independent of their order. */
Test(packet, options_in_any_order)
{
    struct jk_seg s;
    static const uint8_t o[] = {8, 10, 0, 0, 0, 9, 0, 0, 0, 8, 3, 3, 2, 2, 4, 0x02, 0x04,
                                2,  4,  0x02, 0x00, 4, 2, 1};
    cr_assert_eq(parse_opts_both(o, sizeof o, &s), JK_PARSE_TCP);
    cr_assert(s.opt.has_ts && s.opt.tsval == 9 && s.opt.tsecr == 8);
    cr_assert(s.opt.has_wscale && s.opt.wscale == 2);
    cr_assert(s.opt.has_mss && s.opt.mss == 512);
    cr_assert(s.opt.sack_ok);
}

/* ----------------------------------------------- frame length and addresses */

Test(packet, frame_length)
{
    uint8_t b[200];
    size_t len = full_frame(b, sizeof b, 4, 10);
    for (size_t n = 0; n < 4; n++)
        cr_assert_eq(jk_frame_length(b, n), 0, "v4 partial %zu", n);
    cr_assert_eq(jk_frame_length(b, 4), (long)len);
    cr_assert_eq(jk_frame_length(b, len), (long)len);
    put16(b + 2, 19);
    cr_assert_eq(jk_frame_length(b, len), -1);
    put16(b + 2, 65535);
    cr_assert_eq(jk_frame_length(b, 4), 65535);

    len = full_frame(b, sizeof b, 6, 10);
    for (size_t n = 0; n < 6; n++)
        cr_assert_eq(jk_frame_length(b, n), 0, "v6 partial %zu", n);
    cr_assert_eq(jk_frame_length(b, 6), (long)len);
    put16(b + 4, 0);
    cr_assert_eq(jk_frame_length(b, 6), -1, "jumbogram");
    put16(b + 4, 65535);
    cr_assert_eq(jk_frame_length(b, 6), 65575);

    b[0] = 0x50;
    cr_assert_eq(jk_frame_length(b, 1), -1);
    b[0] = 0x00;
    cr_assert_eq(jk_frame_length(b, 100), -1);
}

Test(packet, addr_parse_good)
{
    struct jk_addr a, b;
    cr_assert_eq(jk_addr_parse("10.0.0.1", &a), 0);
    cr_assert_eq(a.family, 4);
    cr_assert_arr_eq(a.a, "\x0a\x00\x00\x01", 4);
    cr_assert_eq(jk_addr_parse("fe80::1:2", &a), 0);
    cr_assert_eq(a.family, 6);
    cr_assert_arr_eq(a.a, "\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\x01\0\x02", 16);
    cr_assert_eq(jk_addr_parse("::ffff:1.2.3.4", &b), 0);
    cr_assert_eq(b.family, 6, "v4-mapped stays IPv6");
    cr_assert_eq(jk_addr_parse("::", &b), 0);
    cr_assert_eq(b.family, 6);
}

Test(packet, addr_parse_bad)
{
    static const char *bad[] = {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " ::1",
                                "gg::1", "1::2::3", "10.0.0.1/24", "localhost", "[::1]"};
    struct jk_addr a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&a, 0x5a, sizeof a);
        cr_assert_eq(jk_addr_parse(bad[i], &a), -EINVAL, "\"%s\"", bad[i]);
        cr_assert_eq(a.family, 0);
    }
    cr_assert_eq(jk_addr_parse(NULL, &a), -EINVAL);
    cr_assert_eq(jk_addr_parse("1.2.3.4", NULL), -EINVAL);
}

Test(packet, addr_eq)
{
    struct jk_addr a, b;
    jk_addr_parse("10.0.0.1", &a);
    jk_addr_parse("10.0.0.1", &b);
    cr_assert(jk_addr_eq(&a, &b));
    b.a[3] = 2;
    cr_assert(!jk_addr_eq(&a, &b));
    jk_addr_parse("::a00:1", &b); /* same value, other family */
    cr_assert(!jk_addr_eq(&a, &b));
    jk_addr_parse("2001:db8::1", &a);
    jk_addr_parse("2001:db8:0::1", &b);
    cr_assert(jk_addr_eq(&a, &b));
    b.a[15] ^= 1;
    cr_assert(!jk_addr_eq(&a, &b));
}

/* ------------------------------------------------------ sequence numbers */

Test(packet, seq_arithmetic_wraps)
{
    cr_assert(seq_lt(0xfffffff0u, 0x10));
    cr_assert(!seq_lt(0x10, 0xfffffff0u));
    cr_assert(seq_gt(0x10, 0xfffffff0u));
    cr_assert(seq_le(5, 5) && seq_ge(5, 5) && !seq_lt(5, 5) && !seq_gt(5, 5));
    cr_assert(seq_le(0xffffffffu, 0));
    cr_assert(seq_ge(0, 0xffffffffu));
    cr_assert(seq_lt(0, 0x7fffffffu));
    cr_assert(seq_gt(0, 0x80000001u), "more than 2^31 ahead counts as behind");
    cr_assert_eq(seq_max(0xfffffff0u, 0x10), 0x10);
    cr_assert_eq(seq_min(0xfffffff0u, 0x10), 0xfffffff0u);
    cr_assert_eq(seq_max(7, 3), 7);
    cr_assert_eq(seq_min(7, 3), 3);
}

/* ---------------------------------------------------------------- fuzzing */

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

struct fuzz_base {
    uint8_t f[400];
    size_t len, tcp_off; /* tcp_off: where the TCP header starts */
};

static void fuzz_bases(struct fuzz_base *b)
{
    b[0].len = full_frame(b[0].f, sizeof b[0].f, 4, 40), b[0].tcp_off = 20;
    b[1].len = full_frame(b[1].f, sizeof b[1].f, 6, 17), b[1].tcp_off = 40;
    b[2].len = full_frame(b[2].f, sizeof b[2].f, 6, 3);
    b[2].len = insert_ext(b[2].f, b[2].len, 0, ext_chain, sizeof ext_chain);
    b[2].tcp_off = 40 + sizeof ext_chain;
    memcpy(b[3].f, syn4, sizeof syn4), b[3].len = sizeof syn4, b[3].tcp_off = 20;
    memcpy(b[4].f, syn6, sizeof syn6), b[4].len = sizeof syn6, b[4].tcp_off = 40;
    struct jk_seg s = base_seg(4);
    all_opts(&s.opt, 4);
    s.opt.has_mss = s.opt.has_ts = s.opt.has_wscale = false; /* 4 SACK blocks */
    b[5].len = build1(b[5].f, sizeof b[5].f, &s, NULL, 0), b[5].tcp_off = 20;
}

/* Mutates either anywhere (and maybe truncates), or only the TCP part and
 * then repairs the checksum so option and offset parsing get exercised. */
static size_t mutate(uint8_t *f, const struct fuzz_base *b)
{
    size_t len = b->len, from = 0;
    bool repair = rng() & 1;
    if (repair)
        from = b->tcp_off;
    memcpy(f, b->f, len);
    for (int k = 1 + (int)(rng() % 4); k > 0; k--) {
        size_t i = from + (size_t)(rng() % (len - from));
        f[i] = (rng() & 1) ? (uint8_t)rng() : f[i] ^ (uint8_t)(1u << (rng() % 8));
    }
    if (repair) {
        fix_tcp(f, b->tcp_off, len - b->tcp_off);
        return len;
    }
    if ((rng() & 1) && (f[0] >> 4) == 4)
        fix_ip4(f); /* else IPv4 header fields are never seen past the checksum */
    return (rng() % 4 == 0) ? (size_t)(rng() % len) : len;
}

static void check_fuzzed(const uint8_t *f, size_t n, unsigned *count)
{
    struct jk_seg s;
    uint8_t *c = malloc(n ? n : 1);
    cr_assert_not_null(c);
    memcpy(c, f, n);
    enum jk_parse r = jk_parse_frame(c, n, &s);
    cr_assert_leq(r, JK_PARSE_IP_OPTION);
    count[r]++;
    if (r == JK_PARSE_TCP) {
        cr_assert(s.payload >= c && s.payload <= c + n);
        cr_assert_leq(s.len, (size_t)(c + n - s.payload));
        cr_assert_eq(s.src.family, c[0] >> 4);
        cr_assert_leq(s.opt.nsack, JK_MAX_SACK);
        cr_assert_leq(s.opt.wscale, 14);
        /* Whatever parsed can be rebuilt and parses again. */
        uint8_t out[512];
        struct jk_seg g;
        struct iovec iov = {(void *)s.payload, s.len};
        size_t len = jk_build_segment(out, sizeof out, &s, &iov, 1);
        cr_assert_gt(len, 0);
        cr_assert_eq(jk_parse_frame(out, len, &g), JK_PARSE_TCP);
        cr_assert_eq(g.seq, s.seq);
        cr_assert_eq(g.len, s.len);
    }
    free(c);
}

Test(packet, fuzz_mutations_never_crash, .timeout = 120)
{
    struct fuzz_base bases[6];
    uint8_t f[400];
    unsigned count[JK_PARSE_IP_OPTION + 1] = {0};
    fuzz_bases(bases);
    rng_state = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 100000; i++) {
        const struct fuzz_base *b = &bases[rng() % 6];
        check_fuzzed(f, mutate(f, b), count);
    }
    /* The mutations must reach every layer, or the test proves little. */
    for (int r = JK_PARSE_TCP; r <= JK_PARSE_OPTIONS; r++)
        if (r != JK_PARSE_ICMP) /* the bases are TCP: ICMP has its own tests */
            cr_assert_gt(count[r], 50, "result %d seen only %u times", r, count[r]);
}
