/* SPDX-License-Identifier: MIT */
/* Shared helpers for the libFuzzer targets in tests/fuzz/. */
#ifndef JK_FUZZ_COMMON_H
#define JK_FUZZ_COMMON_H

#include "jktcp.h"
#include "packet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Invariant violation: print and abort so libFuzzer records the input. */
#define FZ_CHECK(cond, ...)                                                      \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* Reads fuzz input front to back; past the end every value is 0. */
struct fz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
    uint16_t hi = fz_u8(in);
    return (uint16_t)(hi << 8 | fz_u8(in));
}

static inline uint32_t fz_u32(struct fz_in *in)
{
    uint32_t hi = fz_u16(in);
    return hi << 16 | fz_u16(in);
}

/* Up to want bytes straight from the input (fewer at its end). */
static inline size_t fz_bytes(struct fz_in *in, size_t want, const uint8_t **out)
{
    if (want > in->n)
        want = in->n;
    *out = in->p;
    in->p += want;
    in->n -= want;
    return want;
}

/* Payload bytes are a function of their absolute sequence number, so any
 * retransmission, overlap or reordering of them stays self-consistent and
 * the receiver's output can be checked byte by byte. */
static inline uint8_t fz_peer_byte(uint32_t seq)
{
    uint32_t x = seq * 0x9e3779b1u;
    x ^= x >> 15;
    x *= 0x85ebca6bu;
    return (uint8_t)(x >> 24);
}

static inline uint8_t fz_our_byte(uint32_t seq)
{
    uint32_t x = (seq ^ 0x5bd1e995u) * 0xc2b2ae35u;
    x ^= x >> 13;
    return (uint8_t)(x >> 20);
}

static inline void fz_fill_peer(uint8_t *buf, uint32_t seq, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = fz_peer_byte(seq + (uint32_t)i);
}

static inline void fz_fill_our(uint8_t *buf, uint32_t seq, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = fz_our_byte(seq + (uint32_t)i);
}

/* Fake clock: microseconds, advanced only by the harness. */
struct fz_clock {
    uint64_t now;
};

static inline uint64_t fz_clock_now(void *ctx) { return ((struct fz_clock *)ctx)->now; }

/* A clock step drawn from one input byte: 0 us .. ~67 s, log-distributed. */
static inline uint64_t fz_clock_step(uint8_t b)
{
    unsigned sh = b % 27;
    return ((uint64_t)1 << sh) + (uint64_t)(b >> 5) * ((uint64_t)1 << sh) / 8;
}

#endif
