/* SPDX-License-Identifier: MIT */
/* ICMP and ICMPv6 errors about TCP segments. See icmp.h. */
#include "icmp.h"

#include <errno.h>
#include <string.h>

#define ICMP_HDR 8 /* type, code, checksum, 4 bytes of rest (MTU, unused) */

/* Which reports are about a packet we sent, and what kind. */
static int kind_of(uint8_t family, uint8_t type, uint8_t code)
{
    if (family == 4) {
        switch (type) {
        case 3: return code == 4 ? JK_ICMP_TOO_BIG : JK_ICMP_UNREACH;
        case 11: return JK_ICMP_TIME_EXCEEDED;
        case 12: return JK_ICMP_PARAM;
        }
        return 0;
    }
    switch (type) {
    case 1: return JK_ICMP_UNREACH;
    case 2: return JK_ICMP_TOO_BIG;
    case 3: return JK_ICMP_TIME_EXCEEDED;
    case 4: return JK_ICMP_PARAM;
    }
    /* RFC 4443 §2.4(b): an error type we do not know still goes to the
     * transport (Linux: -EPROTO); 128 and up are informational */
    return type < 128 ? JK_ICMP_OTHER : 0;
}

/* The quoted packet: an IP header (not checked against its length, the
 * quote is cut) and at least 8 bytes of TCP header (ports, sequence). */
static enum jk_parse parse_quote(const uint8_t *q, size_t len, struct jk_icmp *ic)
{
    size_t hl;
    uint8_t proto;
    if (len < 1 || (q[0] >> 4) != ic->family)
        return JK_PARSE_OTHER_PROTO;
    if (ic->family == 4) {
        if (len < 20)
            return JK_PARSE_SHORT;
        hl = (size_t)(q[0] & 0x0f) * 4;
        proto = q[9];
        ic->inner_len = jk_rd16(q + 2);
        memcpy(ic->isrc.a, q + 12, 4);
        memcpy(ic->idst.a, q + 16, 4);
    } else {
        if (len < 40)
            return JK_PARSE_SHORT;
        hl = 40; /* a TCP segment of ours carries no extension header */
        proto = q[6];
        ic->inner_len = 40u + jk_rd16(q + 4);
        memcpy(ic->isrc.a, q + 8, 16);
        memcpy(ic->idst.a, q + 24, 16);
    }
    ic->isrc.family = ic->idst.family = ic->family;
    if (proto != JK_IPPROTO_TCP || hl < 20)
        return JK_PARSE_OTHER_PROTO;
    if (len < hl + 8) /* RFC 792: the first 64 bits of the datagram */
        return JK_PARSE_SHORT;
    ic->sport = jk_rd16(q + hl);
    ic->dport = jk_rd16(q + hl + 2);
    ic->seq = jk_rd32(q + hl + 4);
    return JK_PARSE_ICMP;
}

enum jk_parse jk_parse_icmp(const uint8_t *frame, size_t len, struct jk_icmp *ic)
{
    struct jk_ip ip;
    enum jk_parse r = jk_parse_ip(frame, len, &ip);
    if (r != JK_PARSE_TCP)
        return r;
    memset(ic, 0, sizeof *ic);
    ic->family = ip.family;
    ic->src = ip.src;
    ic->dst = ip.dst;
    if (ip.len < ICMP_HDR)
        return JK_PARSE_SHORT;
    uint32_t sum = ip.family == 4 ? 0 : ip.addr_sum + JK_IPPROTO_ICMPV6 + (uint32_t)ip.len;
    if (jk_csum_fold(jk_csum_add(sum, ip.l4, ip.len)) != 0)
        return JK_PARSE_CHECKSUM;
    ic->type = ip.l4[0];
    ic->code = ip.l4[1];
    ic->kind = kind_of(ip.family, ic->type, ic->code);
    if (!ic->kind)
        return JK_PARSE_OTHER_PROTO;
    if (ic->kind == JK_ICMP_TOO_BIG)
        ic->mtu = ip.family == 4 ? jk_rd16(ip.l4 + 6) : jk_rd32(ip.l4 + 4);
    return parse_quote(ip.l4 + ICMP_HDR, ip.len - ICMP_HDR, ic);
}

static int unreach4(uint8_t code)
{
    static const int e[16] = {ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT, ECONNREFUSED,
                              EMSGSIZE,    EOPNOTSUPP,   ENETUNREACH, EHOSTDOWN,
                              ENONET,      ENETUNREACH,  EHOSTUNREACH, ENETUNREACH,
                              EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH};
    return code < 16 ? -e[code] : -EHOSTUNREACH;
}

static int unreach6(uint8_t code)
{
    static const int e[7] = {ENETUNREACH, EACCES, EHOSTUNREACH, EHOSTUNREACH,
                             ECONNREFUSED, EACCES, EACCES};
    return code < 7 ? -e[code] : -EHOSTUNREACH;
}

int jk_icmp_errno(const struct jk_icmp *ic)
{
    switch (ic->kind) {
    case JK_ICMP_UNREACH: return ic->family == 4 ? unreach4(ic->code) : unreach6(ic->code);
    case JK_ICMP_TOO_BIG: return -EMSGSIZE;
    case JK_ICMP_TIME_EXCEEDED: return -EHOSTUNREACH;
    default: return -EPROTO;
    }
}

static void put_ip(uint8_t *b, const struct jk_addr *src, const struct jk_addr *dst, size_t plen)
{
    if (src->family == 4) {
        memset(b, 0, 20);
        b[0] = 0x45;
        jk_wr16(b + 2, (uint16_t)(20 + plen));
        b[8] = 64;
        b[9] = JK_IPPROTO_ICMP;
        memcpy(b + 12, src->a, 4);
        memcpy(b + 16, dst->a, 4);
        jk_wr16(b + 10, jk_csum_fold(jk_csum_add(0, b, 20)));
    } else {
        memset(b, 0, 40);
        b[0] = 0x60;
        jk_wr16(b + 4, (uint16_t)plen);
        b[6] = JK_IPPROTO_ICMPV6;
        b[7] = 64;
        memcpy(b + 8, src->a, 16);
        memcpy(b + 24, dst->a, 16);
    }
}

size_t jk_build_icmp(uint8_t *buf, size_t cap, const struct jk_addr *src,
                     const struct jk_addr *dst, uint8_t type, uint8_t code, uint32_t mtu,
                     const uint8_t *frame, size_t len)
{
    bool v4 = src->family == 4;
    size_t iph = v4 ? 20 : 40, max = v4 ? 576 : 1280;
    if (src->family != dst->family || (src->family != 4 && src->family != 6))
        return 0;
    if (len > max - iph - ICMP_HDR)
        len = max - iph - ICMP_HDR;
    size_t plen = ICMP_HDR + len;
    if (iph + plen > cap)
        return 0;
    uint8_t *m = buf + iph;
    memset(m, 0, ICMP_HDR);
    m[0] = type;
    m[1] = code;
    if (v4)
        jk_wr16(m + 6, (uint16_t)mtu);
    else
        for (int i = 0; i < 4; i++)
            m[4 + i] = (uint8_t)(mtu >> (24 - 8 * i));
    memcpy(m + ICMP_HDR, frame, len);
    put_ip(buf, src, dst, plen);
    uint32_t sum = 0;
    if (!v4)
        sum = jk_csum_add(0, buf + 8, 32) + JK_IPPROTO_ICMPV6 + (uint32_t)plen;
    jk_wr16(m + 2, jk_csum_fold(jk_csum_add(sum, m, plen)));
    return iph + plen;
}
