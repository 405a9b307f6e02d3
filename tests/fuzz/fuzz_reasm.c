/* SPDX-License-Identifier: MIT */
/* libFuzzer target: IP reassembly (lib/reasm.c).
 * The input is a sequence of records: one byte of clock advance (its top
 * five bits in seconds, so timeouts come into play), two bytes of length,
 * then that many bytes of frame. Each frame gets its IPv4 header checksum
 * fixed (so mutations get past it), is parsed with jk_parse_ip, and goes to
 * jk_reasm_add if it is a fragment. Invariants: a finished datagram parses
 * as IP, is no longer than the largest datagram and says "not fragmented"
 * in IPv4; a piece lies inside its frame; the completed count moves with
 * each finished datagram; no buffer outlives the timeouts, and every one is
 * given back (LeakSanitizer). */
#include "fuzz_common.h"

#include "reasm.h"

static void fix_ip4_checksum(uint8_t *f, size_t n)
{
    if (n < 20 || f[0] >> 4 != 4)
        return;
    size_t ihl = (size_t)(f[0] & 15) * 4;
    if (ihl < 20 || ihl > n)
        return;
    f[10] = f[11] = 0;
    uint16_t c = jk_csum_fold(jk_csum_add(0, f, ihl));
    f[10] = (uint8_t)(c >> 8);
    f[11] = (uint8_t)c;
}

/* IPv4: the header is the first piece's, which parsed, with the lengths
 * made consistent, so the packet parses. IPv6: the header's payload length
 * says the packet's length; what follows the unfragmentable part is the
 * sender's (extension headers included), so any verdict on it is allowed
 * but a version or IPv6 length error. */
static void check_done(const uint8_t *out, size_t n)
{
    FZ_CHECK(n >= 20 && n <= JK_REASM_MAX_HDR + JK_REASM_MAX_PAYLOAD, "length %zu", n);
    struct jk_ip ip;
    enum jk_parse r = jk_parse_ip(out, n, &ip);
    if ((out[0] >> 4) == 4) {
        FZ_CHECK(r == JK_PARSE_TCP, "a finished IPv4 datagram parses as %d", r);
        FZ_CHECK((out[6] & 0x3f) == 0 && out[7] == 0, "IPv4 still fragmented");
        FZ_CHECK(((size_t)out[2] << 8 | out[3]) == n, "IPv4 total length");
        return;
    }
    FZ_CHECK((out[0] >> 4) == 6 && n >= 40, "version %u", out[0] >> 4);
    FZ_CHECK(40 + ((size_t)out[4] << 8 | out[5]) == n, "IPv6 payload length");
    FZ_CHECK(r != JK_PARSE_VERSION, "a finished datagram parses as %d", r);
}

/* Buffers still taken by datagrams in progress. */
static int held(const struct jk_reasm *r)
{
    int n = 0;
    for (int i = 0; i < JK_REASM_SLOTS; i++)
        n += r->slot[i].buf != NULL;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct jk_reasm r;
    memset(&r, 0, sizeof r);
    uint64_t now = 0;
    while (in.n) {
        now += (uint64_t)(fz_u8(&in) >> 3) * 1000000;
        size_t len = fz_u16(&in);
        if (len > in.n)
            len = in.n;
        uint8_t *f = malloc(len ? len : 1); /* exact size: ASan sees any over-read */
        FZ_CHECK(f != NULL, "oom");
        memcpy(f, in.p, len);
        in.p += len;
        in.n -= len;
        fix_ip4_checksum(f, len);
        struct jk_ip ip;
        if (jk_parse_ip(f, len, &ip) == JK_PARSE_FRAGMENT) {
            FZ_CHECK(ip.frag.data + ip.frag.len <= f + len, "piece outside the frame");
            FZ_CHECK(ip.frag.hdr_len <= (size_t)(ip.frag.data - f), "header past the piece");
            const uint8_t *out;
            size_t n;
            uint64_t done = r.completed;
            enum jk_reasm_result res = jk_reasm_add(&r, f, &ip, now, &out, &n);
            FZ_CHECK(res == JK_REASM_KEPT || res == JK_REASM_DONE || res == JK_REASM_DROP,
                     "result %d", res);
            FZ_CHECK((res == JK_REASM_DONE) == (r.completed == done + 1), "completed count");
            if (res == JK_REASM_DONE)
                check_done(out, n);
        }
        free(f);
    }
    jk_reasm_expire(&r, now + JK_REASM_TIMEOUT6_US);
    FZ_CHECK(held(&r) == 0, "a buffer outlived every timeout");
    jk_reasm_free(&r);
    return 0;
}
