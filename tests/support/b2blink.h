/* SPDX-License-Identifier: MIT */
/*
 * The back-to-back link every two-adapter rig is built on: jktcp adapters
 * B (the server end, 198.18.0.1) and A (the client end, 198.18.0.2) over
 * one of two media:
 *  - B2B_LINK_PORTS: two in-process packet ports (jktcp_port). A frame moves
 *    only when the link's owner carries it (b2b_link_carry): the pump
 *    thread of the threaded-API rig, or a test by hand (rig.h);
 *  - B2B_LINK_SOCKETPAIR: an AF_UNIX SOCK_SEQPACKET socketpair with room for
 *    a full window of 1500-byte frames in flight (4 MiB each way, where
 *    SO_*BUFFORCE is allowed). The kernel moves the frames; the owner drives
 *    each adapter (the fault suite: one thread per adapter, faultlink.h).
 * Each end, by its options: through the fault-injecting transport
 * (jktcp_transport_faulty); on a socketpair, through caller functions whose
 * reads and writes can be made to fail (struct b2b_link_flaky); a pcap of
 * everything its adapter receives and sends.
 *
 * The link builds and frees; it starts no thread and drives nothing. Its
 * functions return 0 or a negative errno and the callers assert, so it
 * needs no Criterion: the minitest rigs use it under ThreadSanitizer too
 * (make test-tsan).
 */
#ifndef JKT_B2BLINK_H
#define JKT_B2BLINK_H

#include "jktcp.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define B2B_SERVER_IP "198.18.0.1" /* end b */
#define B2B_CLIENT_IP "198.18.0.2" /* end a */
#define B2B_LINK_FRAME_MAX 65575   /* the largest frame a port carries */

enum b2b_link_medium {
    B2B_LINK_PORTS = 1,
    B2B_LINK_SOCKETPAIR = 2,
};

/* An end's inner transport over its socket with switchable errors: while
 * rerr / werr is nonzero, read / write returns it instead of doing I/O.
 * Any thread may switch them; the link sets fd (and makes it
 * non-blocking). */
struct b2b_link_flaky {
    int fd;
    atomic_int rerr, werr;
};

struct b2b_link_end_opts {
    const jktcp_fault_config *faults; /* wrap the end in the fault transport (NULL: not) */
    struct b2b_link_flaky *flaky;     /* socketpair only (ports: -EINVAL) */
    const char *pcap;                 /* capture this end's frames to this file (NULL: no) */
};

struct b2b_link_opts {
    int medium; /* enum b2b_link_medium */
    struct b2b_link_end_opts a, b; /* a: client end, b: server end */
};

struct b2b_link_end {
    jktcp_adapter *ad;   /* NULL once taken (b2b_link_take) */
    jktcp_transport *ft; /* the fault wrapper (owned by ad), NULL without faults;
                            usable until ad is freed, wherever ad went */
    jktcp_port *port;    /* ports: this end's port (the host's reference) */
    int fd;              /* socketpair: this end's socket; else -1 */
};

struct b2b_link {
    int medium;              /* 0: not up (b2b_link_down does nothing) */
    struct b2b_link_end a, b; /* a: client end, b: server end */
    uint8_t *buf;            /* ports: one frame, for b2b_link_carry */
};

/* Build the medium and both ends. 0, or a negative errno with nothing
 * left allocated. */
int b2b_link_up(struct b2b_link *l, const struct b2b_link_opts *o);
/* Hand an end's adapter on (to jktcp_handle_start): b2b_link_down leaves
 * it to its new owner. The end's ft, port and fd stay the link's. */
jktcp_adapter *b2b_link_take(struct b2b_link_end *e);
/* Ports: move every frame end a (a_to_b) or end b sent to the other end,
 * or discard them (drop). True if there was any. One thread at a time. */
bool b2b_link_carry(struct b2b_link *l, bool a_to_b, bool drop);
/* Free the adapters not taken, then the ports or sockets. Safe on a link
 * that is not up (zeroed) and twice. */
void b2b_link_down(struct b2b_link *l);

#endif
