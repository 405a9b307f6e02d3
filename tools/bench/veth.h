/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench's kernel-to-kernel reference for latency and connection rate
 * (tools/bench/veth.c): a veth pair, v0 in the calling namespace with the
 * jktcp-side addresses, v1 in a child namespace with the kernel-side
 * addresses and a kernel echo server on port (the same tests/support server
 * jktcp talks to), so the kernel's TCP runs both ends. Needs `ip`.
 */
#ifndef JKT_BENCH_VETH_H
#define JKT_BENCH_VETH_H

#include <stddef.h>
#include <stdint.h>

enum veth_case {
    VETH_PINGPONG, /* 5000 64-byte round trips: returns p99 * 1e6 + p50 (us) */
    VETH_CONNS,    /* conns sequential connects, echo bytes on each, close all: conns/s */
};

/* The figure of case `which`, or -1. */
double bench_kernel_veth(unsigned mtu, int family, int which, uint16_t port, int conns, size_t echo);

#endif
