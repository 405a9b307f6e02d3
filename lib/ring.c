/* SPDX-License-Identifier: MIT */
#include "ring.h"
#include "platform.h"

#include <errno.h>

int jk_ring_init(struct jk_ring *r, uint32_t size)
{
    uint32_t n = 4096;
    if (size > (1u << 30))
        return -EINVAL;
    while (n < size)
        n <<= 1;
    r->buf = jk_pages_alloc(n); /* pages come as they are touched */
    if (!r->buf)
        return -ENOMEM;
    r->size = n;
    r->mask = n - 1;
    r->cap = size < 1 ? 1 : size;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void jk_ring_free(struct jk_ring *r)
{
    jk_pages_free(r->buf, r->size);
    r->buf = NULL;
}

/* The free part of the ring starts at tail and runs (size - used) bytes,
 * wrapping; with nothing held, the whole buffer goes. */
void jk_ring_trim(struct jk_ring *r)
{
    if (!r->buf)
        return;
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t used = tail - atomic_load_explicit(&r->head, memory_order_acquire);
    if (used == 0) {
        jk_pages_release(r->buf, r->size);
        return;
    }
    if (used >= r->size)
        return;
    uint32_t start = tail & r->mask, len = r->size - used;
    uint32_t first = r->size - start < len ? r->size - start : len;
    jk_pages_release(r->buf + start, first);
    jk_pages_release(r->buf, len - first);
}

void jk_ring_put_at(struct jk_ring *r, uint32_t pos, const void *src, uint32_t len)
{
    uint32_t off = pos & r->mask, first = r->size - off;
    if (first > len)
        first = len;
    memcpy(r->buf + off, src, first);
    memcpy(r->buf, (const uint8_t *)src + first, len - first);
}

void jk_ring_get_at(const struct jk_ring *r, uint32_t pos, void *dst, uint32_t len)
{
    uint32_t off = pos & r->mask, first = r->size - off;
    if (first > len)
        first = len;
    memcpy(dst, r->buf + off, first);
    memcpy((uint8_t *)dst + first, r->buf, len - first);
}

int jk_ring_iov(const struct jk_ring *r, uint32_t pos, uint32_t len, struct iovec iov[2])
{
    uint32_t off = pos & r->mask, first = r->size - off;
    if (len == 0)
        return 0;
    if (first >= len) {
        iov[0] = (struct iovec){r->buf + off, len};
        return 1;
    }
    iov[0] = (struct iovec){r->buf + off, first};
    iov[1] = (struct iovec){r->buf, len - first};
    return 2;
}

uint32_t jk_ring_write(struct jk_ring *r, const void *src, uint32_t len)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t space = r->cap - (tail - head);
    if (len > space)
        len = space;
    jk_ring_put_at(r, tail, src, len);
    atomic_store_explicit(&r->tail, tail + len, memory_order_release);
    return len;
}

uint32_t jk_ring_read(struct jk_ring *r, void *dst, uint32_t len)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (len > tail - head)
        len = tail - head;
    jk_ring_get_at(r, head, dst, len);
    atomic_store_explicit(&r->head, head + len, memory_order_release);
    return len;
}
