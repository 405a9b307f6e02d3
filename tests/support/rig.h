/* SPDX-License-Identifier: MIT */
/*
 * A rig for the threaded API without a kernel: handle `h` (jktcp at
 * 198.18.0.2) whose peer is a second adapter B (198.18.0.1) driven by a
 * pump thread that also carries the frames between their two packet ports
 * (the ports medium of b2blink.h). B listens on RIG_PORT and, by mode,
 * echoes what it receives, accepts and never reads, or never even sees a
 * frame (a black hole: connects hang). Other ports answer SYNs with RST
 * (connection refused). Lossless unless rig_opts.faults puts h's end
 * through the fault transport.
 *
 * Also a thread-free pair of adapters (struct rig_pair) for the
 * single-threaded API, and small helpers the threaded tests share.
 *
 * Criterion-free (tests/support/minitest.h), so the same tests also run under
 * ThreadSanitizer (make test-tsan).
 */
#ifndef JKT_RIG_H
#define JKT_RIG_H

#include "b2blink.h"
#include "jktcp.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RIG_PORT 80       /* B serves this port by mode */
#define RIG_RESET_PORT 81 /* B accepts and at once resets every connection */
#define RIG_MAX_PEER_CONNS 2048

enum rig_mode {
    RIG_ECHO = 0,      /* B echoes everything (until its peer closes); what does not
                          fit its send buffer (4 MiB) is lost: keep less unechoed */
    RIG_NOREAD = 1,    /* B accepts and never reads: windows close */
    RIG_BLACKHOLE = 2, /* frames from h are dropped: SYNs go unanswered */
};

struct rig_opts {
    int mode;         /* enum rig_mode */
    long sndbuf;      /* h's JKTCP_OPT_SNDBUF (0: default) */
    long rcvbuf;      /* h's and B's JKTCP_OPT_RCVBUF (0: default) */
    long max_conns;   /* h's JKTCP_OPT_MAX_CONNS (0: default) */
    long rto_init_ms; /* h's initial RTO (0: default 1000) */
    long max_retries; /* h's retries (0: default) */
    long rto_min_ms;  /* h's JKTCP_OPT_RTO_MIN_MS (0: default 200) */
    long peer_rto_min_ms; /* B's JKTCP_OPT_RTO_MIN_MS (0: default 200) */
    /* h's transport through the fault transport (NULL: lossless): its in
     * and out directions are the link's B->h and h->B. */
    const jktcp_fault_config *faults;
};

struct rig {
    struct rig_opts o;
    struct b2b_link link; /* ports; end a's adapter is h's, end b is B */
    jktcp_conn_listener *bl, *brl;
    atomic_int mode; /* enum rig_mode, switchable while running */
    atomic_int b_connects, b_port; /* connects B should open (rig_b_connect) */
    jktcp_handle h;
    jktcp_conn **bconns; /* B's accepted connections */
    int nb;
    atomic_bool stop;
    atomic_ulong frames;
    pthread_t th;
    bool running, handle_closed;
};

/* Build and start (asserts on failure). opts NULL: echo, defaults. */
void rig_up(struct rig *r, const struct rig_opts *opts);
/* Close h (unless the test did), stop the pump, free everything. */
void rig_down(struct rig *r);
/* Have B open n connections to h's port (its pump thread does it: B is
 * single-threaded). They are served like accepted ones. */
void rig_b_connect(struct rig *r, int port, int n);
/* Switch B's behaviour (e.g. NOREAD to ECHO: B starts reading). */
void rig_set_mode(struct rig *r, int mode);
/* Connect to B and, in echo mode, check one round trip. Asserts. */
jktcp_stream rig_connect(struct rig *r);

/* Read exactly n bytes (or fail with what read returned). */
long rig_read_exact(jktcp_stream s, void *buf, size_t n, int timeout_ms);

/* Monotonic milliseconds. */
double rig_now_ms(void);

/* poll() fd for POLLIN (EINTR retried): readable within timeout_ms? */
bool rig_fd_readable(int fd, int timeout_ms);

/* A thread parked in one blocking call, for tests of what wakes it. */
enum rig_op { RIG_OP_READ, RIG_OP_WRITE, RIG_OP_ACCEPT, RIG_OP_CONNECT };

struct rig_blocked {
    int op;           /* enum rig_op */
    jktcp_stream s;   /* READ / WRITE */
    jktcp_listener l; /* ACCEPT */
    jktcp_handle h;   /* CONNECT */
    int port;         /* CONNECT */
    int timeout_ms;   /* of the call (a missed wake-up then fails, not hangs) */
    atomic_bool started, returned;
    long result;
    jktcp_stream out; /* ACCEPT / CONNECT */
    double t_ret;     /* rig_now_ms() when the call returned */
    pthread_t th;
};

const char *rig_op_name(int op);
void rig_blocked_start(struct rig_blocked *b);
/* Wait until every thread entered its call and 200 ms more; assert none
 * returned yet. */
void rig_blocked_settle(struct rig_blocked *b, int n);
/* Join (asserting it ends within 10 s); the result. */
long rig_blocked_join(struct rig_blocked *b);
/* Fill s's send buffer (the peer does not read): writes until -EAGAIN. */
void rig_fill(jktcp_stream s);

/* Adapters A (198.18.0.2) and B (198.18.0.1) over two packet ports, no
 * threads: frames move only when the test moves them (rig_pair_connect
 * does). B listens on RIG_PORT (backlog 0). */
struct rig_pair {
    struct b2b_link link; /* ports */
    jktcp_adapter *a, *b; /* link.a.ad, link.b.ad */
    jktcp_conn_listener *bl;
};

/* Build (asserts on failure). */
void rig_pair_up(struct rig_pair *p);
/* Free both adapters (their listeners too) and the ports. */
void rig_pair_down(struct rig_pair *p);
/* A connects to B by hand; returns A's end (asserted ESTABLISHED), B's
 * in *bc. */
jktcp_conn *rig_pair_connect(struct rig_pair *p, jktcp_conn **bc);

#endif
