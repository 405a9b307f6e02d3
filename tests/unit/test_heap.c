/* SPDX-License-Identifier: MIT */
/*
 * Suite `heap`: lib/heap.c, the intrusive min-heap of the adapter's
 * connection deadlines. Random inserts, re-keys and removals against a
 * plain array, checking after every step that each node's index points
 * back at it and that no child is smaller than its parent; and the same
 * runs against the adapter's heap as it was before heap.c (copied here),
 * position for position, so the order of equal deadlines did not change.
 */
#include "minitest.h"
#include "heap.h"

#include <stdint.h>
#include <stdlib.h>

#define N 300

struct item {
    struct jk_heap_node node;
    /* the pre-heap.c adapter's fields (conn->heap_idx, conn->deadline) */
    int old_idx;
    uint64_t old_key;
};

static struct item items[N];

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- the adapter's heap before heap.c, verbatim but for the names ------- */

static struct item *old_v[N];
static int old_len;

static void old_swap(int i, int j)
{
    struct item *t = old_v[i];
    old_v[i] = old_v[j];
    old_v[j] = t;
    old_v[i]->old_idx = i;
    old_v[j]->old_idx = j;
}

static void old_up(int i)
{
    while (i > 0 && old_v[(i - 1) / 2]->old_key > old_v[i]->old_key) {
        old_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void old_down(int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < old_len && old_v[l]->old_key < old_v[m]->old_key)
            m = l;
        if (r < old_len && old_v[r]->old_key < old_v[m]->old_key)
            m = r;
        if (m == i)
            return;
        old_swap(i, m);
        i = m;
    }
}

static void old_remove(struct item *c)
{
    int i = c->old_idx;
    if (i < 0)
        return;
    old_len--;
    if (i != old_len) {
        old_v[i] = old_v[old_len];
        old_v[i]->old_idx = i;
        old_down(i);
        old_up(i);
    }
    c->old_idx = -1;
}

static void old_update(struct item *c, uint64_t d)
{
    c->old_key = d;
    if (!d) {
        old_remove(c);
        return;
    }
    if (c->old_idx < 0) {
        c->old_idx = old_len;
        old_v[old_len++] = c;
    }
    old_up(c->old_idx);
    old_down(c->old_idx);
}

/* ---- checks ------------------------------------------------------------- */

static struct item *item_of(struct jk_heap_node *n)
{
    return (struct item *)((char *)n - offsetof(struct item, node));
}

static void check(const struct jk_heap *h, int step)
{
    int queued = 0;
    for (int i = 0; i < N; i++) {
        struct jk_heap_node *n = &items[i].node;
        if (!jk_heap_queued(n))
            continue;
        queued++;
        JT_ASSERT(n->idx < h->len && h->v[n->idx] == n, "step %d: item %d's index is wrong", step,
                  i);
    }
    JT_ASSERT(queued == h->len, "step %d: %d queued, heap has %d", step, queued, h->len);
    for (int i = 1; i < h->len; i++)
        JT_ASSERT(h->v[(i - 1) / 2]->key <= h->v[i]->key, "step %d: heap order at %d", step, i);
    uint64_t min = UINT64_MAX;
    for (int i = 0; i < N; i++)
        if (jk_heap_queued(&items[i].node) && items[i].node.key < min)
            min = items[i].node.key;
    JT_ASSERT(h->len == 0 ? jk_heap_min(h) == NULL : jk_heap_min(h)->key == min,
              "step %d: min is not the smallest key", step);
    JT_ASSERT(old_len == h->len, "step %d: old heap holds %d, new %d", step, old_len, h->len);
    for (int i = 0; i < h->len; i++)
        JT_ASSERT(item_of(h->v[i]) == old_v[i], "step %d: position %d differs from the old heap",
                  step, i);
}

static void reset(struct jk_heap *h)
{
    jk_heap_free(h);
    old_len = 0;
    for (int i = 0; i < N; i++) {
        jk_heap_node_init(&items[i].node);
        items[i].old_idx = -1;
        items[i].old_key = 0;
    }
}

/* One random step: what the adapter does (update with a new deadline, 0
 * meaning "no timer"; remove on close; pop the earliest). */
static void step(struct jk_heap *h, uint32_t *s, uint64_t key_range)
{
    struct item *it = &items[rnd(s) % N];
    uint32_t op = rnd(s) % 10;
    if (op < 6) {
        uint64_t d = rnd(s) % key_range;
        if (d)
            JT_ASSERT(jk_heap_set(h, &it->node, d) == 0, "set");
        else
            jk_heap_remove(h, &it->node);
        old_update(it, d);
    } else if (op < 8) {
        jk_heap_remove(h, &it->node);
        old_remove(it);
    } else if (jk_heap_min(h)) {
        struct item *m = item_of(jk_heap_min(h));
        JT_ASSERT(m == old_v[0], "the same earliest item");
        jk_heap_remove(h, &m->node);
        old_remove(m);
    }
}

JT_TEST(heap, empty, 10)
{
    struct jk_heap h;
    jk_heap_init(&h);
    struct jk_heap_node n;
    jk_heap_node_init(&n);
    JT_ASSERT(jk_heap_min(&h) == NULL && !jk_heap_queued(&n), "empty");
    jk_heap_remove(&h, &n); /* not queued: nothing */
    JT_ASSERT(jk_heap_set(&h, &n, 5) == 0 && jk_heap_min(&h) == &n && n.idx == 0, "one");
    JT_ASSERT(jk_heap_set(&h, &n, 3) == 0 && h.len == 1 && n.key == 3, "re-keyed, not twice");
    jk_heap_remove(&h, &n);
    jk_heap_remove(&h, &n);
    JT_ASSERT(jk_heap_min(&h) == NULL && n.idx == -1, "removed (twice is harmless)");
    jk_heap_free(&h);
}

JT_TEST(heap, random_against_reference, 30)
{
    struct jk_heap h;
    jk_heap_init(&h);
    /* wide keys (few ties), then narrow ones (many ties: the order of
     * equal deadlines must match the old heap too) */
    static const uint64_t ranges[] = {UINT32_MAX, 1000, 8, 2};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        reset(&h);
        uint32_t s = 2463534242u + (uint32_t)r;
        for (int i = 0; i < 40000; i++) {
            step(&h, &s, ranges[r]);
            check(&h, i);
        }
    }
    jk_heap_free(&h);
}

JT_TEST(heap, pops_in_key_order, 10)
{
    struct jk_heap h;
    jk_heap_init(&h);
    reset(&h);
    uint32_t s = 77;
    for (int i = 0; i < N; i++)
        JT_ASSERT(jk_heap_set(&h, &items[i].node, 1 + rnd(&s) % 50) == 0, "set");
    uint64_t last = 0;
    int n = 0;
    struct jk_heap_node *m;
    while ((m = jk_heap_min(&h))) {
        JT_ASSERT(m->key >= last, "popped %llu after %llu", (unsigned long long)m->key,
                  (unsigned long long)last);
        last = m->key;
        jk_heap_remove(&h, m);
        n++;
    }
    JT_ASSERT(n == N, "popped %d", n);
    jk_heap_free(&h);
}
