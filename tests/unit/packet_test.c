/* SPDX-License-Identifier: MIT */
/* Frames and helpers shared by the packet codec tests (see packet_test.h). */
#include "packet_test.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

/*
 * Frames typed in byte by byte, with checksums computed by a separate
 * Python script and confirmed by Wireshark ("[correct]"), so parsing and
 * building are checked against something other than this codec.
 *
 * 192.0.2.1:40000 -> 198.51.100.2:80 SYN seq 0x01020304 win 64240,
 * TTL 64, DF, options MSS 1460, SACK_PERM, TS 0x11223344/0, NOP, WS 7.
 */
const uint8_t syn4[] = {
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
const uint8_t syn6[] = {
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
uint32_t ref_add(uint32_t s, const uint8_t *p, size_t n)
{
    uint64_t a = s;
    for (size_t i = 0; i < n; i++)
        a += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
    while (a >> 16)
        a = (a & 0xffff) + (a >> 16);
    return (uint32_t)a;
}

uint16_t ref_fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void fix_ip4(uint8_t *f)
{
    size_t ihl = (size_t)(f[0] & 15) * 4;
    put16(f + 10, 0);
    put16(f + 10, ref_fold(ref_add(0, f, ihl)));
}

/* Recomputes the TCP checksum of the tlen bytes at f + off. */
void fix_tcp(uint8_t *f, size_t off, size_t tlen)
{
    uint32_t s = (f[0] >> 4) == 4 ? ref_add(0, f + 12, 8) : ref_add(0, f + 8, 32);
    put16(f + off + 16, 0);
    s = ref_add(s + 6 + (uint32_t)tlen, f + off, tlen);
    put16(f + off + 16, ref_fold(s));
}

/* Sets the IP length fields for a frame of len bytes (no extension headers
 * assumed for IPv4 options; IPv6 payload is everything after 40 bytes). */
void set_ip_len(uint8_t *f, size_t len)
{
    if ((f[0] >> 4) == 4) {
        put16(f + 2, (unsigned)len);
        fix_ip4(f);
    } else {
        put16(f + 4, (unsigned)(len - 40));
    }
}

size_t iph_of(int fam) { return fam == 4 ? 20 : 40; }

struct jk_seg base_seg(int fam)
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

void all_opts(struct jk_tcp_opts *o, int nsack)
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

size_t build1(uint8_t *buf, size_t cap, const struct jk_seg *s, const void *pl, size_t n)
{
    struct iovec iov = {(void *)pl, n};
    return jk_build_segment(buf, cap, s, &iov, n ? 1 : 0);
}

/* SACK blocks the builder can fit next to the other options (40-byte limit). */
int expect_nsack(const struct jk_tcp_opts *o)
{
    int room = 40 - (o->has_mss ? 4 : 0) - (o->has_ts ? 12 : o->sack_ok ? 4 : 0) -
               (o->has_wscale ? 4 : 0);
    int n = o->nsack < JK_MAX_SACK ? o->nsack : JK_MAX_SACK;
    while (n > 0 && 4 + 8 * n > room)
        n--;
    return n;
}

void assert_opts_eq(const struct jk_tcp_opts *g, const struct jk_tcp_opts *w, int nsack)
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
void assert_seg_eq(const struct jk_seg *g, const struct jk_seg *w, const void *pl, size_t n)
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

void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 8));
}

/* A parse whose input is an exact-size heap copy, so ASan sees overreads. */
enum jk_parse parse_exact(const uint8_t *f, size_t n, struct jk_seg *s)
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

/* A valid data segment with every option and a payload. */
size_t full_frame(uint8_t *buf, size_t cap, int fam, size_t plen)
{
    uint8_t pl[256];
    struct jk_seg s = base_seg(fam);
    all_opts(&s.opt, 1);
    fill_pattern(pl, plen, 3);
    size_t len = build1(buf, cap, &s, pl, plen);
    cr_assert_gt(len, 0);
    return len;
}

/* Inserts an extension header chain (already linked to TCP) after the IPv6
 * header. The TCP checksum stays valid: it covers only the TCP length. */
size_t insert_ext(uint8_t *b, size_t len, uint8_t first_nh, const uint8_t *ext, size_t n)
{
    memmove(b + 40 + n, b + 40, len - 40);
    memcpy(b + 40, ext, n);
    b[6] = first_nh;
    len += n;
    set_ip_len(b, len);
    return len;
}

const uint8_t ext_chain[] = {
    43, 0, 1, 4, 0, 0, 0, 0,                  /* hop-by-hop: PadN -> routing */
    60, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* routing, 16 bytes, segs left 0 */
    6, 0, 1, 4, 0, 0, 0, 0,                   /* destination options -> TCP */
};
