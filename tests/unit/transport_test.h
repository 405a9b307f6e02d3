/* SPDX-License-Identifier: MIT */
/* What the transport and port tests (tests/unit/test_transport.c,
 * test_port.c) share: a seeded generator and frames a transport can
 * delimit. */
#ifndef JKT_TRANSPORT_TEST_H
#define JKT_TRANSPORT_TEST_H

#include <stddef.h>
#include <stdint.h>

/* xorshift64*: seeded so a failure replays identically. */
uint64_t rng_next(uint64_t *s);
/* Uniform in [lo, hi]. */
size_t rng_range(uint64_t *s, size_t lo, size_t hi);

/*
 * A frame the transport can delimit: version nibble and length fields are
 * right, the rest is noise (no checksum needed). IPv4 needs len in
 * [20, 65535], IPv6 in [41, 65575]. The first payload bytes carry seq so
 * threaded tests can check order.
 */
void make_frame(uint8_t *buf, size_t len, int version, uint32_t seq, uint64_t *rng);

/* poll() one fd for events: 1 ready, 0 timeout, -1 error. */
int wait_fd(int fd, short events, int timeout_ms);

#endif
