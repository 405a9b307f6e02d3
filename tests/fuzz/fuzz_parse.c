/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the packet codec.
 * jk_parse_frame / jk_frame_length over arbitrary bytes, with invariants on
 * what they report, and a round trip: a frame that parses as TCP is rebuilt
 * with jk_build_segment and must parse back to the same fields. */
#include "fuzz_common.h"

#include "icmp.h"

#include <sys/uio.h>

/* What jk_build_segment keeps of a parsed SACK list (mirrors packet.c's
 * documented layout: at most 40 option bytes, oldest blocks dropped). */
static size_t sack_kept(const struct jk_tcp_opts *o)
{
    size_t fixed = (o->has_mss ? 4 : 0) + (o->has_ts ? 12 : o->sack_ok ? 4 : 0) +
                   (o->has_wscale ? 4 : 0);
    size_t n = o->nsack > JK_MAX_SACK ? JK_MAX_SACK : o->nsack;
    while (n && 4 + 8 * n > 40 - fixed)
        n--;
    return n;
}

static void check_same(const struct jk_seg *a, const struct jk_seg *b)
{
    FZ_CHECK(jk_addr_eq(&a->src, &b->src) && jk_addr_eq(&a->dst, &b->dst), "addresses");
    FZ_CHECK(a->sport == b->sport && a->dport == b->dport, "ports");
    FZ_CHECK(a->seq == b->seq && a->ack == b->ack, "seq/ack %u/%u vs %u/%u", a->seq, a->ack,
             b->seq, b->ack);
    FZ_CHECK(a->flags == b->flags, "flags %#x vs %#x", a->flags, b->flags);
    FZ_CHECK(a->wnd == b->wnd && a->urp == b->urp, "wnd/urp");
    FZ_CHECK(a->len == b->len, "len %u vs %u", a->len, b->len);
    FZ_CHECK(a->len == 0 || memcmp(a->payload, b->payload, a->len) == 0, "payload");
    const struct jk_tcp_opts *x = &a->opt, *y = &b->opt;
    FZ_CHECK(x->has_mss == y->has_mss && (!x->has_mss || x->mss == y->mss), "mss");
    FZ_CHECK(x->has_wscale == y->has_wscale && (!x->has_wscale || x->wscale == y->wscale),
             "wscale");
    FZ_CHECK(x->sack_ok == y->sack_ok, "sack_ok");
    FZ_CHECK(x->has_ts == y->has_ts && (!x->has_ts || (x->tsval == y->tsval && x->tsecr == y->tsecr)),
             "timestamps");
    size_t n = sack_kept(x);
    FZ_CHECK(y->nsack == n, "nsack %u, expected %zu of %u", y->nsack, n, x->nsack);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(x->sack[i].left == y->sack[i].left && x->sack[i].right == y->sack[i].right,
                 "sack block %zu", i);
}

static uint8_t rebuilt[JK_MAX_FRAME + 64];

static void check_one(const uint8_t *data, size_t size);

/* An ICMP frame: jk_parse_icmp stays inside the input, and what it says
 * about the quoted segment is consistent. */
static void check_icmp(const uint8_t *data, size_t size)
{
    struct jk_icmp ic;
    memset(&ic, 0xa5, sizeof ic);
    enum jk_parse r = jk_parse_icmp(data, size, &ic);
    FZ_CHECK(r == JK_PARSE_ICMP || r == JK_PARSE_OTHER_PROTO || r >= JK_PARSE_DROP_FIRST,
             "icmp result %d", r);
    if (r != JK_PARSE_ICMP)
        return;
    unsigned v = data[0] >> 4;
    FZ_CHECK(ic.family == v && ic.src.family == v && ic.isrc.family == v, "icmp family");
    FZ_CHECK(ic.kind >= JK_ICMP_UNREACH && ic.kind <= JK_ICMP_OTHER, "icmp kind %d", ic.kind);
    FZ_CHECK(ic.kind == JK_ICMP_TOO_BIG || ic.mtu == 0, "mtu outside too-big");
    int e = jk_icmp_errno(&ic);
    FZ_CHECK(e < 0 && e > -4096, "icmp errno %d", e);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void put_csum(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Make the IPv4 header checksum and the TCP checksum right, so mutations
 * of options and lengths get past the checksum test. Returns false when
 * there is nothing to fix (not a plausible IP/TCP frame). */
static bool fix_checksums(uint8_t *f, size_t len)
{
    if (len < 1)
        return false;
    size_t tcp_off, tcp_len;
    uint32_t pseudo;
    if (f[0] >> 4 == 4) {
        size_t ihl = (size_t)(f[0] & 15) * 4, total;
        if (len < 20 || ihl < 20 || ihl > len || (total = rd16(f + 2)) < ihl || total > len)
            return false;
        put_csum(f + 10, 0);
        put_csum(f + 10, jk_csum_fold(jk_csum_add(0, f, ihl)));
        if (f[9] != 6 || total - ihl < 20)
            return true;
        tcp_off = ihl;
        tcp_len = total - ihl;
        pseudo = jk_csum_add(0, f + 12, 8);
    } else if (f[0] >> 4 == 6) {
        if (len < 40)
            return false;
        size_t end = 40 + (size_t)rd16(f + 4), off = 40;
        if (end > len)
            return false;
        uint8_t nh = f[6];
        while (nh == 0 || nh == 43 || nh == 60) {
            if (end - off < 8 || ((size_t)f[off + 1] + 1) * 8 > end - off)
                return false;
            nh = f[off];
            off += ((size_t)f[off + 1] + 1) * 8;
        }
        if (nh != 6 || end - off < 20)
            return false;
        tcp_off = off;
        tcp_len = end - off;
        pseudo = jk_csum_add(0, f + 8, 32);
    } else {
        return false;
    }
    uint8_t *t = f + tcp_off;
    put_csum(t + 16, 0);
    pseudo += 6 + (uint32_t)tcp_len;
    put_csum(t + 16, jk_csum_fold(jk_csum_add(pseudo, t, tcp_len)));
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    if (size == 0 || size > JK_MAX_FRAME + 64)
        return 0;
    uint8_t *fixed = malloc(size);
    FZ_CHECK(fixed != NULL, "oom");
    memcpy(fixed, data, size);
    if (fix_checksums(fixed, size) && memcmp(fixed, data, size) != 0)
        check_one(fixed, size);
    free(fixed);
    return 0;
}

static void check_one(const uint8_t *data, size_t size)
{
    long fl = jk_frame_length(data, size);
    FZ_CHECK(fl >= -1, "frame length %ld", fl);
    if (size >= 6 && ((data[0] >> 4) == 4 || (data[0] >> 4) == 6))
        FZ_CHECK(fl != 0, "6 bytes always decide the length");
    if (fl > 0) {
        FZ_CHECK(fl <= (long)JK_MAX_FRAME, "frame length %ld", fl);
        FZ_CHECK(fl >= ((data[0] >> 4) == 4 ? 20 : 41), "frame length %ld too small", fl);
        /* The same answer with more bytes available (it reads only the header). */
        FZ_CHECK(jk_frame_length(data, size < 6 ? size : 6) == fl || size < 6, "prefix");
    }

    struct jk_seg seg;
    memset(&seg, 0xa5, sizeof seg);
    enum jk_parse r = jk_parse_frame(data, size, &seg);
    FZ_CHECK(r <= JK_PARSE_IP_OPTION, "result %d", r);
    if (r == JK_PARSE_OTHER_PROTO || r == JK_PARSE_ICMP)
        FZ_CHECK(fl <= (long)size, "valid IP frame longer than the input");
    if (r == JK_PARSE_ICMP)
        check_icmp(data, size);
    if (r != JK_PARSE_TCP)
        return;

    /* Everything a TCP parse reports is inside the input and consistent. */
    unsigned v = data[0] >> 4;
    FZ_CHECK(fl > 0 && (size_t)fl <= size, "frame length %ld of %zu", fl, size);
    FZ_CHECK(seg.src.family == v && seg.dst.family == v, "family");
    FZ_CHECK(seg.payload >= data + (v == 4 ? 40 : 60), "payload before the headers");
    FZ_CHECK(seg.payload <= data + fl && seg.len <= (size_t)(data + fl - seg.payload),
             "payload [%td, +%u) outside frame of %ld", seg.payload - data, seg.len, fl);
    size_t tcp_hdr = (size_t)(seg.payload - data); /* IP + extensions + TCP + options */
    FZ_CHECK(tcp_hdr + seg.len == (size_t)fl, "lengths: hdr %zu + %u != %ld", tcp_hdr, seg.len, fl);
    FZ_CHECK(seg.opt.nsack <= JK_MAX_SACK, "nsack %u", seg.opt.nsack);
    FZ_CHECK(!seg.opt.has_wscale || seg.opt.wscale <= 14, "wscale %u", seg.opt.wscale);
    FZ_CHECK(seg.ttl == 0, "ttl");

    /* Round trip. */
    struct iovec iov = {(void *)seg.payload, seg.len};
    size_t need = (v == 4 ? 20 : 40) + 20 + jk_tcp_opts_len(&seg.opt) + seg.len;
    FZ_CHECK(jk_header_len(&seg) + seg.len == need, "jk_header_len");
    size_t n = jk_build_segment(rebuilt, sizeof rebuilt, &seg, &iov, 1);
    if (n == 0) {
        /* Only when the rebuilt options push it past the IP length limit. */
        FZ_CHECK(need - (v == 4 ? 0 : 40) > 65535, "build refused a %zu-byte frame", need);
        return;
    }
    FZ_CHECK(n == need, "built %zu, expected %zu", n, need);
    FZ_CHECK(jk_frame_length(rebuilt, n) == (long)n, "built frame length");
    /* A smaller cap must be refused, never overrun. */
    FZ_CHECK(jk_build_segment(rebuilt, n - 1, &seg, &iov, 1) == 0, "cap ignored");
    n = jk_build_segment(rebuilt, sizeof rebuilt, &seg, &iov, 1);
    uint8_t *copy = malloc(n); /* exact size, so ASan sees any over-read */
    FZ_CHECK(copy != NULL, "oom");
    memcpy(copy, rebuilt, n);
    struct jk_seg again;
    enum jk_parse r2 = jk_parse_frame(copy, n, &again);
    FZ_CHECK(r2 == JK_PARSE_TCP, "rebuilt frame parses as %d", r2);
    check_same(&seg, &again);
    free(copy);
}
