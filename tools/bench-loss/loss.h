/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench-loss (tools/jktcp-bench-loss.c): what its files share. One
 * run is one transfer of a sender's bytes over the lossy link of
 * tests/support/lossylink.h, in a namespace of its own (xfer.c); the
 * results are printed as they come and then as a table (table.c).
 */
#ifndef JKT_BENCH_LOSS_H
#define JKT_BENCH_LOSS_H

#include "jktcp.h"

#include <stdbool.h>
#include <stdint.h>

/* Who sends: jktcp (the kernel sinks) with a congestion controller, or the
 * kernel (jktcp reads) with one of its own. */
struct lb_sender {
    char label[32];    /* "jktcp newreno", "kernel bbr" */
    bool kernel;
    long jk_cc;        /* !kernel: JKTCP_OPT_CONGESTION value */
    const char *k_cc;  /* kernel: TCP_CONGESTION name */
    bool na;           /* not available here: every run is n/a */
    char na_why[96];
};

struct lb_params {
    double loss;       /* fraction of frames dropped each way */
    uint64_t seed;     /* the fault wrapper's seed */
    uint64_t bytes;
    int limit_s;       /* per transfer, from the connect */
};

enum lb_status {
    LB_OK = 0,
    LB_LIMIT,          /* the limit ran out: bytes is what moved */
    LB_NA,             /* the sender is not available (why) */
    LB_ERR,            /* failed: why (a data mismatch among them) */
};

/* The kernel's counters in the run's namespace (-1: no such counter). */
struct lb_kstats {
    long retrans, timeouts, probes, recoveries, spurious_rto, undo;
};

struct lb_result {
    int status;
    char why[128];
    double secs;       /* connect to the last byte at the receiver */
    uint64_t bytes;    /* bytes the receiver had then */
    jktcp_info info;   /* jktcp's connection, sender or receiver */
    struct lb_kstats k;
};

/* One transfer in the calling process's namespace, fresh and holding
 * nothing yet: TUN device, the kernel's tuning, server, adapter, transfer,
 * verification, teardown. Fills *r. */
void lb_run(const struct lb_sender *s, const struct lb_params *p, struct lb_result *r);

/* Whether this jktcp takes congestion controller v: 0, or why not in why
 * (an adapter over a socketpair; no namespace needed). */
int lb_jktcp_cc_check(long v, char *why, size_t cap);

/* Results of nloss x nseeds x nsenders runs, [l][s][k] at
 * res[(l * nseeds + s) * nsenders + k]. */
struct lb_table {
    const double *loss;   /* percent */
    int nloss, nseeds, nsenders;
    const struct lb_sender *senders;
    const struct lb_result *res;
    uint64_t bytes;
    int limit_s;
};

/* Run fn(arg, res) in a child process in a fresh network namespace of its
 * own; res (size bytes, plain data) comes back through a pipe. 0, or -1
 * with why (no namespace, the child did not answer limit_s + 60 s; it is
 * killed). jktcp-bench-loss.c. */
typedef void (*lb_iso_fn)(const void *arg, void *res);
int lb_isolated(lb_iso_fn fn, const void *arg, void *res, size_t size, int limit_s, char *why,
                size_t cap);

/* ---- shared links (shared.c): flows sharing one link ---------------- */

#define LB_MAX_FLOWS 8

/* Which shared-link case: n jktcp flows on one adapter, each uploading
 * to a verifying kernel sink of its own, all for secs seconds; with
 * kernel_cc, also one Linux kernel flow through the same link (kshare.c). */
struct lb_shared_case {
    char label[48];
    bool bottleneck;          /* the 100 Mbit/s, 20 ms RTT, 256 KiB-queue link; else loss */
    double loss;              /* !bottleneck: loss_faults(loss) both ways */
    uint64_t seed;
    int secs;
    int nflows;               /* jktcp flows (0 with a kernel flow: the kernel alone) */
    long cc[LB_MAX_FLOWS];    /* each flow's JKTCP_OPT_CONGESTION */
    /* bottleneck only: a kernel TCP upload with this TCP_CONGESTION shares
     * the queue (kshare.c); "" = none. Its result is f[nflows]. */
    char kernel_cc[16];
    const char *na_why;       /* set: not run, n/a for this reason */
};

struct lb_flow_result {
    uint64_t bytes;           /* at the sink when the time was up */
    double mbit_s;            /* bytes * 8 / secs */
    double srtt_mean_ms, srtt_max_ms; /* jktcp_info.srtt_us sampled every 50 ms */
    uint32_t retransmits, timeouts;
    bool bad_data;            /* the sink found a byte off the pattern */
};

/* What the switch of a kernel-sharing case moved (kshare.c), frames. */
struct lb_switch_counts {
    uint64_t up_jk, up_k;     /* into the shared link: from jktcp's adapter, the kernel client */
    uint64_t down_jk, down_k; /* out of it (the sinks' ACKs), to each */
    uint64_t stray;           /* not IPv4 or to no one's address: not forwarded */
    uint64_t lost;            /* a full socket pair or TUN write error: lost outside the link */
};

struct lb_shared_result {
    int status;               /* LB_OK / LB_NA / LB_ERR (why) */
    char why[128];
    double secs;              /* the measured interval (connects done to stop) */
    struct lb_flow_result f[LB_MAX_FLOWS];
    jktcp_fault_link_stats link; /* the bottleneck's (link_out) */
    struct lb_switch_counts sw;  /* kernel_cc cases */
};

/* Rate and delays of the bottleneck case. */
#define LB_BN_RATE_BPS 100000000ull
#define LB_BN_DELAY_US 10000u /* each way: RTT 20 ms */
#define LB_BN_QUEUE (256u * 1024u)

/* Flows in a case: the jktcp ones and the kernel's, if any. */
int lb_case_flows(const struct lb_shared_case *c);

/* ---- a kernel flow sharing the bottleneck (kshare.c) ------------------
 * The shared link is one fault transport (faulty over the server's TUN)
 * driven by a switch thread: jktcp's adapter (over a socket pair) and a
 * kernel client in a namespace of its own (behind a second TUN) both send
 * into it; what comes out the other way goes to each by destination. */
struct lb_kshare;
struct jkt_tun; /* tests/support/netns.h */

/* Build it beside tun (the sinks' side, in the calling thread's namespace):
 * the switch, the client's namespace and TUN, the kernel flow's verifying
 * sink, the client connected with TCP_CONGESTION kernel_cc (not sending
 * yet), and *a, jktcp's adapter (its RTO settings as jkt_lossy_adapter's)
 * for the caller's flows. LB_OK, or LB_NA / LB_ERR with why; then nothing
 * is left to free. */
int lb_kshare_open(const struct jkt_tun *tun, const jktcp_fault_config *cfg,
                   const char *kernel_cc, struct lb_kshare **out, jktcp_adapter **a, char *why,
                   size_t cap);
/* The kernel flow starts sending. */
void lb_kshare_go(struct lb_kshare *k);
/* Take one srtt sample of the kernel flow (TCP_INFO). */
void lb_kshare_sample(struct lb_kshare *k);
/* The kernel flow's bytes at its sink and samples so far, over secs. */
void lb_kshare_result(struct lb_kshare *k, double secs, struct lb_flow_result *f);
/* The shared link's counters (link_out: the data direction). */
void lb_kshare_link(struct lb_kshare *k, jktcp_fault_link_stats *l);
/* Stop and free everything (after the adapter is freed); the kernel
 * flow's retransmits and RTOs into *f, the switch's counts into *sw; LB_OK,
 * or LB_ERR with why (the sink found a bad byte, the client failed). */
int lb_kshare_close(struct lb_kshare *k, struct lb_flow_result *f, struct lb_switch_counts *sw,
                    char *why, size_t cap);

/* One case in a namespace of its own (lb_isolated); fills *r. */
void lb_shared_run(const struct lb_shared_case *c, struct lb_shared_result *r);
/* A line per run as it ends, and the tables. */
void lb_print_shared_run(const struct lb_shared_case *c, const struct lb_shared_result *r);
void lb_print_bottleneck_table(const struct lb_shared_case *c, const struct lb_shared_result *r,
                               int n);
void lb_print_fairness_table(const struct lb_shared_case *c, const struct lb_shared_result *r,
                             int n);
/* Jain's fairness index of x[0..n-1]: (sum x)^2 / (n sum x^2), 1 = equal. */
double lb_jain(const double *x, int n);

/* One line for one run (stdout). */
void lb_print_run(const struct lb_table *t, int l, int seed, int k);
/* The markdown summary: medians, seeds, ratios, the worst seed at 20%. */
void lb_print_table(const struct lb_table *t);

#endif
