/* SPDX-License-Identifier: MIT */
/* IP reassembly: see reasm.h. */
#include "reasm.h"

#include <stdlib.h>
#include <string.h>

static void slot_clear(struct jk_reasm_slot *s)
{
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Drop a datagram in progress; its pieces count as dropped. */
static void slot_drop(struct jk_reasm *r, struct jk_reasm_slot *s)
{
    r->dropped += (uint64_t)(s->npieces ? s->npieces : 1);
    slot_clear(s);
}

static uint64_t timeout_of(const struct jk_reasm_slot *s)
{
    return s->src.family == 4 ? JK_REASM_TIMEOUT4_US : JK_REASM_TIMEOUT6_US;
}

void jk_reasm_expire(struct jk_reasm *r, uint64_t now_us)
{
    for (int i = 0; i < JK_REASM_SLOTS; i++) {
        struct jk_reasm_slot *s = &r->slot[i];
        if (s->used && now_us - s->born_us >= timeout_of(s))
            slot_drop(r, s);
    }
}

/* The buffer of the packet handed out last time: given back now. */
static void release_out(struct jk_reasm *r)
{
    free(r->out_buf);
    r->out_buf = NULL;
}

void jk_reasm_free(struct jk_reasm *r)
{
    release_out(r);
    for (int i = 0; i < JK_REASM_SLOTS; i++)
        slot_clear(&r->slot[i]);
}

/* The datagram's key: addresses, identification and (IPv4) protocol. */
static bool slot_is(const struct jk_reasm_slot *s, const struct jk_ip *ip)
{
    return s->used && s->id == ip->frag.id && jk_addr_eq(&s->src, &ip->src) &&
           jk_addr_eq(&s->dst, &ip->dst) && (ip->family == 6 || s->nh == ip->frag.nh);
}

/* The slot for this datagram: its own, a free one, or the oldest (which
 * gives way, as a full reassembly queue does on Linux). */
static struct jk_reasm_slot *slot_for(struct jk_reasm *r, const struct jk_ip *ip, uint64_t now)
{
    struct jk_reasm_slot *free_s = NULL, *oldest = NULL;
    for (int i = 0; i < JK_REASM_SLOTS; i++) {
        struct jk_reasm_slot *s = &r->slot[i];
        if (slot_is(s, ip))
            return s;
        if (!s->used && !free_s)
            free_s = s;
        if (s->used && (!oldest || s->born_us < oldest->born_us))
            oldest = s;
    }
    struct jk_reasm_slot *s = free_s;
    if (!s) {
        slot_drop(r, oldest);
        s = oldest;
    }
    s->buf = malloc(JK_REASM_MAX_HDR + JK_REASM_MAX_PAYLOAD);
    if (!s->buf)
        return NULL;
    s->used = true;
    s->src = ip->src;
    s->dst = ip->dst;
    s->id = ip->frag.id;
    s->nh = ip->frag.nh;
    s->born_us = now;
    return s;
}

/* A piece that cannot be part of any datagram. */
static bool piece_bad(const struct jk_ip *ip)
{
    const struct jk_frag *f = &ip->frag;
    if (f->more && (f->len == 0 || f->len % 8)) /* all but the last: 8-octet units */
        return true;
    if (f->hdr_len > JK_REASM_MAX_HDR)
        return true;
    size_t room = ip->family == 4 ? JK_REASM_MAX_PAYLOAD - f->hdr_len
                                  : JK_REASM_MAX_PAYLOAD - (f->hdr_len - 40);
    return (size_t)f->off + f->len > room;
}

/* Record [start, end): 1 added; 0 a repeat (all of it is held already:
 * ignored, the datagram stays, as RFC 5722's erratum 3089 and Linux treat
 * duplicates); -1 a partial overlap or no room (the datagram drops). */
static int piece_add(struct jk_reasm_slot *s, uint32_t start, uint32_t end)
{
    int i = 0;
    while (i < s->npieces && s->piece[i].end <= start)
        i++;
    if (i < s->npieces && s->piece[i].start < end) /* touches [start, end) */
        return s->piece[i].start <= start && end <= s->piece[i].end ? 0 : -1;
    bool join_prev = i > 0 && s->piece[i - 1].end == start;
    bool join_next = i < s->npieces && s->piece[i].start == end;
    if (join_prev && join_next) {
        s->piece[i - 1].end = s->piece[i].end;
        memmove(&s->piece[i], &s->piece[i + 1], (size_t)(s->npieces - i - 1) * sizeof s->piece[0]);
        s->npieces--;
    } else if (join_prev) {
        s->piece[i - 1].end = end;
    } else if (join_next) {
        s->piece[i].start = start;
    } else {
        if (s->npieces == JK_REASM_PIECES)
            return -1;
        memmove(&s->piece[i + 1], &s->piece[i], (size_t)(s->npieces - i) * sizeof s->piece[0]);
        s->piece[i] = (struct jk_reasm_piece){start, end};
        s->npieces++;
    }
    return 1;
}

/* Where the last piece says the datagram ends; a contradiction drops it. */
static bool set_total(struct jk_reasm_slot *s, const struct jk_frag *f)
{
    uint32_t end = f->off + f->len;
    if (!f->more) {
        if (s->total && s->total != end)
            return false;
        s->total = end;
    }
    if (s->total && end > s->total)
        return false;
    return !(s->npieces && s->total && s->piece[s->npieces - 1].end > s->total);
}

/* The whole packet: the first piece's header, rewritten to say "not
 * fragmented", right before the payload. */
static const uint8_t *rebuild(struct jk_reasm_slot *s, size_t *len)
{
    uint8_t *p = s->buf + JK_REASM_MAX_HDR - s->hdr_len;
    size_t n = s->hdr_len + s->total;
    if (s->src.family == 4) {
        p[2] = (uint8_t)(n >> 8);
        p[3] = (uint8_t)n;
        p[6] &= 0x40; /* keep DF; MF and the offset go */
        p[7] = 0;
        p[10] = p[11] = 0;
        uint16_t c = jk_csum_fold(jk_csum_add(0, p, s->hdr_len));
        p[10] = (uint8_t)(c >> 8);
        p[11] = (uint8_t)c;
    } else {
        size_t pl = n - 40;
        p[4] = (uint8_t)(pl >> 8);
        p[5] = (uint8_t)pl;
        p[s->nh_at] = s->nh; /* the fragment header is gone from the chain */
    }
    *len = n;
    return p;
}

enum jk_reasm_result jk_reasm_add(struct jk_reasm *r, const uint8_t *frame, const struct jk_ip *ip,
                                  uint64_t now_us, const uint8_t **out, size_t *out_len)
{
    release_out(r);
    jk_reasm_expire(r, now_us);
    const struct jk_frag *f = &ip->frag;
    if (piece_bad(ip)) {
        r->dropped++;
        return JK_REASM_DROP;
    }
    struct jk_reasm_slot *s = slot_for(r, ip, now_us);
    if (!s) {
        r->dropped++;
        return JK_REASM_DROP;
    }
    int added = f->len ? piece_add(s, f->off, f->off + f->len) : 1;
    if (added < 0 || !set_total(s, f)) {
        slot_drop(r, s);
        r->dropped++;
        return JK_REASM_DROP;
    }
    if (added == 0) { /* a repeat: nothing new */
        r->dropped++;
        return JK_REASM_KEPT;
    }
    memcpy(s->buf + JK_REASM_MAX_HDR + f->off, f->data, f->len);
    if (f->off == 0) {
        s->hdr_len = f->hdr_len;
        s->nh_at = f->nh_at;
        memcpy(s->buf + JK_REASM_MAX_HDR - f->hdr_len, frame, f->hdr_len);
    }
    if (!s->total || !s->hdr_len || s->npieces != 1 || s->piece[0].start != 0 ||
        s->piece[0].end != s->total)
        return JK_REASM_KEPT;
    *out = rebuild(s, out_len);
    r->completed++;
    r->out_buf = s->buf; /* valid until the next call */
    s->buf = NULL;
    slot_clear(s);
    return JK_REASM_DONE;
}
