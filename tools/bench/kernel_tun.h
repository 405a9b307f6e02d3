/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench's reference "the kernel's TCP over a TUN pipe"
 * (tools/bench/kernel_tun.c): a kernel client in the calling namespace
 * writes `bytes` through TUN A; a userspace forwarder (two threads) copies
 * frames to TUN B in a child namespace, where a kernel sink on port reads
 * them. Same MTU, no offloads.
 */
#ifndef JKT_BENCH_KERNEL_TUN_H
#define JKT_BENCH_KERNEL_TUN_H

#include <stdint.h>

/* MB/s moved from the first write to the sink's last read, or -1. */
double bench_kernel_tun(unsigned mtu, int family, uint16_t port, uint64_t bytes);

#endif
