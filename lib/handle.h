/* SPDX-License-Identifier: MIT */
/*
 * Threaded handle internals, shared by handle.c (the I/O thread, the
 * command queue, handle calls), stream.c and listener.c.
 *
 * Who owns what:
 *  - The I/O thread alone touches the adapter, its connections and the
 *    fields marked "I/O thread" below.
 *  - Callers reach an object through its id (idtable.h): a call holds a
 *    reference for its duration. Streams' rings belong to their connection
 *    (the engine's buffers): callers touch them only inside an RCU
 *    read-side section after checking `dead`, so the I/O thread can free
 *    them at stop after one grace period (jk_rcu_synchronize).
 *  - A stream or listener is freed when both of its owners let go
 *    (`owners`, starting at 2): the caller side (its last reference) and
 *    the I/O side (once no command of the object can still be queued).
 *    A caller side that can still hand over to the I/O thread does so with
 *    a release command instead, and the I/O thread frees it.
 */
#ifndef JK_HANDLE_H
#define JK_HANDLE_H

#include "adapter.h"
#include "idtable.h"
#include "list.h"
#include "platform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <urcu/wfcqueue.h>

enum jk_cmd_kind {
    CMD_CONNECT = 1,
    CMD_LISTEN,
    CMD_UNLISTEN,
    CMD_SHUTDOWN,
    CMD_CLOSE,
    CMD_ABORT,
    CMD_RELEASE,
    CMD_KICK,
    CMD_PCAP,
    CMD_STATS,
    CMD_INFO,
    CMD_SET_CC,
    CMD_STOP,
};

/* A request from a caller thread to the I/O thread. Synchronous commands
 * live on the caller's stack and are completed through `done` (a futex
 * word); asynchronous ones (connect, close, release, kick, unlisten) are
 * embedded in their stream or listener. */
struct jk_cmd {
    struct cds_wfcq_node node;
    int kind;
    int port, timeout_ms, backlog, value;
    const char *path;
    struct jk_stream *s;
    struct jk_listener *l;
    void *out;
    int result;
    atomic_uint done;
};

/* Stream connection progress, as callers see it. QUEUED: the connect
 * command has not run yet (setup errors are still possible). */
enum { JK_QUEUED = 0, JK_CONNECTING = 1, JK_CONNECTED = 2, JK_FAILED = 3 };

struct jk_stream {
    struct jk_obj obj;
    struct jk_handle *h;
    atomic_uint seq;        /* futex word, bumped on every event */
    atomic_int waiters;
    atomic_int err;         /* published by the I/O thread */
    atomic_int cstate;      /* JK_QUEUED / _CONNECTING / _CONNECTED / _FAILED */
    atomic_int setup;       /* connect: 1 until the I/O thread ran it, then 0 or its error */
    atomic_bool eof, closed, dead, wr_shut, kicked;
    atomic_uint adv_wnd;    /* window in our last ACK */
    atomic_bool rd_since;   /* the reader took data since the I/O thread looked */
    _Atomic(struct jk_ring *) snd, rcv; /* the connection's; NULL before bind and after stop */
    struct jk_ready rd_ready, wr_ready;
    struct jk_lock rd_lock, wr_lock;
    atomic_int owners;
    struct jk_cmd connect_cmd, kick, close_cmd, release_cmd;
    struct cds_wfcq_node acc_node; /* in its listener's accept queue */
    /* I/O thread */
    struct jktcp_conn *c;
    bool close_done;
    struct jk_list io_link; /* on h->streams */
    struct jk_list wake_link; /* on h->wake_pending: waiters to wake after this step */
};

struct jk_listener {
    struct jk_obj obj;
    struct jk_handle *h;
    struct cds_wfcq_head qhead; /* accepted streams: I/O thread enqueues */
    struct cds_wfcq_tail qtail;
    atomic_int queued;          /* streams in the queue (backlog accounting) */
    atomic_uint seq;
    atomic_int waiters;
    atomic_bool closed, dead;
    struct jk_ready ready;
    atomic_int owners;
    struct jk_cmd unlisten_cmd;
    /* I/O thread */
    struct jktcp_conn_listener *cl;
    struct jk_list io_link; /* on h->listeners */
};

struct jk_handle {
    struct jk_obj obj;
    struct jktcp_adapter *a;
    pthread_t thread;
    struct jk_wakefd wake;    /* signalled only while the I/O thread sleeps */
    struct cds_wfcq_head qhead;
    struct cds_wfcq_tail qtail;
    atomic_int sleeping, stopping;
    atomic_uint enq;          /* submits in flight; a futex word while stopping */
    atomic_int irefs;         /* the handle's own + one per stream/listener record */
    atomic_bool close_called;
    atomic_int terr;          /* the transport's error, published */
    atomic_ulong wakeups, sleeps, caller_wakes;
    uint64_t connect_spin_ns; /* 2 x JKTCP_OPT_BUSY_POLL_US, fixed at start (connect_spin) */
    atomic_int connect_spinners; /* callers in connect_spin: one at a time */
    /* I/O thread */
    struct jk_list streams;   /* every stream it knows */
    struct jk_list wake_pending; /* streams whose waiters this step owes a wake-up */
    struct jk_list listeners; /* every listener it knows */
    int linger_ms;
    bool closing;     /* STOP received */
    uint32_t spin_ns; /* the I/O thread's busy-poll window (io_spin_adapt) */
};

/* handle.c */
int jk_submit(struct jk_handle *h, struct jk_cmd *cmd); /* 0 or -ESHUTDOWN */
int jk_call(struct jk_handle *h, struct jk_cmd *cmd);   /* submit and wait for the answer */
void jk_complete(struct jk_cmd *cmd, int result);
struct jk_handle *jk_handle_get(jktcp_handle id); /* with a reference, or NULL */
void jk_handle_iref(struct jk_handle *h);
void jk_handle_iunref(struct jk_handle *h);

#endif
