/* SPDX-License-Identifier: MIT */
/* Byte ring with free-running 32-bit indices. Single producer / single
 * consumer safe: the producer owns `tail`, the consumer owns `head`, each
 * publishes with release and reads the other's with acquire. The TCP
 * engine uses it for the send buffer (app produces, engine consumes as the
 * peer ACKs) and the receive buffer (engine produces — including
 * out-of-order bytes written beyond tail before they are published — and
 * the app consumes). Size is a power of two. */
#ifndef JK_RING_H
#define JK_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

struct jk_ring {
    uint8_t *buf;
    uint32_t size, mask; /* allocation: a power of two */
    uint32_t cap;        /* bytes it may hold: the size asked for */
    _Atomic uint32_t head; /* consumer: next byte to read */
    _Atomic uint32_t tail; /* producer: next byte to write */
};

/* Holds at most `size` bytes; the allocation is rounded up to a power of
 * two so positions wrap with a mask. */
int jk_ring_init(struct jk_ring *r, uint32_t size);
void jk_ring_free(struct jk_ring *r);
/* Give back the memory of the whole pages outside [head, tail) (see
 * jk_pages_release): an idle ring then costs no memory beyond the bytes it
 * holds. Only the producer may call it, and only while nothing is put
 * beyond tail (jk_ring_put_at ahead of jk_ring_produce); the consumer may
 * run meanwhile. */
void jk_ring_trim(struct jk_ring *r);

static inline uint32_t jk_ring_used(struct jk_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire) -
           atomic_load_explicit(&r->head, memory_order_acquire);
}
static inline uint32_t jk_ring_free_space(struct jk_ring *r) { return r->cap - jk_ring_used(r); }

/* Copy len bytes to/from ring position pos (absolute index), wrapping. */
void jk_ring_put_at(struct jk_ring *r, uint32_t pos, const void *src, uint32_t len);
void jk_ring_get_at(const struct jk_ring *r, uint32_t pos, void *dst, uint32_t len);
/* Describe [pos, pos+len) as up to two iovecs; returns the count. */
int jk_ring_iov(const struct jk_ring *r, uint32_t pos, uint32_t len, struct iovec iov[2]);

/* Producer: append up to len bytes, returns bytes written. */
uint32_t jk_ring_write(struct jk_ring *r, const void *src, uint32_t len);
/* Consumer: take up to len bytes, returns bytes read. */
uint32_t jk_ring_read(struct jk_ring *r, void *dst, uint32_t len);
/* Consumer: drop len bytes (len <= used). */
static inline void jk_ring_consume(struct jk_ring *r, uint32_t len)
{
    atomic_store_explicit(&r->head, atomic_load_explicit(&r->head, memory_order_relaxed) + len,
                          memory_order_release);
}
/* Producer: publish len bytes already placed with put_at. */
static inline void jk_ring_produce(struct jk_ring *r, uint32_t len)
{
    atomic_store_explicit(&r->tail, atomic_load_explicit(&r->tail, memory_order_relaxed) + len,
                          memory_order_release);
}

#endif
