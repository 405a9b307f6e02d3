/* SPDX-License-Identifier: MIT */
/* Pattern data through a stream (see streamio.h). */
#include "streamio.h"

#include "netns.h"

#include <errno.h>
#include <stdlib.h>

#define CHUNK (64u * 1024u)

long jkt_stream_send_pattern(jktcp_stream s, uint64_t n, uint32_t seed, int timeout_ms,
                             uint64_t *sent)
{
    uint8_t *buf = malloc(CHUNK);
    long err = buf ? 0 : -ENOMEM;
    *sent = 0;
    while (buf && *sent < n) {
        size_t k = n - *sent < CHUNK ? (size_t)(n - *sent) : CHUNK;
        jkt_pattern_fill(buf, k, *sent, seed);
        ssize_t w = jktcp_stream_write_all(s, buf, k, timeout_ms);
        if (w != (ssize_t)k) {
            err = w < 0 ? w : -EIO;
            break;
        }
        *sent += k;
    }
    free(buf);
    return err;
}

long jkt_stream_recv_pattern(jktcp_stream s, uint64_t n, uint32_t seed, int timeout_ms,
                             uint64_t *got, uint64_t *bad)
{
    uint8_t *buf = malloc(CHUNK);
    long err = buf ? 0 : -ENOMEM;
    *got = 0;
    *bad = UINT64_MAX;
    while (buf && *got < n) {
        ssize_t r = jktcp_stream_read(s, buf, CHUNK, timeout_ms);
        if (r <= 0) {
            err = r < 0 ? r : -ENODATA;
            break;
        }
        size_t k = jkt_pattern_check(buf, (size_t)r, *got, seed);
        if (k != (size_t)r && *bad == UINT64_MAX)
            *bad = *got + k;
        *got += (uint64_t)r;
    }
    free(buf);
    return err;
}
