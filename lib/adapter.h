/* SPDX-License-Identifier: MIT */
/* Adapter internals shared by adapter.c (table, timers, loop) and the
 * public API files (api.c, conn.c). */
#ifndef JK_ADAPTER_H
#define JK_ADAPTER_H

#include "abi.h"
#include "reasm.h"
#include "tcp.h"

#include <urcu/compiler.h>

#define JK_HASH_BUCKETS 4096
#define JK_RST_QUEUE 32 /* resets owed to segments for no connection */

/* Public single-threaded calls: once a handle owns the adapter only its
 * I/O thread may touch it. */
#define CHECK_ADAPTER(a)                                                                   \
    do {                                                                                   \
        if (!(a))                                                                          \
            return -EINVAL;                                                                \
        if ((a)->owner)                                                                    \
            return -EBUSY;                                                                 \
    } while (0)

struct jktcp_conn_listener {
    struct jktcp_adapter *a;
    struct jk_list link;     /* adapter's listeners */
    uint16_t port;
    int backlog, pending; /* pending = half-open + not accepted */
    struct jk_list acc;      /* established, not yet accepted (acc_link) */
    void *owner;          /* threaded handle's listener */
    _Atomic int *handed;  /* the handle's count of streams not yet accepted */
};

/* A connection: the engine's state and what its owners keep about it.
 * The engine (tcp_*.c) sees only `tcp`; the adapter owns the rest, the
 * threaded handle `user`. */
struct jktcp_conn {
    struct jk_tcp tcp;
    struct jktcp_adapter *a;
    struct jktcp_conn *hnext;               /* hash chain (by ports) */
    struct jk_list all_link;                /* adapter's connections */
    struct jk_list dirty_link;              /* adapter's output list (linked: "dirty") */
    struct jktcp_conn_listener *listener;   /* passive, until accepted */
    struct jk_list acc_link;                /* listener's accept queue */
    struct jk_heap_node tnode;              /* in the adapter's timer heap, key: jk_tcp_deadline */
    bool hashed, queued, ephemeral;
    void *user; /* threaded handle's stream */
};

static inline struct jktcp_conn *jk_conn_of(struct jk_tcp *t)
{
    return caa_container_of(t, struct jktcp_conn, tcp);
}

struct jktcp_adapter {
    jktcp_transport *t;
    struct jk_tcp_env env; /* the engine's world: clock, addresses, MTU, settings */
    uint32_t max_conns;
    uint32_t busy_poll_us; /* JKTCP_OPT_BUSY_POLL_US (the handle's I/O thread) */
    uint64_t (*clock)(void *);
    void *clock_ctx;
    bool custom_clock;
    struct jk_reasm reasm; /* IP fragments being put together */
    int err; /* transport failure, sticky */
    bool input_more; /* the last step stopped with input still ready */
    bool mid_input;  /* an output pass between batches of a step's input (more
                        input follows it in the same step) */

    struct jktcp_conn *buckets[JK_HASH_BUCKETS];
    struct jk_list all;   /* every connection (all_link) */
    struct jk_list dirty; /* output pass to do (dirty_link), in order */
    struct jk_heap timers; /* connections with an armed timer, by deadline (tnode) */
    struct jk_list listeners; /* (link) */
    uint32_t nconns;

    struct jk_rst rstq[JK_RST_QUEUE];
    int nrst;

    jktcp_stats st;
    uint32_t rng;
    uint8_t *txbuf; /* one frame, reused for every segment we build */
    uint64_t eph_used[16384 / 64]; /* ephemeral ports taken */
    /* optional hook: a connection changed state (the threaded handle
     * uses it to wake waiters) */
    void (*on_conn_event)(struct jktcp_adapter *, struct jktcp_conn *);
    /* optional hook: the engine reported JK_TCP_IDLE (the handle trims
     * the send ring once no writer is in it) */
    void (*on_conn_idle)(struct jktcp_adapter *, struct jktcp_conn *);
    void *owner;
};

/* adapter.c: connections */
uint32_t jk_random(struct jktcp_adapter *a);
/* Send one built frame: stats, transport. 0 or -EAGAIN / error. */
int jk_adapter_send_frame(struct jktcp_adapter *a, const uint8_t *frame, size_t len);
void jk_adapter_mark_dirty(struct jktcp_conn *c);
/* Answer a segment for no connection with a RST (RFC 9293 §3.10.7.1). */
void jk_adapter_reset_for(struct jktcp_adapter *a, const struct jk_seg *seg);
void jk_adapter_queue_rst(struct jktcp_adapter *a, const struct jk_rst *r);
void jk_adapter_release(struct jktcp_conn *c); /* free if closed and released */


int jk_adapter_create(jktcp_transport *t, const char *local_ip, const char *peer_ip,
                      struct jktcp_adapter **out);
void jk_adapter_destroy(struct jktcp_adapter *a);

uint64_t jk_now(struct jktcp_adapter *a);
struct jktcp_conn *jk_adapter_lookup(struct jktcp_adapter *a, uint16_t lport, uint16_t rport);
struct jktcp_conn *jk_adapter_new_conn(struct jktcp_adapter *a, uint16_t lport, uint16_t rport,
                                       bool ephemeral, int *err);
/* The transport failed: every connection fails with err. */
void jk_adapter_fail(struct jktcp_adapter *a, int err);

/* One pass: drain input, fire timers, emit output. Returns the number of
 * frames and timers processed, or the adapter's error. Never blocks. */
int jk_adapter_step(struct jktcp_adapter *a);
int jk_adapter_output(struct jktcp_adapter *a);
/* Block in poll() until input, writability or the next timer, at most
 * timeout_ms (< 0: no limit but the timers). Never sleeps with a custom clock. */
int jk_adapter_wait(struct jktcp_adapter *a, int timeout_ms);
int jk_adapter_next_timeout(struct jktcp_adapter *a);
/* Drive the adapter (step, then wait) until cond(arg) holds: 0, -EAGAIN
 * once timeout_ms ran out (0: a single step; with a custom clock too), or
 * the adapter's error. Every blocking call of the single-threaded API. */
int jk_adapter_drive(struct jktcp_adapter *a, bool (*cond)(void *), void *arg, int timeout_ms);

/* Internal forms of public calls, for the I/O thread (no owner check). */
/* adapter_listen.c */
int jk_adapter_listen_internal(struct jktcp_adapter *a, int port, int backlog,
                               struct jktcp_conn_listener **out);
void jk_adapter_unlisten_internal(struct jktcp_conn_listener *l);
struct jktcp_conn *jk_adapter_listener_pop(struct jktcp_conn_listener *l);

#endif
