/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net header work of the TUN offload transport (lib/vnet.c),
 * on crafted frames: super-segments as the kernel hands them over cut into
 * segments, a partial checksum completed, what is passed on unchanged;
 * segments coalesced into super-segments as the kernel takes them, what
 * is not coalesced, and the round trip coalesce -> split giving back the
 * frames byte for byte. Every frame produced must pass jktcp's own parser
 * (checksums included). Suite `vnet`.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "packet_test.h"
#include "vnet.h"

#define GSO 1448u
#define MAXF (JK_VNET_HDR_LEN + JK_MAX_FRAME)

static size_t l4_of(int fam) { return fam == 4 ? 20 : 40; }

/* A data segment of one flow (packet_test.h's addresses and ports) with
 * these flags and timestamps. */
static struct jk_seg seg_of(int fam, uint32_t seq, uint8_t flags)
{
    struct jk_seg s = base_seg(fam);
    s.seq = seq;
    s.flags = flags;
    s.urp = 0;
    s.opt.has_ts = true;
    s.opt.tsval = 777;
    s.opt.tsecr = 555;
    return s;
}

/* Payload byte at stream offset i. */
static uint8_t pat(size_t i) { return (uint8_t)(i * 7 + (i >> 9)); }

static size_t build_at(uint8_t *buf, const struct jk_seg *s, size_t off, size_t n)
{
    uint8_t *pl = malloc(n ? n : 1);
    cr_assert_not_null(pl);
    for (size_t i = 0; i < n; i++)
        pl[i] = pat(off + i);
    size_t len = build1(buf, JK_MAX_FRAME, s, pl, n);
    free(pl);
    cr_assert_gt(len, 0);
    return len;
}

/* The TCP checksum field as the kernel leaves it with NEEDS_CSUM: the
 * pseudo-header sum, folded, not complemented. */
static uint16_t pseudo_of(const uint8_t *f, int fam, size_t len)
{
    uint32_t a = fam == 4 ? jk_csum_add(0, f + 12, 8) : jk_csum_add(0, f + 8, 32);
    return (uint16_t)~jk_csum_fold(a + JK_IPPROTO_TCP + (uint32_t)(len - l4_of(fam)));
}

/* A super-segment as the kernel hands it over: plen payload bytes from
 * stream offset 0, the given flags and IPv4 id, the checksum partial. */
static size_t kernel_super(uint8_t *buf, int fam, size_t plen, uint8_t flags, uint16_t id,
                           struct jk_vnet_hdr *h)
{
    struct jk_seg s = seg_of(fam, 0xfffff000u, flags);
    size_t len = build_at(buf, &s, 0, plen);
    if (fam == 4) {
        put16(buf + 4, id);
        fix_ip4(buf);
    }
    size_t l4 = l4_of(fam);
    put16(buf + l4 + 16, pseudo_of(buf, fam, len));
    *h = (struct jk_vnet_hdr){.flags = JK_VNET_F_NEEDS_CSUM,
                              .gso_type = fam == 4 ? JK_VNET_GSO_TCPV4 : JK_VNET_GSO_TCPV6,
                              .hdr_len = (uint16_t)(len - plen),
                              .gso_size = GSO,
                              .csum_start = (uint16_t)l4,
                              .csum_offset = 16};
    return len;
}

/* Splits a kernel super-segment and checks every frame. */
static void split_checks(int fam, size_t plen, uint8_t flags, uint16_t id)
{
    uint8_t *buf = malloc(MAXF);
    cr_assert_not_null(buf);
    struct jk_vnet_hdr h;
    size_t len = kernel_super(buf, fam, plen, flags, id, &h);
    struct jk_vnet_split sp;
    uint32_t want = (uint32_t)((plen + GSO - 1) / GSO);
    cr_assert_eq(jk_vnet_split_begin(&sp, buf, len, &h), (int)want);
    cr_assert(sp.csum_ours, "the split sums what it cuts: the adapter need not");
    const uint8_t *f;
    size_t n, off = 0;
    uint32_t i = 0;
    while (jk_vnet_split_next(&sp, &f, &n)) {
        struct jk_seg s;
        cr_assert_eq(parse_exact(f, n, &s), JK_PARSE_TCP, "frame %u", i);
        size_t exp = plen - off < GSO ? plen - off : GSO;
        cr_assert_eq(s.len, exp, "frame %u: %u bytes", i, s.len);
        cr_assert_eq(s.seq, 0xfffff000u + (uint32_t)off, "frame %u", i);
        cr_assert_eq(jk_parse_frame(f, n, &s), JK_PARSE_TCP);
        for (size_t k = 0; k < s.len; k++)
            cr_assert_eq(s.payload[k], pat(off + k), "frame %u byte %zu", i, k);
        bool last = i + 1 == want;
        uint8_t fl = flags;
        if (i > 0)
            fl &= (uint8_t)~JK_CWR;
        if (!last)
            fl &= (uint8_t)~(JK_FIN | JK_PSH);
        cr_assert_eq(s.flags, fl, "frame %u flags %#x want %#x", i, s.flags, fl);
        cr_assert(s.opt.has_ts && s.opt.tsval == 777 && s.opt.tsecr == 555);
        if (fam == 4)
            cr_assert_eq(jk_rd16(f + 4), id == 0 ? 0 : (uint16_t)(id + i), "frame %u id", i);
        off += s.len;
        i++;
    }
    cr_assert_eq(i, want);
    cr_assert_eq(off, plen);
    free(buf);
}

Test(vnet, split_cuts_v4_super_segment)
{
    split_checks(4, 7 * GSO + 100, JK_ACK | JK_PSH | JK_FIN | JK_CWR, 0x1234);
}

Test(vnet, split_cuts_v6_super_segment)
{
    split_checks(6, 44 * GSO + 11, JK_ACK | JK_PSH | JK_CWR, 0);
}

Test(vnet, split_exact_multiple_of_gso_size) { split_checks(4, 3 * GSO, JK_ACK | JK_PSH, 9); }

/* DF with id 0 (jktcp's and RFC 6864's atomic datagrams): ids stay 0. */
Test(vnet, split_keeps_id_zero_with_df) { split_checks(4, 5 * GSO, JK_ACK, 0); }

Test(vnet, split_wrapping_id_and_sequence) { split_checks(4, 40 * GSO, JK_ACK, 0xfffe); }

/* IPv6 with an extension header first: the split goes by the kernel's
 * csum_start, the parser by the header chain, so the parser checks the sum. */
Test(vnet, split_behind_v6_extension_headers_is_checked)
{
    uint8_t *buf = malloc(MAXF);
    cr_assert_not_null(buf);
    struct jk_vnet_hdr h;
    size_t len = kernel_super(buf, 6, 3 * GSO, JK_ACK, 0, &h);
    struct jk_vnet_split sp;
    cr_assert_eq(jk_vnet_split_begin(&sp, buf, len, &h), 3);
    cr_assert(sp.csum_ours);
    len = kernel_super(buf, 6, 3 * GSO, JK_ACK, 0, &h);
    buf[6] = 60; /* next header: destination options (csum_start still 40) */
    cr_assert_eq(jk_vnet_split_begin(&sp, buf, len, &h), 3);
    cr_assert_not(sp.csum_ours);
    free(buf);
}

/* No GSO, checksum left partial: completed in place, the frame parses. */
Test(vnet, split_completes_partial_checksum)
{
    for (int fam = 4; fam <= 6; fam += 2) {
        uint8_t buf[2048];
        struct jk_vnet_hdr h;
        size_t len = kernel_super(buf, fam, 999, JK_ACK | JK_PSH, 7, &h);
        h.gso_type = JK_VNET_GSO_NONE;
        h.gso_size = 0;
        struct jk_seg s;
        cr_assert_eq(jk_parse_frame(buf, len, &s), JK_PARSE_CHECKSUM, "partial before");
        struct jk_vnet_split sp;
        cr_assert_eq(jk_vnet_split_begin(&sp, buf, len, &h), 1);
        /* completed from where the kernel says: the parser still checks it */
        cr_assert_not(sp.csum_ours);
        const uint8_t *f;
        size_t n;
        cr_assert(jk_vnet_split_next(&sp, &f, &n));
        cr_assert_eq(f, buf);
        cr_assert_eq(n, len);
        cr_assert_eq(parse_exact(f, n, &s), JK_PARSE_TCP, "IPv%d", fam);
        cr_assert_eq(s.len, 999);
        cr_assert_not(jk_vnet_split_next(&sp, &f, &n));
    }
}

/* What the header does not describe goes up unchanged, as one frame. */
Test(vnet, split_passes_what_it_cannot_cut)
{
    uint8_t buf[8192], copy[8192];
    struct jk_vnet_hdr h;
    size_t len = kernel_super(buf, 4, 3 * GSO, JK_ACK, 1, &h);
    memcpy(copy, buf, len);
    struct jk_vnet_hdr bad[] = {h, h, h, h, h};
    bad[0].gso_type = 3;                 /* UDP (UFO) */
    bad[1].gso_size = 0;                 /* no segment size */
    bad[2].gso_type = JK_VNET_GSO_TCPV6; /* an IPv4 packet */
    bad[3].csum_start = 60000;           /* past the packet, no GSO */
    bad[3].gso_type = JK_VNET_GSO_NONE;
    bad[4].gso_type = 0x42;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct jk_vnet_split sp;
        cr_assert_eq(jk_vnet_split_begin(&sp, buf, len, &bad[k]), 0, "case %zu", k);
        cr_assert_not(sp.csum_ours, "case %zu: passed on, checked as any frame", k);
        const uint8_t *f;
        size_t n;
        cr_assert(jk_vnet_split_next(&sp, &f, &n));
        cr_assert(f == buf && n == len && memcmp(buf, copy, len) == 0, "case %zu", k);
        cr_assert_not(jk_vnet_split_next(&sp, &f, &n));
    }
    /* a truncated packet (IP length past the bytes read) */
    struct jk_vnet_split sp;
    cr_assert_eq(jk_vnet_split_begin(&sp, buf, len - 10, &h), 0);
}

/* ---- coalescing --------------------------------------------------------- */

struct frames {
    uint8_t *f[64];
    size_t len[64];
    int n;
};

/* n segments of the flow from offset 0, sizes[i] payload bytes each;
 * PSH on the last when push. */
static void make_frames(struct frames *fr, int fam, int n, const size_t *sizes, bool push)
{
    fr->n = n;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        fr->f[i] = malloc(JK_MAX_FRAME);
        cr_assert_not_null(fr->f[i]);
        uint8_t fl = JK_ACK | (push && i == n - 1 ? JK_PSH : 0);
        struct jk_seg s = seg_of(fam, 1000u + (uint32_t)off, fl);
        fr->len[i] = build_at(fr->f[i], &s, off, sizes[i]);
        off += sizes[i];
    }
}

static void free_frames(struct frames *fr)
{
    for (int i = 0; i < fr->n; i++)
        free(fr->f[i]);
}

static struct jk_vnet_coalesce new_co(void)
{
    struct jk_vnet_coalesce c = {.buf = malloc(JK_VNET_HDR_LEN + JK_VNET_MAX_SUPER)};
    cr_assert_not_null(c.buf);
    return c;
}

/* Coalesce all, finish, check the header, split and compare. */
static void round_trip(int fam, int n, const size_t *sizes, bool push)
{
    struct frames fr;
    make_frames(&fr, fam, n, sizes, push);
    struct jk_vnet_coalesce c = new_co();
    for (int i = 0; i < n; i++)
        cr_assert(jk_vnet_coalesce_add(&c, fr.f[i], fr.len[i]), "frame %d not taken", i);
    size_t total = jk_vnet_coalesce_finish(&c);
    size_t l4 = l4_of(fam), hl = fr.len[0] - sizes[0], plen = 0;
    for (int i = 0; i < n; i++)
        plen += sizes[i];
    cr_assert_eq(total, JK_VNET_HDR_LEN + hl + plen);
    cr_assert_eq(c.len, 0, "nothing held after finish");
    struct jk_vnet_hdr h;
    jk_vnet_hdr_get(&h, c.buf);
    uint8_t *p = c.buf + JK_VNET_HDR_LEN;
    cr_assert_eq(h.flags, JK_VNET_F_NEEDS_CSUM);
    cr_assert_eq(h.gso_type, fam == 4 ? JK_VNET_GSO_TCPV4 : JK_VNET_GSO_TCPV6);
    cr_assert_eq(h.gso_size, sizes[0]);
    cr_assert_eq(h.hdr_len, hl);
    cr_assert_eq(h.csum_start, l4);
    cr_assert_eq(h.csum_offset, 16);
    cr_assert_eq(jk_rd16(p + l4 + 16), pseudo_of(p, fam, hl + plen), "pseudo-header sum");
    cr_assert_eq(fam == 4 ? jk_rd16(p + 2) : jk_rd16(p + 4) + 40u, hl + plen, "IP length");
    if (fam == 4)
        cr_assert_eq(jk_csum_fold(jk_csum_add(0, p, 20)), 0, "IPv4 header checksum");
    cr_assert_eq((p[l4 + 13] & JK_PSH) != 0, push);
    struct jk_vnet_split sp;
    cr_assert_eq(jk_vnet_split_begin(&sp, p, total - JK_VNET_HDR_LEN, &h), n);
    const uint8_t *f;
    size_t len;
    for (int i = 0; i < n; i++) {
        cr_assert(jk_vnet_split_next(&sp, &f, &len));
        cr_assert_eq(len, fr.len[i], "frame %d", i);
        cr_assert_eq(memcmp(f, fr.f[i], len), 0, "frame %d differs", i);
        struct jk_seg s;
        cr_assert_eq(parse_exact(f, len, &s), JK_PARSE_TCP);
    }
    cr_assert_not(jk_vnet_split_next(&sp, &f, &len));
    free(c.buf);
    free_frames(&fr);
}

Test(vnet, round_trip_v4)
{
    size_t sz[20];
    for (int i = 0; i < 20; i++)
        sz[i] = GSO;
    sz[19] = 77;
    round_trip(4, 20, sz, true);
}

Test(vnet, round_trip_v6)
{
    size_t sz[8] = {1428, 1428, 1428, 1428, 1428, 1428, 1428, 1428};
    round_trip(6, 8, sz, false);
}

/* 64 KiB at most: 45 segments of 1448 would pass it, the 45th is refused. */
Test(vnet, coalesce_stops_at_64k)
{
    size_t sz[46];
    for (int i = 0; i < 46; i++)
        sz[i] = GSO;
    struct frames fr;
    make_frames(&fr, 4, 46, sz, false);
    struct jk_vnet_coalesce c = new_co();
    int taken = 0;
    while (taken < 46 && jk_vnet_coalesce_add(&c, fr.f[taken], fr.len[taken]))
        taken++;
    cr_assert_eq(taken, (int)((JK_VNET_MAX_SUPER - (fr.len[0] - GSO)) / GSO), "taken %d", taken);
    cr_assert_leq(c.len, JK_VNET_MAX_SUPER);
    free(c.buf);
    free_frames(&fr);
    round_trip(4, 45, sz, false);
}

/* One segment goes out as it came, behind a zero header. */
Test(vnet, coalesce_single_segment_goes_out_plain)
{
    size_t sz[1] = {500};
    struct frames fr;
    make_frames(&fr, 6, 1, sz, false);
    struct jk_vnet_coalesce c = new_co();
    cr_assert(jk_vnet_coalesce_add(&c, fr.f[0], fr.len[0]));
    cr_assert_eq(jk_vnet_coalesce_finish(&c), JK_VNET_HDR_LEN + fr.len[0]);
    static const uint8_t zero[JK_VNET_HDR_LEN];
    cr_assert_eq(memcmp(c.buf, zero, sizeof zero), 0);
    cr_assert_eq(memcmp(c.buf + JK_VNET_HDR_LEN, fr.f[0], fr.len[0]), 0);
    cr_assert_eq(jk_vnet_coalesce_finish(&c), 0, "nothing held any more");
    free(c.buf);
    free_frames(&fr);
}

/* What never starts a super-segment: SYN, FIN, RST, a pure ACK, a lone
 * PSH segment, ECN's CWR, not TCP, IPv4 with options. */
Test(vnet, coalesce_refuses_to_start)
{
    static const uint8_t flags[] = {JK_SYN, JK_SYN | JK_ACK, JK_ACK | JK_FIN, JK_RST | JK_ACK,
                                    JK_ACK | JK_PSH, JK_ACK | JK_CWR, JK_ACK | JK_URG};
    uint8_t *buf = malloc(JK_MAX_FRAME);
    struct jk_vnet_coalesce c = new_co();
    for (size_t k = 0; k < sizeof flags; k++) {
        struct jk_seg s = seg_of(4, 1, flags[k]);
        size_t len = build_at(buf, &s, 0, flags[k] & (JK_SYN | JK_RST) ? 0 : 100);
        cr_assert_not(jk_vnet_coalesce_add(&c, buf, len), "flags %#x", flags[k]);
        cr_assert_eq(c.len, 0);
    }
    struct jk_seg s = seg_of(6, 1, JK_ACK);
    size_t len = build_at(buf, &s, 0, 0);
    cr_assert_not(jk_vnet_coalesce_add(&c, buf, len), "pure ACK");
    len = build_at(buf, &s, 0, 100);
    buf[6] = 17; /* UDP */
    cr_assert_not(jk_vnet_coalesce_add(&c, buf, len), "not TCP");
    s = seg_of(4, 1, JK_ACK);
    len = build_at(buf, &s, 0, 100);
    buf[0] = 0x46; /* an IPv4 header with options */
    cr_assert_not(jk_vnet_coalesce_add(&c, buf, len), "IPv4 options");
    cr_assert_eq(c.len, 0);
    free(buf);
    free(c.buf);
}

/* A second segment that does not continue the first is refused (the
 * caller writes the first out, alone). */
static void refuse_second(int fam, void (*change)(struct jk_seg *s, size_t *plen),
                          const char *what)
{
    uint8_t *a = malloc(JK_MAX_FRAME), *b = malloc(JK_MAX_FRAME);
    struct jk_seg s = seg_of(fam, 5000, JK_ACK);
    size_t alen = build_at(a, &s, 0, GSO);
    struct jk_seg s2 = seg_of(fam, 5000 + GSO, JK_ACK);
    size_t plen = GSO;
    change(&s2, &plen);
    size_t blen = build_at(b, &s2, GSO, plen);
    struct jk_vnet_coalesce c = new_co();
    cr_assert(jk_vnet_coalesce_add(&c, a, alen));
    cr_assert_not(jk_vnet_coalesce_add(&c, b, blen), "IPv%d: %s taken", fam, what);
    cr_assert_eq(c.len, alen);
    cr_assert_eq(jk_vnet_coalesce_finish(&c), JK_VNET_HDR_LEN + alen, "written alone");
    free(a);
    free(b);
    free(c.buf);
}

static void gap(struct jk_seg *s, size_t *p) { s->seq += 1; }
static void other_ack(struct jk_seg *s, size_t *p) { s->ack += 1448; }
static void other_window(struct jk_seg *s, size_t *p) { s->wnd -= 1; }
static void other_ts(struct jk_seg *s, size_t *p) { s->opt.tsval += 1; }
static void sack(struct jk_seg *s, size_t *p)
{
    s->opt.nsack = 1;
    s->opt.sack[0] = (struct jk_sack_block){10, 20};
}
static void other_port(struct jk_seg *s, size_t *p) { s->sport += 1; }
static void other_dst(struct jk_seg *s, size_t *p) { s->dst.a[3] ^= 1; }
static void bigger(struct jk_seg *s, size_t *p) { *p = GSO + 1; }
static void fin(struct jk_seg *s, size_t *p) { s->flags |= JK_FIN; }
static void hop_limit(struct jk_seg *s, size_t *p) { s->ttl = 3; }

Test(vnet, coalesce_refuses_what_does_not_continue)
{
    static const struct {
        void (*fn)(struct jk_seg *, size_t *);
        const char *what;
    } cases[] = {{gap, "a sequence gap"},       {other_ack, "another ACK"},
                 {other_window, "another window"}, {other_ts, "another TS value"},
                 {sack, "other options"},       {other_port, "another port"},
                 {other_dst, "another address"}, {bigger, "a bigger payload"},
                 {fin, "FIN"},                  {hop_limit, "another hop limit"}};
    for (int fam = 4; fam <= 6; fam += 2)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
            refuse_second(fam, cases[k].fn, cases[k].what);
}

/* A short segment or PSH ends the run: nothing follows it. */
Test(vnet, coalesce_run_ends_after_short_or_pushed)
{
    for (int push = 0; push <= 1; push++) {
        size_t sz[3] = {GSO, push ? GSO : 1000, GSO};
        struct frames fr;
        make_frames(&fr, 4, 3, sz, false);
        if (push) { /* PSH on the second (its checksum redone) */
            fr.f[1][20 + 13] |= JK_PSH;
            fix_tcp(fr.f[1], 20, fr.len[1] - 20);
        }
        struct jk_vnet_coalesce c = new_co();
        cr_assert(jk_vnet_coalesce_add(&c, fr.f[0], fr.len[0]));
        cr_assert(jk_vnet_coalesce_add(&c, fr.f[1], fr.len[1]));
        /* the third continues the sequence but may not follow */
        struct jk_seg s = seg_of(4, 1000u + (uint32_t)(sz[0] + sz[1]), JK_ACK);
        uint8_t *b = malloc(JK_MAX_FRAME);
        size_t blen = build_at(b, &s, sz[0] + sz[1], GSO);
        cr_assert_not(jk_vnet_coalesce_add(&c, b, blen), "push %d", push);
        free(b);
        free(c.buf);
        free_frames(&fr);
    }
}
