/* SPDX-License-Identifier: MIT */
/*
 * The fault transport's bottleneck link (jktcp_fault_link in jktcp.h): one
 * direction's FIFO, serialized at rate_bps out of a queue of queue_bytes
 * (tail drop), then delay_us of propagation. fault.c feeds it the frames its
 * other faults let through and hands on what falls due; this file keeps the
 * frames and the clock arithmetic and knows nothing of transports.
 *
 * The frames live in one byte ring per direction, allocated at creation and
 * sized from the settings (queue + what the delay line holds at the rate),
 * so small frames (ACKs) cost their size and not a 64 KiB pool slot.
 */
#ifndef JK_FAULT_LINK_H
#define JK_FAULT_LINK_H

#include "jktcp.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jk_link_stats {
    _Atomic uint64_t frames, queue_drops, ring_full, max_queue_bytes, queue_ns;
};

struct jk_link {
    bool on;                /* rate_bps or delay_us set */
    uint64_t rate_bps;      /* 0: no serialization, a pure delay line */
    uint64_t delay_ns;
    uint64_t queue_bytes;
    uint64_t last_depart;   /* ns: when the last queued frame has left the queue */
    uint8_t *ring;
    size_t cap, head, tail, used; /* bytes; records are 16-byte aligned */
    unsigned count;         /* frames in the ring */
    struct jk_link_stats st;
};

/* 0, or -EINVAL for settings out of range (delay over 10 s, rate over
 * 1 Tbit/s, queue or queue + rate x delay over 256 MiB). */
int jk_link_check(const jktcp_fault_link *c);
/* Set up l from c (checked): 0 or -ENOMEM. Off (no ring) when c asks for
 * nothing. */
int jk_link_init(struct jk_link *l, const jktcp_fault_link *c);
void jk_link_free(struct jk_link *l);

/* A frame arrives at the link at now (ns): 1 queued, 0 tail-dropped (the
 * queue is full; counted), -ENOBUFS when the ring has no room (counted in
 * ring_full; the caller counts it as its pool_full too). */
int jk_link_enter(struct jk_link *l, const uint8_t *p, size_t len, uint64_t now);

/* The oldest frame if it has arrived at the far end by now (ns): true with
 * *p / *len set; it stays in the link until jk_link_pop. */
bool jk_link_peek(const struct jk_link *l, uint64_t now, const uint8_t **p, size_t *len);

/* Remove the oldest frame (the one jk_link_peek showed: its bytes stay
 * valid until the next jk_link_enter). */
void jk_link_pop(struct jk_link *l);

/* When the oldest frame arrives, in microseconds rounded up (a timer armed
 * for it finds it due); 0 when the link is empty. */
uint64_t jk_link_next_us(const struct jk_link *l);

void jk_link_stats(const struct jk_link *l, jktcp_fault_link_stats *o);

#endif
