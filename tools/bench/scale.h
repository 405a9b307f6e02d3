/* SPDX-License-Identifier: MIT */
/* jktcp-bench's memory and scale case (tools/bench/scale.c). */
#ifndef JKT_BENCH_SCALE_H
#define JKT_BENCH_SCALE_H

#include <stdint.h>

struct scale_result {
    int streams, verified;   /* opened, and whose echo came back right */
    double open_s;           /* to open them all and echo on each */
    double busy_mib;         /* RSS growth after one stream moved bulk_mib each way */
    double idle_mib;         /* ... and after JK_TRIM_IDLE_US more of silence */
    double per_stream_kib;   /* RSS growth per idle stream, buffers trimmed */
};

/*
 * One handle over a TUN device to a kernel echo server run by a child
 * process (so its sockets and threads are not in this process's RSS):
 * stream 0 echoes bulk_mib MiB (both rings cycle through every page), then
 * `streams` streams are opened one after another, each echoing 64 bytes
 * (verified), and all stay open while the buffers go idle. 0 or -1.
 */
int bench_scale(unsigned mtu, int family, int streams, unsigned bulk_mib, struct scale_result *out);

#endif
