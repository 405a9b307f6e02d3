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

/* One line for one run (stdout). */
void lb_print_run(const struct lb_table *t, int l, int seed, int k);
/* The markdown summary: medians, seeds, ratios, the worst seed at 20%. */
void lb_print_table(const struct lb_table *t);

#endif
