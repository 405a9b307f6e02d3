/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the TUN offload transport's packet work (lib/vnet.c).
 * Input: a virtio-net header (10 bytes) and the packet behind it, as a TUN
 * device opened with IFF_VNET_HDR hands them over. Invariants: splitting
 * never reads or writes outside the packet; every frame a GSO split gives
 * parses as TCP (valid checksums) with a payload no larger than gso_size;
 * the valid frames offered back to the coalescer and written out as
 * super-segments split again into frames that parse too (the round trip). */
#include "fuzz_common.h"

#include "vnet.h"

static uint8_t pkt[JK_VNET_MAX_SUPER + 64];
static uint8_t out[JK_VNET_HDR_LEN + JK_VNET_MAX_SUPER];
static uint8_t again[JK_VNET_MAX_SUPER + 64];

/* Split what the coalescer wrote; every frame must parse as TCP. */
static void resplit(size_t n)
{
    struct jk_vnet_hdr h;
    jk_vnet_hdr_get(&h, out);
    FZ_CHECK(n > JK_VNET_HDR_LEN && n - JK_VNET_HDR_LEN <= JK_VNET_MAX_SUPER, "wrote %zu", n);
    memcpy(again, out + JK_VNET_HDR_LEN, n - JK_VNET_HDR_LEN);
    struct jk_vnet_split s;
    int k = jk_vnet_split_begin(&s, again, n - JK_VNET_HDR_LEN, &h);
    FZ_CHECK(k >= 1, "a written super-segment does not split (%d)", k);
    const uint8_t *f;
    size_t len;
    while (jk_vnet_split_next(&s, &f, &len)) {
        struct jk_seg seg;
        FZ_CHECK(jk_parse_frame(f, len, &seg) == JK_PARSE_TCP, "round-trip frame of %zu", len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < JK_VNET_HDR_LEN || size - JK_VNET_HDR_LEN > JK_VNET_MAX_SUPER)
        return 0;
    struct jk_vnet_hdr h;
    jk_vnet_hdr_get(&h, data);
    size_t len = size - JK_VNET_HDR_LEN;
    memcpy(pkt, data + JK_VNET_HDR_LEN, len);
    struct jk_vnet_split s;
    int n = jk_vnet_split_begin(&s, pkt, len, &h);
    if (n <= 0)
        return 0; /* passed on unchanged: the parser judges it (fuzz_parse) */
    /* a plain packet (no GSO) keeps the kernel's IP header as it came */
    uint8_t t = h.gso_type & (uint8_t)~JK_VNET_GSO_ECN;
    bool gso = t == JK_VNET_GSO_TCPV4 || t == JK_VNET_GSO_TCPV6;
    /* IPv4 options and IPv6 extension headers are copied as they came
     * (for IPv6 the kernel's csum_start says where TCP starts): the
     * parser judges those */
    if ((len >= 40 && (pkt[0] >> 4) == 6 && pkt[6] != 6) || (len && pkt[0] != 0x45 && (pkt[0] >> 4) == 4))
        gso = false;
    struct jk_vnet_coalesce c = {.buf = out};
    const uint8_t *f;
    size_t flen;
    int got = 0;
    while (jk_vnet_split_next(&s, &f, &flen)) {
        FZ_CHECK(f >= pkt && f + flen <= pkt + len, "frame outside the packet");
        struct jk_seg seg;
        enum jk_parse r = jk_parse_frame(f, flen, &seg);
        if (gso) { /* every header field and checksum of these frames is the split's work */
            FZ_CHECK(r == JK_PARSE_TCP, "frame %d of %d (%zu bytes): %d", got, n, flen, (int)r);
            FZ_CHECK(seg.len <= h.gso_size, "payload %u over gso_size %u", seg.len, h.gso_size);
        }
        got++;
        if (r != JK_PARSE_TCP) /* the coalescer only ever sees jktcp's own, valid frames */
            continue;
        if (!jk_vnet_coalesce_add(&c, f, flen)) {
            size_t w = jk_vnet_coalesce_finish(&c);
            if (w)
                resplit(w);
            if (!jk_vnet_coalesce_add(&c, f, flen)) /* goes out alone */
                continue;
        }
    }
    FZ_CHECK(got == n, "split promised %d frames, gave %d", n, got);
    size_t w = jk_vnet_coalesce_finish(&c);
    if (w)
        resplit(w);
    return 0;
}
