/* Threaded handle internals: the I/O thread, the command queue, streams. */
#ifndef JK_HANDLE_H
#define JK_HANDLE_H

#define _LGPL_SOURCE /* inline liburcu fast paths */
#include "adapter.h"

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
    CMD_STOP,
};

/* A request from a caller thread to the I/O thread. Synchronous commands
 * live on the caller's stack and are completed through `done` (a futex
 * word); asynchronous ones (close, release) are embedded in the stream. */
struct jk_cmd {
    struct cds_wfcq_node node;
    int kind;
    bool async;
    uint16_t port;
    int timeout_ms, backlog;
    const char *path;
    struct jktcp_stream *s;
    struct jktcp_listener *l;
    void *out;
    int result;
    atomic_uint done;
};

struct jktcp_stream {
    atomic_int refs;
    atomic_int active;      /* calls inside the stream right now */
    atomic_uint seq;        /* futex word, bumped on every event */
    atomic_int waiters;
    atomic_int err;         /* published by the I/O thread */
    atomic_bool eof, closed, dead, detached, wr_shut, kicked, efd_set;
    atomic_uint adv_wnd;    /* window in our last ACK */
    atomic_int efd;
    struct jktcp_handle *h;
    struct jktcp_conn *c;   /* I/O thread's; NULL once released */
    struct jk_ring *snd, *rcv;
    pthread_mutex_t rd_lock, wr_lock;
    struct jk_cmd kick, close_cmd, release_cmd;
    struct jk_cmd *connect_cmd; /* pending connect (I/O thread) */
    bool close_done;            /* I/O thread: close semantics applied */
    struct jktcp_stream *io_next, *io_prev; /* I/O thread's list */
    struct jktcp_stream *acc_next;          /* listener's queue */
};

struct jktcp_listener {
    struct jktcp_handle *h;
    struct jktcp_conn_listener *cl; /* I/O thread's */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct jktcp_stream *head, *tail;
    bool closed, dead;
    atomic_int active;
    struct jktcp_listener *io_next, *io_prev; /* I/O thread's list */
};

struct jktcp_handle {
    struct jktcp_adapter *a;
    pthread_t thread;
    int efd;
    struct cds_wfcq_head qhead;
    struct cds_wfcq_tail qtail;
    atomic_int sleeping, stopping, enq, refs;
    atomic_ulong wakeups;
    struct jktcp_stream *streams; /* I/O thread's list of live streams */
    struct jktcp_listener *listeners; /* I/O thread's list */
    int linger_ms;
    bool closing; /* I/O thread: STOP received */
};

#endif
