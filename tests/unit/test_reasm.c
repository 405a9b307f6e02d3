/* SPDX-License-Identifier: MIT */
/* IP reassembly (lib/reasm.c): datagrams cut into pieces come back whole,
 * in any order; overlaps, repeats, malformed pieces, timeouts and too many
 * datagrams at once are handled within fixed bounds. Pure: frames built
 * here, no adapter. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "reasm.h"

#define PAYLOAD 3000

static uint8_t data[PAYLOAD];

/* One whole TCP segment carrying `len` bytes of data[]. */
static size_t whole(uint8_t *b, size_t cap, int fam, uint32_t len)
{
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    jk_addr_parse(fam == 4 ? "198.18.0.2" : "fd00::2", &s.src);
    jk_addr_parse(fam == 4 ? "198.18.0.1" : "fd00::1", &s.dst);
    s.sport = 5000;
    s.dport = 80;
    s.seq = 1;
    s.ack = 1;
    s.flags = JK_ACK | JK_PSH;
    s.wnd = 1000;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    struct iovec iov = {data, len};
    return jk_build_segment(b, cap, &s, &iov, 1);
}

static void wr16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Piece [off, off+len) of the upper layer of whole packet w (IPv4: 20-byte
 * header; IPv6: 40 bytes then a fragment header), id `id`. */
static size_t piece(uint8_t *out, const uint8_t *w, int fam, uint32_t off, uint32_t len, bool more,
                    uint32_t id)
{
    if (fam == 4) {
        memcpy(out, w, 20);
        memcpy(out + 20, w + 20 + off, len);
        wr16(out + 2, 20 + len);
        wr16(out + 4, id);
        wr16(out + 6, (more ? 0x2000 : 0) | off / 8);
        out[10] = out[11] = 0;
        uint16_t c = jk_csum_fold(jk_csum_add(0, out, 20));
        wr16(out + 10, c);
        return 20 + len;
    }
    memcpy(out, w, 40);
    out[6] = 44;
    uint8_t *fh = out + 40;
    fh[0] = w[6];
    fh[1] = 0;
    wr16(fh + 2, off | (more ? 1 : 0));
    fh[4] = (uint8_t)(id >> 24);
    fh[5] = (uint8_t)(id >> 16);
    fh[6] = (uint8_t)(id >> 8);
    fh[7] = (uint8_t)id;
    memcpy(out + 48, w + 40 + off, len);
    wr16(out + 4, 8 + len);
    return 48 + len;
}

struct rig {
    struct jk_reasm r;
    uint8_t w[70000]; /* the whole packet, then zeros (pieces past its end) */
    size_t wn;
    int fam;
    const uint8_t *out;
    size_t out_len;
};

static int add(struct rig *g, uint32_t off, uint32_t len, bool more, uint32_t id, uint64_t now)
{
    uint8_t f[4096];
    size_t n = piece(f, g->w, g->fam, off, len, more, id);
    struct jk_ip ip;
    cr_assert_eq(jk_parse_ip(f, n, &ip), JK_PARSE_FRAGMENT);
    return jk_reasm_add(&g->r, f, &ip, now, &g->out, &g->out_len);
}

static void setup(struct rig *g, int fam)
{
    memset(g, 0, sizeof *g);
    g->fam = fam;
    g->wn = whole(g->w, sizeof g->w, fam, 2000);
}

/* The datagram came back byte for byte as the unfragmented packet parses. */
static void check_whole(struct rig *g)
{
    struct jk_seg s;
    cr_assert_eq(jk_parse_frame(g->out, g->out_len, &s), JK_PARSE_TCP);
    cr_assert_eq(s.len, 2000);
    cr_assert_eq(memcmp(s.payload, data, 2000), 0);
    cr_assert_eq(s.sport, 5000);
    cr_assert_eq(g->out_len, g->wn);
}

static const int fams[] = {4, 6};

Test(reasm, in_order)
{
    for (int k = 0; k < 2; k++) {
        struct rig g;
        setup(&g, fams[k]);
        uint32_t l4 = (uint32_t)g.wn - (fams[k] == 4 ? 20 : 40);
        cr_assert_eq(add(&g, 0, 1000, true, 7, 0), JK_REASM_KEPT);
        cr_assert_eq(add(&g, 1000, 1000, true, 7, 0), JK_REASM_KEPT);
        cr_assert_eq(add(&g, 2000, l4 - 2000, false, 7, 0), JK_REASM_DONE);
        check_whole(&g);
        cr_assert_eq(g.r.completed, 1);
        cr_assert_eq(g.r.dropped, 0);
        jk_reasm_free(&g.r);
    }
}

Test(reasm, any_order)
{
    static const int orders[][3] = {{2, 1, 0}, {1, 2, 0}, {0, 2, 1}, {2, 0, 1}, {1, 0, 2}};
    for (int k = 0; k < 2; k++)
        for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
            struct rig g;
            setup(&g, fams[k]);
            uint32_t l4 = (uint32_t)g.wn - (fams[k] == 4 ? 20 : 40);
            uint32_t off[3] = {0, 800, 1600}, len[3] = {800, 800, l4 - 1600};
            int r = 0;
            for (int i = 0; i < 3; i++) {
                int p = orders[o][i];
                r = add(&g, off[p], len[p], p != 2, 9, 0);
                cr_assert_eq(r, i == 2 ? JK_REASM_DONE : JK_REASM_KEPT, "order %zu step %d", o, i);
            }
            check_whole(&g);
            jk_reasm_free(&g.r);
        }
}

/* A repeat of a piece (the network duplicated it) is ignored; the
 * datagram still completes. */
Test(reasm, repeat_ignored)
{
    for (int k = 0; k < 2; k++) {
        struct rig g;
        setup(&g, fams[k]);
        uint32_t l4 = (uint32_t)g.wn - (fams[k] == 4 ? 20 : 40);
        add(&g, 0, 1000, true, 1, 0);
        add(&g, 1000, 1000, true, 1, 0);
        cr_assert_eq(add(&g, 1000, 1000, true, 1, 0), JK_REASM_KEPT);
        cr_assert_eq(add(&g, 0, 1000, true, 1, 0), JK_REASM_KEPT);
        cr_assert_eq(g.r.dropped, 2);
        cr_assert_eq(add(&g, 2000, l4 - 2000, false, 1, 0), JK_REASM_DONE);
        check_whole(&g);
        jk_reasm_free(&g.r);
    }
}

/* RFC 5722: a piece that overlaps part of one held drops the datagram;
 * what comes after starts a new one, which cannot complete from the rest. */
Test(reasm, overlap_drops_datagram)
{
    for (int k = 0; k < 2; k++) {
        struct rig g;
        setup(&g, fams[k]);
        uint32_t l4 = (uint32_t)g.wn - (fams[k] == 4 ? 20 : 40);
        add(&g, 0, 1000, true, 1, 0);
        cr_assert_eq(add(&g, 800, 1200, true, 1, 0), JK_REASM_DROP);
        cr_assert_eq(add(&g, 2000, l4 - 2000, false, 1, 0), JK_REASM_KEPT);
        cr_assert_eq(add(&g, 1000, 1000, true, 1, 0), JK_REASM_KEPT, "the first piece is gone");
        cr_assert_eq(g.r.completed, 0);
        jk_reasm_free(&g.r);
    }
}

/* Malformed pieces: a middle piece not a multiple of 8, an empty middle
 * piece, a datagram beyond 65,535 bytes, a last piece that moves the end,
 * a piece beyond the end. */
Test(reasm, malformed)
{
    for (int k = 0; k < 2; k++) {
        struct rig g;
        setup(&g, fams[k]);
        cr_assert_eq(add(&g, 0, 1001, true, 1, 0), JK_REASM_DROP);
        cr_assert_eq(add(&g, 0, 0, true, 1, 0), JK_REASM_DROP);
        cr_assert_eq(add(&g, 65528, 16, true, 1, 0), JK_REASM_DROP);
        add(&g, 1000, 100, false, 2, 0);
        cr_assert_eq(add(&g, 1200, 8, false, 2, 0), JK_REASM_DROP, "a second end");
        add(&g, 1000, 100, false, 3, 0);
        cr_assert_eq(add(&g, 1200, 8, true, 3, 0), JK_REASM_DROP, "beyond the end");
        cr_assert_eq(g.r.completed, 0);
        jk_reasm_free(&g.r);
    }
}

/* The pieces of different datagrams (other id) do not mix. */
Test(reasm, ids_apart)
{
    for (int k = 0; k < 2; k++) {
        struct rig g;
        setup(&g, fams[k]);
        uint32_t l4 = (uint32_t)g.wn - (fams[k] == 4 ? 20 : 40);
        add(&g, 0, 1000, true, 1, 0);
        add(&g, 1000, l4 - 1000, false, 2, 0);
        cr_assert_eq(add(&g, 0, 1000, true, 2, 0), JK_REASM_DONE);
        check_whole(&g);
        cr_assert_eq(add(&g, 1000, l4 - 1000, false, 1, 0), JK_REASM_DONE);
        check_whole(&g);
        jk_reasm_free(&g.r);
    }
}

/* A datagram not complete within the timeout (IPv4 30 s, IPv6 60 s) is
 * dropped with its pieces; the late rest then cannot complete it. */
Test(reasm, timeout)
{
    for (int k = 0; k < 2; k++) {
        struct rig g;
        setup(&g, fams[k]);
        uint32_t l4 = (uint32_t)g.wn - (fams[k] == 4 ? 20 : 40);
        uint64_t t = fams[k] == 4 ? JK_REASM_TIMEOUT4_US : JK_REASM_TIMEOUT6_US;
        add(&g, 0, 1000, true, 1, 0);
        add(&g, 1000, 1000, true, 1, t - 1);
        cr_assert_eq(add(&g, 2000, l4 - 2000, false, 1, t - 1), JK_REASM_DONE, "just in time");
        add(&g, 0, 1000, true, 2, t);
        jk_reasm_expire(&g.r, 2 * t);
        cr_assert_eq(g.r.dropped, 1);
        cr_assert_null(g.r.slot[0].buf, "memory given back");
        cr_assert_null(g.r.slot[1].buf);
        cr_assert_eq(add(&g, 1000, l4 - 1000, false, 2, 2 * t), JK_REASM_KEPT);
        jk_reasm_free(&g.r);
    }
}

/* More datagrams at once than slots: the oldest gives way; memory stays
 * bounded by JK_REASM_SLOTS buffers. */
Test(reasm, oldest_gives_way)
{
    struct rig g;
    setup(&g, 4);
    uint32_t l4 = (uint32_t)g.wn - 20;
    for (uint32_t id = 1; id <= JK_REASM_SLOTS + 1; id++)
        cr_assert_eq(add(&g, 0, 1000, true, id, id), JK_REASM_KEPT);
    cr_assert_eq(g.r.dropped, 1);
    cr_assert_eq(add(&g, 1000, l4 - 1000, false, 1, 10), JK_REASM_KEPT, "id 1 was evicted");
    cr_assert_eq(g.r.dropped, 2, "and id 2 gave way to it");
    cr_assert_eq(add(&g, 1000, l4 - 1000, false, 3, 10), JK_REASM_DONE);
    check_whole(&g);
    int held = 0;
    for (int i = 0; i < JK_REASM_SLOTS; i++)
        held += g.r.slot[i].buf != NULL;
    cr_assert_leq(held, JK_REASM_SLOTS);
    jk_reasm_free(&g.r);
}

/* More separate pieces than JK_REASM_PIECES: the datagram drops rather
 * than grow without bound. Every other 8-byte piece, never adjacent. */
Test(reasm, too_many_pieces)
{
    struct rig g;
    setup(&g, 4);
    int r = JK_REASM_KEPT;
    for (uint32_t i = 0; i <= JK_REASM_PIECES && r == JK_REASM_KEPT; i++)
        r = add(&g, i * 16, 8, true, 1, 0);
    cr_assert_eq(r, JK_REASM_DROP);
    cr_assert_eq(g.r.completed, 0);
    jk_reasm_free(&g.r);
}

/* IPv6: extension headers before the fragment header stay in the
 * rebuilt packet, which names the fragment's next header instead. */
Test(reasm, ipv6_with_hop_by_hop)
{
    struct rig g;
    setup(&g, 6);
    uint8_t f[2][4096];
    size_t n[2];
    uint32_t l4 = (uint32_t)g.wn - 40;
    uint32_t cut[3] = {0, 1000, l4};
    for (int i = 0; i < 2; i++) {
        uint8_t p[4096];
        size_t pn = piece(p, g.w, 6, cut[i], cut[i + 1] - cut[i], i == 0, 5);
        /* insert an 8-byte hop-by-hop header (PadN) before the fragment header */
        memcpy(f[i], p, 40);
        f[i][6] = 0;
        static const uint8_t hbh[8] = {44, 0, 1, 4, 0, 0, 0, 0};
        memcpy(f[i] + 40, hbh, 8);
        memcpy(f[i] + 48, p + 40, pn - 40);
        wr16(f[i] + 4, (unsigned)(pn - 40 + 8));
        n[i] = pn + 8;
    }
    for (int i = 1; i >= 0; i--) {
        struct jk_ip ip;
        cr_assert_eq(jk_parse_ip(f[i], n[i], &ip), JK_PARSE_FRAGMENT);
        int r = jk_reasm_add(&g.r, f[i], &ip, 0, &g.out, &g.out_len);
        cr_assert_eq(r, i ? JK_REASM_KEPT : JK_REASM_DONE);
    }
    struct jk_seg s;
    cr_assert_eq(jk_parse_frame(g.out, g.out_len, &s), JK_PARSE_TCP);
    cr_assert_eq(s.len, 2000);
    cr_assert_eq(memcmp(s.payload, data, 2000), 0);
    cr_assert_eq(g.out[6], 0, "hop-by-hop first");
    cr_assert_eq(g.out[40], 6, "then TCP, the fragment header gone");
    jk_reasm_free(&g.r);
}

/* RFC 6946: an IPv6 atomic fragment (offset 0, no more) is a whole packet
 * to the parser, never held. */
Test(reasm, ipv6_atomic_fragment_is_whole)
{
    struct rig g;
    setup(&g, 6);
    uint8_t f[4096];
    size_t n = piece(f, g.w, 6, 0, (uint32_t)g.wn - 40, false, 1);
    struct jk_seg s;
    cr_assert_eq(jk_parse_frame(f, n, &s), JK_PARSE_TCP);
    cr_assert_eq(s.len, 2000);
}
