/* SPDX-License-Identifier: MIT */
/*
 * A binary min-heap of intrusive nodes keyed by a uint64_t (the adapter's
 * connection deadlines). Each node keeps its own index into the heap's
 * array, so removing or re-keying any node is O(log n) without a search
 * (the shape of libuv's timer heap, on an array). Ties come out in an
 * order fixed by the sequence of operations, not by insertion age.
 */
#ifndef JK_HEAP_H
#define JK_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jk_heap_node {
    uint64_t key;
    int idx; /* position in the heap, -1 when not in one */
};

struct jk_heap {
    struct jk_heap_node **v;
    int len, cap;
};

/* A zeroed struct jk_heap is an empty heap too. */
static inline void jk_heap_init(struct jk_heap *h)
{
    h->v = NULL;
    h->len = h->cap = 0;
}

static inline void jk_heap_node_init(struct jk_heap_node *n)
{
    n->key = 0;
    n->idx = -1;
}

static inline bool jk_heap_queued(const struct jk_heap_node *n)
{
    return n->idx >= 0;
}

/* The node with the smallest key, or NULL when empty. */
static inline struct jk_heap_node *jk_heap_min(const struct jk_heap *h)
{
    return h->len ? h->v[0] : NULL;
}

/* Give n the key, inserting it if it is not queued. -ENOMEM when the
 * array cannot grow: n keeps the key but stays out of the heap. */
int jk_heap_set(struct jk_heap *h, struct jk_heap_node *n, uint64_t key);
/* Take n out (nothing when it is not queued). */
void jk_heap_remove(struct jk_heap *h, struct jk_heap_node *n);
/* Free the array (the nodes are the caller's). */
void jk_heap_free(struct jk_heap *h);

#endif
