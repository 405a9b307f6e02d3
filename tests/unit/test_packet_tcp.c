/* SPDX-License-Identifier: MIT */
/*
 * Suite `packet`: the packet codec (lib/packet.c). Malformed TCP: data
 * offset, option lists, SACK blocks; frame length, addresses, sequence
 * arithmetic; random mutations that must never crash. Shared frames and
 * helpers: packet_test.h.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "packet_test.h"

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
