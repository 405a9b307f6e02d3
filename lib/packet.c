/* SPDX-License-Identifier: MIT */
/* Packet codec: IPv4/IPv6 + TCP. See packet.h. */
#include "packet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* ---------------------------------------------------------------- checksum */

/*
 * Sums are kept as host integers whose 16-bit words have network meaning
 * (the RFC 1071 example sums to 0xddf2 on any host), so callers can add
 * pseudo-header fields such as `6 + tcp_len` directly. Internally the bulk
 * is summed in native byte order, which is legal because the ones'
 * complement sum commutes with byte swapping (RFC 1071 §2(B)); only the
 * folded 16-bit result is swapped.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static uint16_t to_net_order(uint16_t v) { return (uint16_t)(v << 8 | v >> 8); }
#else
static uint16_t to_net_order(uint16_t v) { return v; }
#endif

static uint16_t fold64(uint64_t s)
{
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    return (uint16_t)s;
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8); /* unaligned-safe; compiles to one load */
    return w;
}

/* Adding the 32-bit halves into a 64-bit accumulator keeps every carry
 * without add-with-carry, which C cannot express. */
static uint64_t split(uint64_t w) { return (w & 0xffffffffu) + (w >> 32); }

/* Native-order sum of n <= 1 GiB bytes, few enough that neither accumulator wraps. */
static uint64_t sum_block(const uint8_t *p, size_t n)
{
    uint64_t a = 0, b = 0; /* two chains for instruction-level parallelism */
    for (; n >= 32; p += 32, n -= 32) {
        a += split(load64(p)) + split(load64(p + 8));
        b += split(load64(p + 16)) + split(load64(p + 24));
    }
    for (; n >= 8; p += 8, n -= 8)
        a += split(load64(p));
    if (n) {
        /* Zero padding keeps an odd last byte the high byte of its word. */
        uint64_t t = 0;
        memcpy(&t, p, n);
        b += split(t);
    }
    return (uint64_t)fold64(a) + fold64(b);
}

/*
 * Chaining: each chunk is summed as if it started at an even offset of the
 * checksummed data, and an odd length is padded with one zero byte. So only
 * the last chunk of a chain may have an odd length.
 */
uint32_t jk_csum_add(uint32_t sum, const void *data, size_t len)
{
    const size_t block = (size_t)1 << 30;
    const uint8_t *p = data;
    uint64_t acc = to_net_order(fold64(sum));
    while (len > block) {
        acc = fold64(acc + sum_block(p, block));
        p += block;
        len -= block;
    }
    acc += sum_block(p, len);
    return to_net_order(fold64(acc));
}

/* Folds to 16 bits and complements: the value to store in the header, and
 * 0 when summing data that includes a correct checksum. */
uint16_t jk_csum_fold(uint32_t sum) { return (uint16_t)~fold64(sum); }

/* ----------------------------------------------------------------- parsing */

#define TCP_HDR 20
#define IP4_HDR 20
#define IP6_HDR 40
#define MAX_OPTS 40

/* IPv4 options (RFC 791): skipped, except a loose or strict source route,
 * which asks us to forward: dropped, as Linux does by default
 * (accept_source_route 0). A malformed list drops the frame. */
static enum jk_parse check_ip4_options(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != 0) { /* 0: end of list */
        if (p[i] == 1) {         /* no-operation */
            i++;
            continue;
        }
        if (n - i < 2 || p[i + 1] < 2 || p[i + 1] > n - i)
            return JK_PARSE_IP_OPTION;
        if (p[i] == 131 || p[i] == 137) /* LSRR, SSRR */
            return JK_PARSE_IP_OPTION;
        i += p[i + 1];
    }
    return JK_PARSE_TCP;
}

static enum jk_parse parse_ip4(const uint8_t *f, size_t len, struct jk_ip *l4)
{
    if (len < IP4_HDR)
        return JK_PARSE_SHORT;
    size_t ihl = (size_t)(f[0] & 0x0f) * 4, total = jk_rd16(f + 2);
    if (ihl < IP4_HDR)
        return JK_PARSE_LENGTH;
    if (ihl > len)
        return JK_PARSE_SHORT;
    if (total < ihl || total > len)
        return JK_PARSE_LENGTH;
    if (jk_csum_fold(jk_csum_add(0, f, ihl)) != 0)
        return JK_PARSE_CHECKSUM;
    enum jk_parse r = check_ip4_options(f + IP4_HDR, ihl - IP4_HDR);
    if (r != JK_PARSE_TCP)
        return r;
    l4->proto = f[9];
    l4->l4 = f + ihl;
    l4->len = total - ihl;
    l4->addr_sum = jk_csum_add(0, f + 12, 8);
    uint16_t fo = jk_rd16(f + 6);
    if (fo & 0x3fff) { /* MF or a fragment offset */
        l4->frag = (struct jk_frag){jk_rd16(f + 4), (uint32_t)(fo & 0x1fff) * 8,
                                    (uint32_t)(total - ihl), (fo & 0x2000) != 0, ihl, 0, f[9],
                                    f + ihl};
        return JK_PARSE_FRAGMENT;
    }
    return JK_PARSE_TCP;
}

/* The options of a hop-by-hop or destination options header (RFC 8200
 * §4.2): an option we do not know is skipped only if the two high bits of
 * its type say so (00); otherwise the packet is discarded (ICMP parameter
 * problems are not sent). Pad1 and PadN are the only ones we know. */
static enum jk_parse check_ip6_options(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == 0) { /* Pad1 */
            i++;
            continue;
        }
        if (n - i < 2 || p[i + 1] > n - i - 2)
            return JK_PARSE_IP_OPTION;
        if (p[i] != 1 && (p[i] >> 6) != 0)
            return JK_PARSE_IP_OPTION;
        i += 2 + (size_t)p[i + 1];
    }
    return JK_PARSE_TCP;
}

/* One extension header at f[off..off+hl): may the packet go on past it? */
static enum jk_parse check_ip6_ext(uint8_t type, const uint8_t *h, size_t hl, size_t off)
{
    if (type == 0 && off != IP6_HDR) /* hop-by-hop only right after the header */
        return JK_PARSE_IP_OPTION;
    if (type == 43) /* routing: to us only once no segments are left (§4.4) */
        return h[3] == 0 ? JK_PARSE_TCP : JK_PARSE_IP_OPTION;
    return check_ip6_options(h + 2, hl - 2);
}

/* The fragment header at f[off..off+8) (RFC 8200 §4.5). An atomic
 * fragment (offset 0, no more: RFC 6946) is none: the packet goes on. */
static bool ip6_fragment(const uint8_t *f, size_t off, size_t nh_at, size_t end, struct jk_ip *l4)
{
    uint16_t fo = jk_rd16(f + off + 2);
    if ((fo & 0xfff9) == 0)
        return false;
    l4->frag = (struct jk_frag){jk_rd32(f + off + 4), (uint32_t)(fo & 0xfff8),
                                (uint32_t)(end - off - 8), (fo & 1) != 0, off, nh_at, f[off],
                                f + off + 8};
    return true;
}

/* Extension headers that share the (next header, 8-octet length) layout. */
static bool ip6_skippable(uint8_t nh) { return nh == 0 || nh == 43 || nh == 60; }

static enum jk_parse parse_ip6(const uint8_t *f, size_t len, struct jk_ip *l4)
{
    if (len < IP6_HDR)
        return JK_PARSE_SHORT;
    size_t end = IP6_HDR + (size_t)jk_rd16(f + 4), off = IP6_HDR, nh_at = 6;
    if (end > len)
        return JK_PARSE_LENGTH;
    uint8_t nh = f[6];
    l4->addr_sum = jk_csum_add(0, f + 8, 32);
    for (;;) {
        if (nh == 44) {
            if (end - off < 8)
                return JK_PARSE_SHORT;
            bool frag = ip6_fragment(f, off, nh_at, end, l4);
            nh = f[off];
            nh_at = off;
            off += 8;
            if (frag)
                return JK_PARSE_FRAGMENT;
            continue;
        }
        if (!ip6_skippable(nh))
            break;
        if (end - off < 8) /* every extension header is at least 8 bytes */
            return JK_PARSE_SHORT;
        size_t hl = ((size_t)f[off + 1] + 1) * 8;
        if (hl > end - off)
            return JK_PARSE_LENGTH;
        enum jk_parse r = check_ip6_ext(nh, f + off, hl, off);
        if (r != JK_PARSE_TCP)
            return r;
        nh = f[off];
        nh_at = off;
        off += hl;
    }
    l4->proto = nh;
    l4->l4 = f + off;
    l4->len = end - off;
    return JK_PARSE_TCP;
}

static void set_addr(struct jk_addr *a, uint8_t family, const uint8_t *p)
{
    memset(a, 0, sizeof *a);
    a->family = family;
    memcpy(a->a, p, family == 4 ? 4 : 16);
}

/* Checks an option's length against the only length its kind allows. */
static bool opt_len_ok(uint8_t kind, uint8_t l)
{
    switch (kind) {
    case 2: return l == 4;
    case 3: return l == 3;
    case 4: return l == 2;
    case 5: return l >= 10 && (l - 2) % 8 == 0;
    case 8: return l == 10;
    default: return true;
    }
}

static void take_opt(struct jk_tcp_opts *o, const uint8_t *p, uint8_t l)
{
    switch (p[0]) {
    case 2:
        o->has_mss = true;
        o->mss = jk_rd16(p + 2);
        break;
    case 3:
        o->has_wscale = true;
        o->wscale = p[2] > 14 ? 14 : p[2]; /* RFC 7323 §2.3 */
        break;
    case 4:
        o->sack_ok = true;
        break;
    case 5:
        o->nsack = 0;
        for (size_t i = 2; i < l && o->nsack < JK_MAX_SACK; i += 8, o->nsack++) {
            o->sack[o->nsack].left = jk_rd32(p + i);
            o->sack[o->nsack].right = jk_rd32(p + i + 4);
        }
        break;
    case 8:
        o->has_ts = true;
        o->tsval = jk_rd32(p + 2);
        o->tsecr = jk_rd32(p + 6);
        break;
    }
}

/* The option list never drops a segment, as in Linux's tcp_parse_options
 * (RFC 9293 §3.1 MUST-6/7: options may be unknown; be robust): a known
 * option of the wrong length is ignored, and a length below 2 or running
 * past the header ends the list there, keeping what came before. What
 * the segment lacks then (a timestamp, say) the state machine judges. */
static void parse_opts(struct jk_tcp_opts *o, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != 0) { /* kind 0 (EOL) ends the list */
        if (p[i] == 1) {
            i++;
            continue;
        }
        if (n - i < 2 || p[i + 1] < 2 || p[i + 1] > n - i)
            return;
        uint8_t l = p[i + 1];
        if (opt_len_ok(p[i], l))
            take_opt(o, p + i, l);
        i += l;
    }
}

static enum jk_parse parse_tcp(const struct jk_ip *l4, struct jk_seg *seg, bool csum_ours)
{
    const uint8_t *t = l4->l4;
    if (l4->len < TCP_HDR)
        return JK_PARSE_SHORT;
    size_t doff = (size_t)(t[12] >> 4) * 4;
    if (doff < TCP_HDR || doff > l4->len)
        return JK_PARSE_OPTIONS;
    /* the upper-layer length is 32 bits; it fits 16 here (no jumbograms) */
    uint32_t pseudo = l4->addr_sum + JK_IPPROTO_TCP + (uint32_t)l4->len;
    if (!csum_ours && jk_csum_fold(jk_csum_add(pseudo, t, l4->len)) != 0)
        return JK_PARSE_CHECKSUM;
    memset(&seg->opt, 0, sizeof seg->opt);
    parse_opts(&seg->opt, t + TCP_HDR, doff - TCP_HDR);
    seg->sport = jk_rd16(t);
    seg->dport = jk_rd16(t + 2);
    seg->seq = jk_rd32(t + 4);
    seg->ack = jk_rd32(t + 8);
    seg->flags = t[13];
    seg->wnd = jk_rd16(t + 14);
    seg->urp = jk_rd16(t + 18);
    seg->payload = t + doff;
    seg->len = (uint32_t)(l4->len - doff);
    seg->ttl = 0; /* so a parsed segment reused for a reply gets the default */
    return JK_PARSE_TCP;
}

enum jk_parse jk_parse_ip(const uint8_t *frame, size_t len, struct jk_ip *ip)
{
    enum jk_parse r;
    if (len < 1)
        return JK_PARSE_SHORT;
    uint8_t v = frame[0] >> 4;
    if (v == 4)
        r = parse_ip4(frame, len, ip);
    else if (v == 6)
        r = parse_ip6(frame, len, ip);
    else
        return JK_PARSE_VERSION;
    if (r != JK_PARSE_TCP && r != JK_PARSE_FRAGMENT)
        return r;
    ip->family = v;
    set_addr(&ip->src, v, frame + (v == 4 ? 12 : 8));
    set_addr(&ip->dst, v, frame + (v == 4 ? 16 : 24));
    return r;
}

enum jk_parse jk_parse_frame(const uint8_t *frame, size_t len, struct jk_seg *seg)
{
    return jk_parse_frame_as(frame, len, seg, false);
}

enum jk_parse jk_parse_frame_as(const uint8_t *frame, size_t len, struct jk_seg *seg,
                                bool csum_ours)
{
    struct jk_ip ip;
    enum jk_parse r = jk_parse_ip(frame, len, &ip);
    if (r != JK_PARSE_TCP)
        return r;
    if (ip.proto == (ip.family == 4 ? JK_IPPROTO_ICMP : JK_IPPROTO_ICMPV6))
        return JK_PARSE_ICMP;
    if (ip.proto != JK_IPPROTO_TCP)
        return JK_PARSE_OTHER_PROTO;
    r = parse_tcp(&ip, seg, csum_ours);
    if (r != JK_PARSE_TCP)
        return r;
    seg->src = ip.src;
    seg->dst = ip.dst;
    return JK_PARSE_TCP;
}

long jk_frame_length(const uint8_t *buf, size_t avail)
{
    if (avail < 1)
        return 0;
    switch (buf[0] >> 4) {
    case 4:
        if (avail < 4)
            return 0;
        if (jk_rd16(buf + 2) < 20)
            return -1;
        return jk_rd16(buf + 2);
    case 6:
        if (avail < 6)
            return 0;
        if (jk_rd16(buf + 4) == 0) /* jumbogram: not supported on a stream */
            return -1;
        return 40 + (long)jk_rd16(buf + 4);
    default:
        return -1;
    }
}

/* ---------------------------------------------------------------- building */

/*
 * Layout follows Linux so every multi-byte field stays 4-byte aligned:
 *   MSS(4) | SACK_PERM,TS or NOP,NOP,TS or NOP,NOP,SACK_PERM | NOP,WS |
 *   NOP,NOP,SACK(2+8n)
 */
static size_t opts_fixed_len(const struct jk_tcp_opts *o)
{
    size_t n = o->has_mss ? 4 : 0;
    if (o->has_ts)
        n += 12;
    else if (o->sack_ok)
        n += 4;
    return n + (o->has_wscale ? 4 : 0);
}

/* SACK blocks that fit after the fixed options; the oldest (last) go. */
static size_t sack_fit(const struct jk_tcp_opts *o)
{
    size_t room = MAX_OPTS - opts_fixed_len(o), n = o->nsack;
    if (n > JK_MAX_SACK)
        n = JK_MAX_SACK;
    while (n && 4 + 8 * n > room)
        n--;
    return n;
}

size_t jk_tcp_opts_len(const struct jk_tcp_opts *o)
{
    size_t n = sack_fit(o);
    return opts_fixed_len(o) + (n ? 4 + 8 * n : 0);
}

static uint8_t *put4(uint8_t *p, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    p[0] = a;
    p[1] = b;
    p[2] = c;
    p[3] = d;
    return p + 4;
}

static uint8_t *put_ts(uint8_t *p, const struct jk_tcp_opts *o)
{
    p = o->sack_ok ? put4(p, 4, 2, 8, 10) : put4(p, 1, 1, 8, 10);
    jk_wr32(p, o->tsval);
    jk_wr32(p + 4, o->tsecr);
    return p + 8;
}

static uint8_t *put_sack(uint8_t *p, const struct jk_tcp_opts *o, size_t n)
{
    p = put4(p, 1, 1, 5, (uint8_t)(2 + 8 * n));
    for (size_t i = 0; i < n; i++, p += 8) {
        jk_wr32(p, o->sack[i].left);
        jk_wr32(p + 4, o->sack[i].right);
    }
    return p;
}

static size_t write_opts(uint8_t *p, const struct jk_tcp_opts *o)
{
    uint8_t *s = p;
    size_t nsack = sack_fit(o);
    if (o->has_mss)
        p = put4(p, 2, 4, (uint8_t)(o->mss >> 8), (uint8_t)o->mss);
    if (o->has_ts)
        p = put_ts(p, o);
    else if (o->sack_ok)
        p = put4(p, 1, 1, 4, 2);
    if (o->has_wscale)
        p = put4(p, 1, 3, 3, o->wscale > 14 ? 14 : o->wscale);
    if (nsack)
        p = put_sack(p, o, nsack);
    return (size_t)(p - s);
}

static size_t ip_hdr_len(const struct jk_seg *seg)
{
    return seg->src.family == 4 ? IP4_HDR : IP6_HDR;
}

size_t jk_header_len(const struct jk_seg *seg)
{
    return ip_hdr_len(seg) + TCP_HDR + jk_tcp_opts_len(&seg->opt);
}

static uint8_t ttl_of(const struct jk_seg *seg) { return seg->ttl ? seg->ttl : 64; }

/* Writes the IP header; returns the pseudo-header sum for the TCP checksum. */
static uint32_t put_ip4(uint8_t *b, const struct jk_seg *seg, size_t tcp_len)
{
    put4(b, 0x45, 0, 0, 0);
    jk_wr16(b + 2, (uint16_t)(IP4_HDR + tcp_len));
    put4(b + 4, 0, 0, 0x40, 0); /* id 0 is fine with DF set (RFC 6864) */
    put4(b + 8, ttl_of(seg), JK_IPPROTO_TCP, 0, 0);
    memcpy(b + 12, seg->src.a, 4);
    memcpy(b + 16, seg->dst.a, 4);
    jk_wr16(b + 10, jk_csum_fold(jk_csum_add(0, b, IP4_HDR)));
    return jk_csum_add(0, b + 12, 8) + JK_IPPROTO_TCP + (uint32_t)tcp_len;
}

static uint32_t put_ip6(uint8_t *b, const struct jk_seg *seg, size_t tcp_len)
{
    put4(b, 0x60, 0, 0, 0);
    jk_wr16(b + 4, (uint16_t)tcp_len);
    b[6] = JK_IPPROTO_TCP;
    b[7] = ttl_of(seg);
    memcpy(b + 8, seg->src.a, 16);
    memcpy(b + 24, seg->dst.a, 16);
    return jk_csum_add(0, b + 8, 32) + JK_IPPROTO_TCP + (uint32_t)tcp_len;
}

static void put_tcp(uint8_t *t, const struct jk_seg *seg, size_t hl)
{
    jk_wr16(t, seg->sport);
    jk_wr16(t + 2, seg->dport);
    jk_wr32(t + 4, seg->seq);
    jk_wr32(t + 8, seg->ack);
    t[12] = (uint8_t)(hl / 4 << 4);
    t[13] = seg->flags;
    jk_wr16(t + 14, seg->wnd);
    jk_wr16(t + 16, 0);
    jk_wr16(t + 18, seg->urp);
    write_opts(t + TCP_HDR, &seg->opt);
}

/* Total iovec bytes, or SIZE_MAX when above any frame's payload limit. */
static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > JK_MAX_FRAME - n)
            return SIZE_MAX;
        n += iov[i].iov_len;
    }
    return n;
}

size_t jk_build_segment(uint8_t *buf, size_t cap, const struct jk_seg *seg,
                        const struct iovec *iov, int iovcnt)
{
    uint8_t fam = seg->src.family;
    if (fam != seg->dst.family || (fam != 4 && fam != 6) || iovcnt < 0)
        return 0;
    size_t plen = iov_total(iov, iovcnt), iph = ip_hdr_len(seg);
    if (plen == SIZE_MAX)
        return 0;
    size_t tcph = TCP_HDR + jk_tcp_opts_len(&seg->opt), tcp_len = tcph + plen;
    if (tcp_len > 65535 - (fam == 4 ? IP4_HDR : 0) || iph + tcp_len > cap)
        return 0;
    uint8_t *t = buf + iph, *p = t + tcph;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len)
            memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    uint32_t sum = fam == 4 ? put_ip4(buf, seg, tcp_len) : put_ip6(buf, seg, tcp_len);
    put_tcp(t, seg, tcph);
    /* Summing the contiguous copy avoids odd-length iovec seams. */
    jk_wr16(t + 16, jk_csum_fold(jk_csum_add(sum, t, tcp_len)));
    return iph + tcp_len;
}

/* ---------------------------------------------------------------- addresses */

int jk_addr_parse(const char *text, struct jk_addr *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!text)
        return -EINVAL;
    if (inet_pton(AF_INET, text, out->a) == 1) {
        out->family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->a) == 1) {
        out->family = 6;
        return 0;
    }
    memset(out, 0, sizeof *out);
    return -EINVAL;
}

bool jk_addr_eq(const struct jk_addr *x, const struct jk_addr *y)
{
    if (x->family != y->family)
        return false;
    return memcmp(x->a, y->a, x->family == 4 ? 4 : 16) == 0;
}

/* Can the address be one end of a unicast TCP connection? Not the
 * unspecified address, not multicast, not IPv4 broadcast, and not an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d travels as IPv4, so frames of
 * an adapter set up with one would never match). */
bool jk_addr_unicast(const struct jk_addr *x)
{
    static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (x->family == 4) {
        uint32_t v = (uint32_t)x->a[0] << 24 | (uint32_t)x->a[1] << 16 | (uint32_t)x->a[2] << 8 |
                     x->a[3];
        return v != 0 && (v >> 28) != 0xe && v != 0xffffffffu;
    }
    if (x->family != 6)
        return false;
    return memcmp(x->a, zero, 16) != 0 && x->a[0] != 0xff && memcmp(x->a, mapped, 12) != 0;
}
