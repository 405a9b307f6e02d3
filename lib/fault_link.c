/* SPDX-License-Identifier: MIT */
/* The fault transport's bottleneck link (see fault_link.h). */
#include "fault_link.h"
#include "packet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_QUEUE (256u * 1024u)
#define MAX_DELAY_US 10000000u              /* 10 s */
#define MAX_RATE 1000000000000ull           /* 1 Tbit/s */
#define MAX_BYTES (256ull << 20)            /* queue, and queue + rate x delay */
#define REC_HDR 16u
#define SKIP UINT32_MAX                     /* record header: the rest of the ring is unused */

struct rec {
    uint32_t len;
    uint32_t pad;
    uint64_t deliver; /* ns: arrival at the far end */
};

static uint64_t queue_of(const jktcp_fault_link *c)
{
    return c->queue_bytes ? c->queue_bytes : DEFAULT_QUEUE;
}

/* Bytes on the wire during delay_us at the rate (what the delay line holds
 * once the queue drains into it at full speed). */
static uint64_t bdp_of(const jktcp_fault_link *c)
{
    return (uint64_t)((unsigned __int128)c->rate_bps * c->delay_us / 8000000u);
}

int jk_link_check(const jktcp_fault_link *c)
{
    if (c->delay_us > MAX_DELAY_US || c->rate_bps > MAX_RATE || queue_of(c) > MAX_BYTES ||
        queue_of(c) + bdp_of(c) > MAX_BYTES)
        return -EINVAL;
    return 0;
}

static size_t rec_size(size_t len)
{
    return REC_HDR + ((len + 15u) & ~(size_t)15u);
}

int jk_link_init(struct jk_link *l, const jktcp_fault_link *c)
{
    memset(l, 0, sizeof *l);
    if (!c->rate_bps && !c->delay_us)
        return 0;
    l->on = true;
    l->rate_bps = c->rate_bps;
    l->delay_ns = (uint64_t)c->delay_us * 1000u;
    l->queue_bytes = queue_of(c);
    /* Twice the bytes the link can hold, for the record headers and the
     * padding of small frames (a 40-byte ACK takes 64), plus room for the
     * wasted end of the ring and the largest frame. Without a rate the delay
     * line has no bound of its own: queue_bytes is its size. */
    uint64_t hold = l->queue_bytes + bdp_of(c);
    l->cap = (size_t)(2 * hold) + 2 * rec_size(JK_MAX_FRAME);
    l->cap &= ~(size_t)15u;
    l->ring = malloc(l->cap);
    return l->ring ? 0 : -ENOMEM;
}

void jk_link_free(struct jk_link *l)
{
    free(l->ring);
    l->ring = NULL;
}

static void set_max(_Atomic uint64_t *m, uint64_t v)
{
    if (v > atomic_load_explicit(m, memory_order_relaxed))
        atomic_store_explicit(m, v, memory_order_relaxed);
}

static void add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* Room for need bytes at the tail, wrapping (and marking the rest of the
 * ring unused) if the end is too short: the record's offset, or -1. */
static long reserve(struct jk_link *l, size_t need)
{
    if (l->used == 0)
        l->head = l->tail = 0;
    if (l->tail + need > l->cap) {
        size_t waste = l->cap - l->tail;
        if (l->used + waste + need > l->cap)
            return -1;
        if (waste) { /* a multiple of 16: a header fits */
            struct rec skip = {.len = SKIP};
            memcpy(l->ring + l->tail, &skip, sizeof skip);
            l->used += waste;
        }
        l->tail = 0;
    }
    if (l->used + need > l->cap)
        return -1;
    size_t at = l->tail;
    l->tail += need;
    if (l->tail == l->cap)
        l->tail = 0;
    l->used += need;
    return (long)at;
}

/* Bytes still waiting in the queue at now: those not yet serialized, as the
 * last departure is that far ahead at the rate. */
static uint64_t backlog(const struct jk_link *l, uint64_t now)
{
    if (!l->rate_bps || l->last_depart <= now)
        return 0;
    return (uint64_t)((unsigned __int128)(l->last_depart - now) * l->rate_bps / 8000000000u);
}

int jk_link_enter(struct jk_link *l, const uint8_t *p, size_t len, uint64_t now)
{
    uint64_t q = backlog(l, now) + len;
    if (l->rate_bps && q > l->queue_bytes) {
        add(&l->st.queue_drops, 1);
        return 0;
    }
    long at = reserve(l, rec_size(len));
    if (at < 0) {
        add(&l->st.ring_full, 1);
        return -ENOBUFS;
    }
    uint64_t start = l->last_depart > now ? l->last_depart : now;
    uint64_t depart = start;
    if (l->rate_bps)
        depart += (uint64_t)len * 8000000000u / l->rate_bps;
    l->last_depart = depart;
    struct rec r = {.len = (uint32_t)len, .deliver = depart + l->delay_ns};
    memcpy(l->ring + at, &r, sizeof r);
    memcpy(l->ring + at + REC_HDR, p, len);
    l->count++;
    add(&l->st.frames, 1);
    add(&l->st.queue_ns, depart - now);
    set_max(&l->st.max_queue_bytes, l->rate_bps ? q : 0);
    return 1;
}

/* The oldest record (past a skip marker), or NULL. */
static const struct rec *head_rec(const struct jk_link *l, size_t *at)
{
    if (!l->count)
        return NULL;
    size_t h = l->head;
    const struct rec *r = (const struct rec *)(l->ring + h);
    if (r->len == SKIP) {
        h = 0;
        r = (const struct rec *)l->ring;
    }
    *at = h;
    return r;
}

bool jk_link_peek(const struct jk_link *l, uint64_t now, const uint8_t **p, size_t *len)
{
    size_t at;
    const struct rec *r = head_rec(l, &at);
    if (!r || r->deliver > now)
        return false;
    *p = l->ring + at + REC_HDR;
    *len = r->len;
    return true;
}

void jk_link_pop(struct jk_link *l)
{
    size_t at;
    const struct rec *r = head_rec(l, &at);
    if (!r)
        return;
    if (at != l->head) /* past the unused end */
        l->used -= l->cap - l->head;
    size_t sz = rec_size(r->len);
    l->head = at + sz == l->cap ? 0 : at + sz;
    l->used -= sz;
    l->count--;
}

uint64_t jk_link_next_us(const struct jk_link *l)
{
    size_t at;
    const struct rec *r = head_rec(l, &at);
    return r ? (r->deliver + 999u) / 1000u : 0;
}

void jk_link_stats(const struct jk_link *l, jktcp_fault_link_stats *o)
{
#define LD(x) atomic_load_explicit(&l->st.x, memory_order_relaxed)
    o->frames = LD(frames);
    o->queue_drops = LD(queue_drops);
    o->ring_full = LD(ring_full);
    o->max_queue_bytes = LD(max_queue_bytes);
    o->queue_us_total = LD(queue_ns) / 1000u;
#undef LD
}
