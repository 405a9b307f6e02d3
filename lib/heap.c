/* SPDX-License-Identifier: MIT */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>

static void swap(struct jk_heap *h, int i, int j)
{
    struct jk_heap_node *t = h->v[i];
    h->v[i] = h->v[j];
    h->v[j] = t;
    h->v[i]->idx = i;
    h->v[j]->idx = j;
}

static void sift_up(struct jk_heap *h, int i)
{
    while (i > 0 && h->v[(i - 1) / 2]->key > h->v[i]->key) {
        swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(struct jk_heap *h, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->len && h->v[l]->key < h->v[m]->key)
            m = l;
        if (r < h->len && h->v[r]->key < h->v[m]->key)
            m = r;
        if (m == i)
            return;
        swap(h, i, m);
        i = m;
    }
}

void jk_heap_remove(struct jk_heap *h, struct jk_heap_node *n)
{
    int i = n->idx;
    if (i < 0)
        return;
    h->len--;
    if (i != h->len) { /* the last node fills the hole, then finds its place */
        h->v[i] = h->v[h->len];
        h->v[i]->idx = i;
        sift_down(h, i);
        sift_up(h, i);
    }
    n->idx = -1;
}

static int reserve(struct jk_heap *h)
{
    if (h->len < h->cap)
        return 0;
    int cap = h->cap ? h->cap * 2 : 64;
    struct jk_heap_node **v = realloc(h->v, (size_t)cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    h->v = v;
    h->cap = cap;
    return 0;
}

int jk_heap_set(struct jk_heap *h, struct jk_heap_node *n, uint64_t key)
{
    n->key = key;
    if (n->idx < 0) {
        if (reserve(h) < 0)
            return -ENOMEM;
        n->idx = h->len;
        h->v[h->len++] = n;
    }
    sift_up(h, n->idx);
    sift_down(h, n->idx);
    return 0;
}

void jk_heap_free(struct jk_heap *h)
{
    free(h->v);
    jk_heap_init(h);
}
