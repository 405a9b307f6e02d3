/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench's two TUN references (tools/bench/tun_limits.c): how fast
 * one thread writes frames into a TUN fd (tun-limit, the upload rows'
 * ceiling and the floor of CPU per GiB for one frame per write) and how
 * fast the kernel fills one thread reading it (tun-read-limit, the
 * download rows' ceiling). Each runs for 1 s in the calling namespace.
 */
#ifndef JKT_BENCH_TUN_LIMITS_H
#define JKT_BENCH_TUN_LIMITS_H

#include <stdint.h>

struct tun_ref {
    uint64_t bytes; /* of frames written / read */
    double secs;    /* over this long */
    double cpu_s;   /* of the measuring thread */
};

/* 0 with *out filled, or -1. */
int bench_tun_write_limit(unsigned mtu, int family, struct tun_ref *out);
int bench_tun_read_limit(unsigned mtu, int family, struct tun_ref *out);

#endif
