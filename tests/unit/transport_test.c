/* SPDX-License-Identifier: MIT */
/* Helpers shared by the transport and port tests (see transport_test.h). */
#include "transport_test.h"

#include <poll.h>
#include <string.h>

/* xorshift64*: seeded so a failure replays identically. */
uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

size_t rng_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(s) % (hi - lo + 1));
}

/*
 * A frame the transport can delimit: version nibble and length fields are
 * right, the rest is noise (no checksum needed). IPv4 needs len in
 * [20, 65535], IPv6 in [41, 65575]. The first payload bytes carry seq so
 * threaded tests can check order.
 */
void make_frame(uint8_t *buf, size_t len, int version, uint32_t seq, uint64_t *rng)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rng_next(rng);
    size_t hdr = version == 4 ? 20 : 40;
    if (version == 4) {
        buf[0] = 0x45;
        buf[2] = (uint8_t)(len >> 8);
        buf[3] = (uint8_t)len;
        buf[9] = 253; /* RFC 3692 experimental */
    } else {
        buf[0] = 0x60;
        buf[4] = (uint8_t)((len - 40) >> 8);
        buf[5] = (uint8_t)(len - 40);
        buf[6] = 253;
    }
    if (len >= hdr + 4)
        memcpy(buf + hdr, &seq, 4);
}

int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, timeout_ms);
}
