/* SPDX-License-Identifier: MIT */
/*
 * Pattern data through a threaded-API stream (netns.h's jkt_pattern_*):
 * write it, read it back and check it. Criterion-free, for tests and
 * tools alike. Both move 64 KiB per call and return 0 or the failing
 * call's negative errno.
 */
#ifndef JKT_STREAMIO_H
#define JKT_STREAMIO_H

#include "jktcp.h"

#include <stdint.h>

/* Write n bytes of pattern(seed) from stream offset 0; a short write is
 * -EIO. *sent: bytes written. */
long jkt_stream_send_pattern(jktcp_stream s, uint64_t n, uint32_t seed, int timeout_ms,
                             uint64_t *sent);
/* Read n bytes and check them against pattern(seed); end of stream first is
 * -ENODATA. *got: bytes read; *bad: offset of the first wrong byte, or
 * UINT64_MAX (reading goes on past a wrong byte). */
long jkt_stream_recv_pattern(jktcp_stream s, uint64_t n, uint32_t seed, int timeout_ms,
                             uint64_t *got, uint64_t *bad);

#endif
