/* SPDX-License-Identifier: MIT */
/*
 * The lossy link to the Linux kernel, written once for the fault suite's
 * kernel tests (tests/system/test_fault_kernel.c) and the loss benchmark
 * (tools/jktcp-bench-loss): inside a namespace and TUN device made with
 * netns.h, the kernel peer tuned so that what is measured is jktcp and not
 * the kernel's own limits (jkt_lossy_kernel), and jktcp's adapter over the
 * TUN fd through the fault-injecting transport (jkt_lossy_adapter).
 * Criterion-free. Functions return 0 or a negative errno.
 */
#ifndef JKT_LOSSYLINK_H
#define JKT_LOSSYLINK_H

#include "jktcp.h"
#include "netns.h"

#include <stddef.h>

/* jktcp's retransmission settings on this link: the kernel's floor (the
 * route's rto_min below), a ceiling of 1 s like the kernel's, and retries
 * enough not to give up at 20% loss. */
#define JKT_LOSSY_RTO_MIN_MS 20
#define JKT_LOSSY_RETRIES 15
#define JKT_LOSSY_RTO_MAX_MS 1000

/*
 * The kernel side of the link, in the current namespace, on IPv4 only
 * (198.18.0.0/24 on tun): route rto_min 20 ms, net.ipv4.tcp_rto_max_ms 1000,
 * tcp_retries2 255 and, unless default_cc is NULL, that namespace default
 * congestion control. The command's output (for logs: the route as the
 * kernel shows it) goes to out. The shell's status (0 = all applied), or
 * -errno.
 */
int jkt_lossy_kernel(const struct jkt_tun *tun, const char *default_cc, char *out, size_t cap);

/* RTO floor rto_min and initial RTO 100 ms; retries and RTO ceiling rto_max
 * unless 0. 0 or the first option's error. */
int jkt_fast_rto(jktcp_adapter *a, long rto_min, long retries, long rto_max);

/*
 * jktcp's side: an adapter (JKT_LOCAL_IP4 -> JKT_KERNEL_IP4) over
 * jktcp_transport_fd(tunfd, packets) wrapped in jktcp_transport_faulty(cfg),
 * with the JKT_LOSSY_* retransmission settings. *ft is the faulty wrapper
 * (owned by *a; for jktcp_transport_fault_stats). 0 or -errno; on error
 * nothing is left to free but the TUN fd.
 */
int jkt_lossy_adapter(int tunfd, const jktcp_fault_config *cfg, jktcp_transport **ft,
                      jktcp_adapter **a);

/* The loss matrix's profile: drop `loss` of the frames, and duplicate and
 * reorder half as many (a reordered frame goes out after three later
 * ones, or after 2 ms). */
jktcp_fault_dir loss_faults(double loss);

#endif
