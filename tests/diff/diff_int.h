/* SPDX-License-Identifier: MIT */
/* Internals of the differential suite shared by its files (see diff.h). */
#ifndef JKT_DIFF_INT_H
#define JKT_DIFF_INT_H

#include "diff.h"

#include <setjmp.h>

/* One system under test: the application side and the peer's frames. */
struct dx_sys {
    const char *name;
    int (*begin)(struct dx *x);
    void (*end)(struct dx *x);
    int (*listen)(struct dx *x, int backlog);
    int (*accept)(struct dx *x, int timeout_ms);
    int (*connect)(struct dx *x);
    int (*connect_wait)(struct dx *x, int timeout_ms);
    long (*write)(struct dx *x, const void *b, size_t n);
    long (*read)(struct dx *x, void *b, size_t n, int timeout_ms);
    int (*shutdown)(struct dx *x);
    int (*close)(struct dx *x);
    int (*frame_out)(struct dx *x, const void *f, size_t n);        /* peer -> SUT */
    long (*frame_in)(struct dx *x, void *buf, size_t cap, int ms); /* SUT -> peer */
};

extern const struct dx_sys dx_kernel, dx_jktcp;

#define DX_MAX_OPTS 8

struct dx {
    const struct dx_sys *sys;
    void *impl;
    int family;
    struct jk_addr sut, peer;
    uint16_t sut_port, peer_port;
    long opts[DX_MAX_OPTS]; /* by enum dx_option; 0 = default */
    bool jk_no_sack, jk_no_ts; /* jktcp with SACK / timestamps off (the can-fail check) */
    /* the flow, from the peer's side */
    uint32_t irs;       /* the peer's ISS */
    uint32_t iss;       /* the SUT's ISS (learned) */
    bool iss_known;
    bool synced;        /* both SYNs seen: the invariants on options apply */
    bool ts, sack;      /* negotiated */
    bool ts_offered, sack_offered;
    int ws_offer;       /* the shift our SYN offered (-1: none) */
    bool our_syn_sent, sut_syn_seen;
    struct jk_tcp_opts sut_syn_opt;
    int our_ws, sut_ws; /* shifts in use (-1: no scaling) */
    uint32_t our_mss;   /* what the peer announced (0: none) */
    uint32_t our_tsval; /* the peer's TS clock */
    uint32_t sut_tsval; /* the last TSval the SUT sent: echoed */
    uint32_t our_ack, our_wnd; /* the window edge the peer advertised */
    bool edge_known;
    /* outcome */
    char out[16384];
    size_t outlen;
    char err[512];
    bool failed;
    jmp_buf bail;
    uint64_t t0_us;
    struct dx_seg seg; /* dx_next's */
};

/* diff_peer.c */
void dx_run_begin(struct dx *x);
/* Check a frame from the SUT: fills x->seg, false if it is not this flow.
 * Broken invariants fail the run. */
bool dx_take_frame(struct dx *x, const uint8_t *f, size_t n);

#endif
