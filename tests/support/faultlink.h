/* SPDX-License-Identifier: MIT */
/*
 * The fault suite's link (tests/system/test_fault_*.c): the socketpair
 * medium of b2blink.h, each end through the fault-injecting transport
 * (jktcp_transport_faulty), one thread per adapter (198.18.0.1 listens,
 * 198.18.0.2 connects; the timings of the suite depend on this driving);
 * a duplex pattern transfer that drives one connection (run_xfer); reports
 * of what the faults and the retransmissions did; 32 threaded-handle
 * streams echoing through a lossy link (run_32_clients). Criterion only.
 *
 * Every failure message carries the seed; JKTCP_FAULT_SEED=<n> in the
 * environment replaces the default seeds (seed_or); JKTCP_FAULT_PCAP=<prefix>
 * captures each end.
 */
#ifndef JKT_FAULTLINK_H
#define JKT_FAULTLINK_H

#include "b2blink.h"
#include "jktcp.h"
#include "lossylink.h" /* loss_faults, jkt_fast_rto */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MiB (1024u * 1024u)

#define CHUNK (64u * 1024u)

struct xfer {
    uint64_t send_bytes, recv_bytes; /* what to send / expect */
    uint32_t send_seed, recv_seed;
    int timeout_ms;                  /* whole transfer */
    /* results */
    uint64_t sent, got;
    int err;          /* 0, or the error that ended it */
    uint64_t mismatch; /* stream offset of the first bad byte, UINT64_MAX if none */
    double secs;
    jktcp_info info;
};

#define B2B_PORT 5001
/* The retransmission floor on these sub-millisecond links (both ends). */
#define B2B_RTO_MIN_MS 5

struct b2b_side {
    jktcp_adapter *a;
    jktcp_transport *ft; /* the faulty wrapper (owned by a) */
    bool server;
    struct xfer x;
    int setup_err;
    int read_block_ms; /* >0: instead of a transfer, block in one read this long */
    ssize_t block_result;
    atomic_bool done;  /* this side's calls have returned */
    atomic_bool *stop; /* keep driving the adapter until the test says stop */
    jktcp_conn_listener *l;
};

struct b2b {
    struct b2b_link link; /* socketpair: end b is the server's, end a the client's */
    struct b2b_side s, c;
    uint64_t seed;
    atomic_bool stop;
};

#define HSTREAMS 32
#define HCHUNK (16u * 1024u)

struct hstream {
    jktcp_handle h;
    uint16_t port;
    uint64_t bytes;
    uint32_t seed;
    int err;
    uint64_t echoed, mismatch;
    jktcp_info info;
};

/* JKTCP_FAULT_SEED from the environment, else dflt. */
uint64_t seed_or(uint64_t dflt);
/* nanosleep ms milliseconds. */
void msleep(unsigned ms);
/* Write send_bytes, shutdown, read recv_bytes and EOF, verifying. */
void run_xfer(jktcp_adapter *a, jktcp_conn *c, struct xfer *x);
/* jkt_fast_rto (lossylink.h), asserting. */
void set_fast(jktcp_adapter *a, long rto_min, long retries, long rto_max);
/* Figures to stderr: a connection, a fault wrapper's counters, an adapter. */
void print_info(const char *tag, const jktcp_info *n);
void print_fault_stats(const char *tag, jktcp_transport *t);
void print_adapter(const char *tag, jktcp_adapter *a);
/* The suite's link: a socketpair, cfg_s / cfg_c the faults on the server's /
 * client's transport, fl_s / fl_c (NULL: none) switchable errors under
 * them, and a pcap of each end if JKTCP_FAULT_PCAP names one. Asserts. */
void b2b_fault_link(struct b2b_link *l, const jktcp_fault_config *cfg_s,
                    const jktcp_fault_config *cfg_c, struct b2b_link_flaky *fl_s,
                    struct b2b_link_flaky *fl_c);
/* That link as two sides, the server listening on B2B_PORT. */
void b2b_up(struct b2b *b, const jktcp_fault_config *cfg_s, const jktcp_fault_config *cfg_c,
            struct b2b_link_flaky *fl_s, struct b2b_link_flaky *fl_c);
/* One thread per side: accept / connect, then run_xfer (or block in a
 * read), then keep the adapter moving until b2b_join. */
void b2b_start(struct b2b *b, pthread_t th[2]);
/* Join within limit_ms (the test fails rather than hangs). */
void b2b_join(struct b2b *b, pthread_t th[2], int limit_ms);
void b2b_down(struct b2b *b);
/* Figures of both sides to stderr; assertions on one side's transfer. */
void b2b_report(const char *name, struct b2b *b);
void b2b_check(struct b2b *b, struct b2b_side *sd, const char *who);
/* Both sides send and expect `bytes` (seeds 11 / 22). */
void b2b_xfer_setup(struct b2b *b, uint64_t bytes, int timeout_ms);
/* 32 client threads, each echoing `per_stream` bytes through port. */
void run_32_clients(const char *name, jktcp_handle h, uint16_t port, uint64_t per_stream,
                    uint64_t seed, jktcp_transport *ft);

#endif
