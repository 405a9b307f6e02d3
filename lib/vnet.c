/* SPDX-License-Identifier: MIT */
/* Virtio-net header, GSO split and coalescing for the TUN offload
 * transport. See vnet.h. */
#include "vnet.h"

#include "packet.h"

#include <string.h>

#define IP4_HDR 20u
#define IP6_HDR 40u
#define TCP_HDR 20u
#define TCP_SEQ 4u
#define TCP_FLAGS 13u
#define TCP_CSUM 16u
#define IP4_DF 0x4000u

void jk_vnet_hdr_get(struct jk_vnet_hdr *h, const uint8_t *p)
{
    h->flags = p[0];
    h->gso_type = p[1];
    memcpy(&h->hdr_len, p + 2, 2);
    memcpy(&h->gso_size, p + 4, 2);
    memcpy(&h->csum_start, p + 6, 2);
    memcpy(&h->csum_offset, p + 8, 2);
}

void jk_vnet_hdr_put(uint8_t *p, const struct jk_vnet_hdr *h)
{
    p[0] = h->flags;
    p[1] = h->gso_type;
    memcpy(p + 2, &h->hdr_len, 2);
    memcpy(p + 4, &h->gso_size, 2);
    memcpy(p + 6, &h->csum_start, 2);
    memcpy(p + 8, &h->csum_offset, 2);
}

static uint32_t addr_sum(const uint8_t *ip, int family)
{
    return family == 4 ? jk_csum_add(0, ip + 12, 8) : jk_csum_add(0, ip + 8, 32);
}

/* The TCP checksum of the tcp_len bytes at t, stored. */
static void tcp_csum(uint8_t *t, size_t tcp_len, uint32_t addrs)
{
    jk_wr16(t + TCP_CSUM, 0);
    uint32_t pseudo = addrs + JK_IPPROTO_TCP + (uint32_t)tcp_len;
    jk_wr16(t + TCP_CSUM, jk_csum_fold(jk_csum_add(pseudo, t, tcp_len)));
}

static void ip4_csum(uint8_t *ip, size_t ihl)
{
    jk_wr16(ip + 10, 0);
    jk_wr16(ip + 10, jk_csum_fold(jk_csum_add(0, ip, ihl)));
}

/* ---- receive: complete, split ------------------------------------------ */

/* The one frame, as it is. */
static int pass_whole(struct jk_vnet_split *s, int ret)
{
    s->n = 1;
    s->gso = 0;
    s->csum_ours = false;
    return ret;
}

/* NEEDS_CSUM without GSO: sum from csum_start to the end, the field
 * (holding the pseudo-header sum) included, and store the result. */
static int complete_csum(struct jk_vnet_split *s, const struct jk_vnet_hdr *h)
{
    size_t at = (size_t)h->csum_start + h->csum_offset;
    if (h->csum_start >= s->len || at + 2 > s->len)
        return pass_whole(s, 0);
    uint8_t *p = s->pkt + h->csum_start;
    jk_wr16(s->pkt + at, jk_csum_fold(jk_csum_add(0, p, s->len - h->csum_start)));
    return pass_whole(s, 1);
}

/* The IP header of a GSO packet: family, where TCP starts, the length the
 * IP header gives (trailing bytes dropped). False if it does not fit. */
static bool gso_ip(struct jk_vnet_split *s, const struct jk_vnet_hdr *h, int family)
{
    uint8_t *p = s->pkt;
    if (s->len < IP4_HDR || p[0] >> 4 != family)
        return false;
    size_t total, l4;
    if (family == 4) {
        l4 = (size_t)(p[0] & 15) * 4;
        total = jk_rd16(p + 2);
        if (l4 < IP4_HDR || p[9] != JK_IPPROTO_TCP || (jk_rd16(p + 6) & 0x3fff))
            return false;
        s->id = jk_rd16(p + 4);
        s->fixed_id = s->id == 0 && (jk_rd16(p + 6) & IP4_DF);
    } else {
        if (s->len < IP6_HDR)
            return false;
        total = IP6_HDR + jk_rd16(p + 4);
        /* past extension headers the kernel says where TCP is */
        l4 = p[6] == JK_IPPROTO_TCP ? IP6_HDR : h->csum_start;
        if (l4 < IP6_HDR || ((h->flags & JK_VNET_F_NEEDS_CSUM) && h->csum_start != l4))
            return false;
    }
    if (total < l4 || total > s->len || l4 > JK_VNET_MAX_L4)
        return false;
    s->len = total;
    s->l4 = (uint16_t)l4;
    s->family = (uint8_t)family;
    return true;
}

int jk_vnet_split_begin(struct jk_vnet_split *s, uint8_t *pkt, size_t len,
                        const struct jk_vnet_hdr *h)
{
    s->pkt = pkt;
    s->len = len;
    s->i = 0;
    unsigned type = h->gso_type & ~JK_VNET_GSO_ECN;
    if (type == JK_VNET_GSO_NONE)
        return h->flags & JK_VNET_F_NEEDS_CSUM ? complete_csum(s, h) : pass_whole(s, 1);
    if ((type != JK_VNET_GSO_TCPV4 && type != JK_VNET_GSO_TCPV6) || h->gso_size == 0 ||
        !gso_ip(s, h, type == JK_VNET_GSO_TCPV4 ? 4 : 6))
        return pass_whole(s, 0);
    const uint8_t *t = pkt + s->l4;
    if (s->len - s->l4 < TCP_HDR)
        return pass_whole(s, 0);
    size_t thl = (size_t)(t[12] >> 4) * 4;
    if (thl < TCP_HDR || thl > s->len - s->l4)
        return pass_whole(s, 0);
    s->hl = (uint16_t)(s->l4 + thl);
    s->gso = h->gso_size;
    size_t payload = s->len - s->hl;
    s->n = payload == 0 ? 1 : (uint32_t)((payload + s->gso - 1) / s->gso);
    s->seq = jk_rd32(t + TCP_SEQ);
    s->tflags = t[TCP_FLAGS];
    s->addr_sum = addr_sum(pkt, s->family);
    /* split_next sums every frame it makes, from where TCP starts; the
     * parser agrees on where that is unless IPv6 extension headers come
     * first (the kernel's csum_start is trusted for those): then the
     * parser checks the sum, as for any frame */
    s->csum_ours = s->family == 4 || pkt[6] == JK_IPPROTO_TCP;
    memcpy(s->hdrs, pkt, s->hl);
    return (int)s->n;
}

bool jk_vnet_split_next(struct jk_vnet_split *s, const uint8_t **frame, size_t *len)
{
    if (s->i >= s->n)
        return false;
    uint32_t i = s->i++;
    if (s->gso == 0) {
        *frame = s->pkt;
        *len = s->len;
        return true;
    }
    /* Frame i's headers go right in front of its payload, over bytes of
     * frame i - 1, which the caller is done with. */
    size_t at = s->hl + (size_t)i * s->gso, rest = s->len - at;
    size_t plen = rest < s->gso ? rest : s->gso, total = s->hl + plen;
    uint8_t *f = s->pkt + at - s->hl, *t = f + s->l4;
    memcpy(f, s->hdrs, s->hl);
    if (s->family == 4) {
        jk_wr16(f + 2, (uint16_t)total);
        if (!s->fixed_id)
            jk_wr16(f + 4, (uint16_t)(s->id + i));
        ip4_csum(f, s->l4);
    } else {
        jk_wr16(f + 4, (uint16_t)(total - IP6_HDR));
    }
    jk_wr32(t + TCP_SEQ, s->seq + i * (uint32_t)s->gso);
    uint8_t fl = s->tflags;
    if (i > 0)
        fl &= (uint8_t)~JK_CWR;
    if (i + 1 < s->n)
        fl &= (uint8_t)~(JK_FIN | JK_PSH);
    t[TCP_FLAGS] = fl;
    tcp_csum(t, total - s->l4, s->addr_sum);
    *frame = f;
    *len = total;
    return true;
}

/* ---- send: coalesce ----------------------------------------------------- */

/* Where TCP starts in a frame that can be part of a super-segment, 0 if it
 * cannot: IPv4 without options, not a fragment / IPv6 straight to TCP;
 * the IP length is the frame's; a TCP header and a payload. */
static size_t tcp_at(const uint8_t *f, size_t len, size_t *hl)
{
    size_t l4;
    if (len >= IP4_HDR && f[0] == 0x45) {
        if (f[9] != JK_IPPROTO_TCP || (jk_rd16(f + 6) & 0x3fff) || jk_rd16(f + 2) != len)
            return 0;
        l4 = IP4_HDR;
    } else if (len >= IP6_HDR && f[0] >> 4 == 6) {
        if (f[6] != JK_IPPROTO_TCP || IP6_HDR + jk_rd16(f + 4) != len)
            return 0;
        l4 = IP6_HDR;
    } else {
        return 0;
    }
    if (len - l4 < TCP_HDR)
        return 0;
    size_t thl = (size_t)(f[l4 + 12] >> 4) * 4;
    if (thl < TCP_HDR || thl >= len - l4)
        return 0;
    *hl = l4 + thl;
    return l4;
}

/* The same bytes in the held frame and f (of the same header layout) at
 * [a, b). */
static bool same(const struct jk_vnet_coalesce *c, const uint8_t *f, size_t a, size_t b)
{
    return memcmp(c->buf + JK_VNET_HDR_LEN + a, f + a, b - a) == 0;
}

/* f continues the held run: every header byte equal but the lengths, the
 * IPv4 id and checksums, the sequence number and PSH. */
static bool continues(const struct jk_vnet_coalesce *c, const uint8_t *f, size_t l4, size_t hl)
{
    if (l4 != c->l4 || hl != c->hl || jk_rd32(f + l4 + TCP_SEQ) != c->next_seq)
        return false;
    const uint8_t *h = c->buf + JK_VNET_HDR_LEN;
    if ((h[l4 + TCP_FLAGS] & ~JK_PSH) != (f[l4 + TCP_FLAGS] & ~JK_PSH))
        return false;
    bool ip = l4 == IP4_HDR ? same(c, f, 0, 2) && same(c, f, 6, 10) && same(c, f, 12, 20)
                            : same(c, f, 0, 4) && same(c, f, 6, 40);
    return ip && same(c, f, l4, l4 + TCP_SEQ) && same(c, f, l4 + 8, l4 + TCP_FLAGS) &&
           same(c, f, l4 + 14, l4 + TCP_CSUM) && same(c, f, l4 + 18, hl);
}

bool jk_vnet_coalesce_add(struct jk_vnet_coalesce *c, const uint8_t *frame, size_t len)
{
    size_t hl, l4 = tcp_at(frame, len, &hl);
    if (l4 == 0)
        return false;
    uint8_t fl = frame[l4 + TCP_FLAGS];
    size_t plen = len - hl;
    bool psh = (fl & JK_PSH) != 0;
    if (c->len == 0) {
        /* a lone pushed segment gains nothing from a copy */
        if ((fl & ~JK_PSH) != JK_ACK || psh)
            return false;
        memcpy(c->buf + JK_VNET_HDR_LEN, frame, len);
        c->len = len;
        c->l4 = (uint16_t)l4;
        c->hl = (uint16_t)hl;
        c->gso = (uint16_t)plen;
        c->next_seq = jk_rd32(frame + l4 + TCP_SEQ) + (uint32_t)plen;
        c->nseg = 1;
        c->closed = false;
        c->psh = false;
        return true;
    }
    if (c->closed || plen > c->gso || c->len + plen > JK_VNET_MAX_SUPER ||
        !continues(c, frame, l4, hl))
        return false;
    memcpy(c->buf + JK_VNET_HDR_LEN + c->len, frame + hl, plen);
    c->len += plen;
    c->next_seq += (uint32_t)plen;
    c->nseg++;
    c->psh = psh;
    c->closed = psh || plen < c->gso;
    return true;
}

size_t jk_vnet_coalesce_finish(struct jk_vnet_coalesce *c)
{
    if (c->len == 0)
        return 0;
    struct jk_vnet_hdr h = {0};
    uint8_t *f = c->buf + JK_VNET_HDR_LEN;
    if (c->nseg > 1) {
        int family = c->l4 == IP4_HDR ? 4 : 6;
        if (family == 4) {
            jk_wr16(f + 2, (uint16_t)c->len);
            ip4_csum(f, IP4_HDR);
        } else {
            jk_wr16(f + 4, (uint16_t)(c->len - IP6_HDR));
        }
        uint8_t *t = f + c->l4;
        if (c->psh)
            t[TCP_FLAGS] |= JK_PSH;
        /* the kernel completes the sum from csum_start over what it finds
         * in the field: the pseudo-header's (for the whole length) */
        uint32_t pseudo = addr_sum(f, family) + JK_IPPROTO_TCP + (uint32_t)(c->len - c->l4);
        jk_wr16(t + TCP_CSUM, (uint16_t)~jk_csum_fold(pseudo));
        h = (struct jk_vnet_hdr){
            .flags = JK_VNET_F_NEEDS_CSUM,
            .gso_type = family == 4 ? JK_VNET_GSO_TCPV4 : JK_VNET_GSO_TCPV6,
            .hdr_len = c->hl,
            .gso_size = c->gso,
            .csum_start = c->l4,
            .csum_offset = TCP_CSUM,
        };
    }
    jk_vnet_hdr_put(c->buf, &h);
    size_t n = JK_VNET_HDR_LEN + c->len;
    c->len = 0;
    return n;
}
