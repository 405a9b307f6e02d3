/* SPDX-License-Identifier: MIT */
/*
 * Threaded handle: the adapter runs on its own I/O thread; caller threads
 * reach it through
 *   - a wait-free command queue (liburcu cds_wfcq) plus a wake fd that is
 *     signalled only while the I/O thread sleeps, and
 *   - each stream's single-producer/single-consumer byte rings (stream.c).
 * This file holds the queue, the I/O thread's loop and stop sequence, and
 * the handle's own public calls. Handles are ids (idtable.h).
 */
#include "handle.h"
#include "listener.h"
#include "stream.h"

#include "abi.h"
#include "pcap.h"
#include "transport.h"
#include "tsan.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Command queue                                                      */
/* ------------------------------------------------------------------ */

static void wake_io(struct jk_handle *h)
{
    /* an RMW reads the latest `sleeping`: with the I/O thread's exchange
     * before it checks the queue, one of us sees the other */
    if (atomic_fetch_or(&h->sleeping, 0))
        jk_wakefd_signal(&h->wake);
}

/* A submit is over; the last one in flight while the I/O thread stops
 * wakes it (drain_final). With the fetch_sub before the load of
 * `stopping`, and the I/O thread's store before its load of `enq`, a
 * submit that sees no stop is one the I/O thread waits for. */
static void submit_done(struct jk_handle *h)
{
    if (atomic_fetch_sub(&h->enq, 1) == 1 && atomic_load(&h->stopping))
        jk_wake_all(&h->enq);
}

/* Enqueue unless the handle is stopping. The enq counter and stopping
 * flag form a Dekker pair with the I/O thread's final drain, so nothing
 * enqueued is ever left unanswered. */
int jk_submit(struct jk_handle *h, struct jk_cmd *cmd)
{
    atomic_fetch_add(&h->enq, 1);
    if (atomic_load(&h->stopping)) {
        submit_done(h);
        return -ESHUTDOWN;
    }
    cds_wfcq_node_init(&cmd->node);
    TSAN_RELEASE(cmd);
    cds_wfcq_enqueue(&h->qhead, &h->qtail, &cmd->node);
    submit_done(h);
    wake_io(h);
    return 0;
}

void jk_complete(struct jk_cmd *cmd, int result)
{
    cmd->result = result;
    atomic_store(&cmd->done, 1);
    jk_wake_all(&cmd->done);
}

/* Submit and wait for the I/O thread's answer. Always bounded: the I/O
 * thread answers every command at once (with -ESHUTDOWN when stopping),
 * so a signal handler does not cut this wait short. */
int jk_call(struct jk_handle *h, struct jk_cmd *cmd)
{
    atomic_init(&cmd->done, 0);
    int r = jk_submit(h, cmd);
    if (r < 0)
        return r;
    while (!atomic_load(&cmd->done))
        jk_wait(&cmd->done, 0, JK_FOREVER);
    return cmd->result;
}

/* ------------------------------------------------------------------ */
/* Handle records                                                     */
/* ------------------------------------------------------------------ */

static void handle_free(struct jk_obj *o)
{
    struct jk_handle *h = caa_container_of(o, struct jk_handle, obj);
    jk_wakefd_close(&h->wake);
    cds_wfcq_destroy(&h->qhead, &h->qtail);
    free(h);
}

void jk_handle_iref(struct jk_handle *h)
{
    atomic_fetch_add(&h->irefs, 1);
}

/* The record goes when the handle's id is gone and no stream or listener
 * record refers to it any more. */
void jk_handle_iunref(struct jk_handle *h)
{
    if (atomic_fetch_sub(&h->irefs, 1) == 1)
        jk_obj_free_later(&h->obj, handle_free);
}

static void handle_last_ref(struct jk_obj *o)
{
    jk_handle_iunref(caa_container_of(o, struct jk_handle, obj));
}

struct jk_handle *jk_handle_get(jktcp_handle id)
{
    struct jk_obj *o = jk_obj_get(id.id, JK_OBJ_HANDLE);
    return o ? caa_container_of(o, struct jk_handle, obj) : NULL;
}

static void handle_put(struct jk_handle *h)
{
    jk_obj_put(&h->obj);
}

/* ------------------------------------------------------------------ */
/* I/O thread: commands                                               */
/* ------------------------------------------------------------------ */

/* Adapter hook: a connection was processed in the output pass. */
static void on_conn_event(struct jktcp_adapter *a, struct jktcp_conn *c)
{
    struct jk_handle *h = a->owner;
    struct jk_stream *s = c->user;
    /* the transport's error before any stream says -ENETDOWN (rule 6) */
    if (a->err && !atomic_load_explicit(&h->terr, memory_order_relaxed))
        atomic_store(&h->terr, a->err);
    if (s)
        jk_io_stream_event(h, s, c);
    else if (c->queued && c->listener && c->listener->owner)
        jk_io_accept_ready(h, c->listener);
}

/* Adapter hook: the connection's buffers went idle. */
static void on_conn_idle(struct jktcp_adapter *a, struct jktcp_conn *c)
{
    struct jk_stream *s = c->user;
    if (s)
        jk_io_stream_idle(a->owner, s, c);
    else
        jk_ring_trim(&c->tcp.snd); /* an orphan: nobody writes any more */
}

static void do_sync(struct jk_handle *h, struct jk_cmd *cmd)
{
    int r = 0;
    switch (cmd->kind) {
    case CMD_PCAP:
        r = jk_pcap_capture(&h->a->t, cmd->path);
        break;
    case CMD_STATS:
        *(jktcp_stats *)cmd->out = h->a->st;
        ((jktcp_stats *)cmd->out)->io_wakeups = atomic_load(&h->wakeups);
        ((jktcp_stats *)cmd->out)->io_sleeps = atomic_load(&h->sleeps);
        ((jktcp_stats *)cmd->out)->io_caller_wakes = atomic_load(&h->caller_wakes);
        break;
    case CMD_INFO:
        r = jk_io_stream_info(cmd->s, cmd->out);
        break;
    case CMD_SET_CC:
        r = jk_io_stream_set_congestion(cmd->s, cmd->value);
        break;
    case CMD_SHUTDOWN:
        r = jk_io_stream_shutdown(cmd->s);
        break;
    default:
        r = -EINVAL;
        break;
    }
    jk_complete(cmd, r);
}

/* Returns true when a STOP command arrived. */
static bool run_command(struct jk_handle *h, struct jk_cmd *cmd)
{
    switch (cmd->kind) {
    case CMD_CONNECT: jk_io_connect(h, cmd->s); break;
    case CMD_LISTEN: jk_io_listen(h, cmd); break;
    case CMD_UNLISTEN: jk_io_unlisten(h, cmd->l); break;
    case CMD_CLOSE: jk_io_stream_close(h, cmd->s, false); break;
    case CMD_ABORT: jk_io_stream_close(h, cmd->s, true); break;
    case CMD_RELEASE: jk_io_stream_release(h, cmd->s); break;
    case CMD_KICK: jk_io_stream_kick(h, cmd->s); break;
    case CMD_STOP:
        h->linger_ms = cmd->timeout_ms;
        h->closing = true; /* connects and listens from now on fail */
        jk_complete(cmd, 0);
        return true;
    default: do_sync(h, cmd); break;
    }
    return false;
}

static struct jk_cmd *dequeue(struct jk_handle *h)
{
    struct cds_wfcq_node *n = __cds_wfcq_dequeue_blocking(&h->qhead, &h->qtail);
    if (!n)
        return NULL;
    struct jk_cmd *cmd = caa_container_of(n, struct jk_cmd, node);
    TSAN_ACQUIRE(cmd);
    return cmd;
}

static bool run_queue(struct jk_handle *h)
{
    bool stop = false;
    struct jk_cmd *cmd;
    while ((cmd = dequeue(h)))
        if (run_command(h, cmd))
            stop = true;
    return stop;
}

/* ------------------------------------------------------------------ */
/* I/O thread: loop and shutdown                                      */
/* ------------------------------------------------------------------ */

/* Sleep until input, a command, the next timer, or max_ms (< 0: none). */
static void io_sleep(struct jk_handle *h, int max_ms)
{
    struct jktcp_adapter *a = h->a;
    atomic_exchange(&h->sleeping, 1);
    if (!cds_wfcq_empty(&h->qhead, &h->qtail)) {
        atomic_store(&h->sleeping, 0);
        return;
    }
    int t = jk_adapter_next_timeout(a);
    if (max_ms >= 0 && (t < 0 || t > max_ms))
        t = max_ms;
    struct pollfd p[2] = {
        {jk_wakefd_fd(&h->wake), POLLIN, 0},
        {jk_transport_poll_fd(a->t), jk_transport_poll_events(a->t), 0},
    };
    if (a->env.tx_blocked)
        p[1].events |= POLLOUT;
    int np = a->err ? 1 : 2;
    atomic_fetch_add_explicit(&h->sleeps, 1, memory_order_relaxed);
    poll(p, (nfds_t)np, t);
    atomic_store(&h->sleeping, 0);
    if (p[0].revents & POLLIN)
        jk_wakefd_drain(&h->wake);
}

static void io_step(struct jk_handle *h)
{
    struct jktcp_adapter *a = h->a;
    jk_adapter_step(a);
    jk_io_wake_pending(h);
    if (a->err && !atomic_load_explicit(&h->terr, memory_order_relaxed))
        atomic_store(&h->terr, a->err);
}

/* Give closed streams' data up to linger_ms to get out: until every
 * queued byte and FIN is acknowledged (not until the peer closes too:
 * FIN_WAIT_2 may last 30 s), never past the deadline. */
static void linger(struct jk_handle *h)
{
    struct jktcp_adapter *a = h->a;
    int ms = h->linger_ms < 0 ? 1000 : h->linger_ms;
    uint64_t now = jk_mono_ns(), deadline = now + (uint64_t)ms * 1000000u;
    while (!a->err && now < deadline) {
        run_queue(h);
        io_step(h);
        bool busy = false;
        struct jktcp_conn *c;
        jk_list_each_entry(c, &a->all, struct jktcp_conn, all_link)
            busy = busy || (!c->user && !jk_tcp_delivered(&c->tcp));
        if (!busy)
            break;
        now = jk_mono_ns();
        if (now < deadline)
            io_sleep(h, (int)((deadline - now + 999999) / 1000000));
    }
}

/* Answer what is still queued; no new command can arrive any more. The
 * wait for `enq` spans the few instructions of a submit in flight (its
 * submit_done wakes us). */
static void drain_final(struct jk_handle *h)
{
    atomic_store(&h->stopping, 1);
    unsigned n;
    while ((n = atomic_load(&h->enq)) != 0)
        jk_wait(&h->enq, n, JK_FOREVER);
    struct jk_cmd *cmd;
    while ((cmd = dequeue(h))) {
        if (cmd->kind == CMD_PCAP || cmd->kind == CMD_STATS || cmd->kind == CMD_INFO ||
            cmd->kind == CMD_SHUTDOWN || cmd->kind == CMD_SET_CC)
            jk_complete(cmd, -ESHUTDOWN);
        else
            run_command(h, cmd); /* connect/listen fail: h->closing */
    }
}

/* JKTCP_OPT_BUSY_POLL_US: spin before sleeping, with a window that adapts.
 *
 * Why: waking a sleeping thread costs more than the work of a small round
 * trip (on a VM an idle vCPU halts, and waking it is an IPI and an exit to
 * the host: 64-byte ping-pong p50 ~60-130 us sleeping against ~28 us
 * spinning here). A spin pays only when the next frame or command comes
 * within it, so the window follows what the waits measured, as KVM's halt
 * polling does: a wait that ended within the limit would have been caught
 * by a longer spin, so the window grows (doubling from SPIN_MIN_NS); a
 * longer wait means nothing answers that soon, so it halves, and below the
 * minimum it is 0 (sleep at once). A spin that found work keeps it. Only
 * this thread spins: a caller spinning in its wait as well measured worse
 * p99 on 2 cores (two spinners and the peer's thread on two CPUs); a
 * blocking connect's bounded spin for its handshake is the one exception
 * (stream.c, connect_spin). */
enum { SPIN_MIN_NS = 8000 };

static void io_spin_adapt(struct jk_handle *h, uint64_t waited_ns)
{
    uint64_t w = h->spin_ns, max = (uint64_t)h->a->busy_poll_us * 1000u;
    if (waited_ns <= max)
        w = w < SPIN_MIN_NS ? SPIN_MIN_NS : 2 * w;
    else
        w = w / 2 < SPIN_MIN_NS ? 0 : w / 2;
    h->spin_ns = (uint32_t)(w < max ? w : max);
}

/* Look for the next frame, command or due timer for the window. True:
 * work. */
static bool io_busy_poll(struct jk_handle *h)
{
    struct jktcp_adapter *a = h->a;
    uint64_t end = jk_mono_ns() + h->spin_ns;
    struct pollfd p = {jk_transport_poll_fd(a->t), jk_transport_poll_events(a->t), 0};
    if (a->env.tx_blocked)
        p.events |= POLLOUT;
    do {
        if (!cds_wfcq_empty(&h->qhead, &h->qtail) || jk_adapter_next_timeout(a) == 0)
            return true;
        if (poll(&p, 1, 0) > 0)
            return true;
    } while (jk_mono_ns() < end);
    return false;
}

/* Out of work: spin if frames just moved (an answer may be close), then
 * sleep until the next frame, command or timer. Idle, no frame moves, so
 * the thread never spins. */
static void io_idle(struct jk_handle *h, bool moved)
{
    if (!moved || !h->a->busy_poll_us || h->a->err) {
        io_sleep(h, -1);
        return;
    }
    uint64_t t0 = jk_mono_ns();
    if (h->spin_ns && io_busy_poll(h))
        return;
    io_sleep(h, -1);
    io_spin_adapt(h, jk_mono_ns() - t0);
}

static void *io_main(void *arg)
{
    struct jk_handle *h = arg;
    struct jktcp_adapter *a = h->a;
    for (;;) {
        atomic_fetch_add_explicit(&h->wakeups, 1, memory_order_relaxed);
        if (run_queue(h))
            break;
        uint64_t f0 = a->st.frames_in + a->st.frames_out;
        io_step(h);
        bool moved = a->st.frames_in + a->st.frames_out != f0;
        if ((jk_list_empty(&a->dirty) || a->env.tx_blocked) && !a->input_more)
            io_idle(h, moved);
    }
    linger(h);
    drain_final(h);
    jk_io_kill_listeners(h);
    jk_io_kill_streams(h);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Public: handle                                                     */
/* ------------------------------------------------------------------ */

JKTCP_API int jktcp_handle_start(jktcp_adapter *a, jktcp_handle *out)
{
    if (!a || !out)
        return -EINVAL;
    out->id = 0;
    if (a->owner)
        return -EBUSY;
    struct jk_handle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    int e = jk_wakefd_open(&h->wake);
    if (e < 0) {
        free(h);
        return e;
    }
    jk_obj_init(&h->obj, JK_OBJ_HANDLE, handle_last_ref);
    atomic_init(&h->irefs, 1);
    atomic_init(&h->connect_spinners, 0);
    h->a = a;
    /* options are fixed from now on; a handshake is two of the answers the
     * I/O thread's spin is sized for (its SYN's and its ACK's) */
    h->connect_spin_ns = (uint64_t)a->busy_poll_us * 2000u;
    cds_wfcq_init(&h->qhead, &h->qtail);
    jk_list_init(&h->streams);
    jk_list_init(&h->wake_pending);
    jk_list_init(&h->listeners);
    if (jk_obj_publish(&h->obj) < 0) {
        handle_free(&h->obj);
        return -ENOMEM;
    }
    a->owner = h;
    a->on_conn_event = on_conn_event;
    a->on_conn_idle = on_conn_idle;
    int r = pthread_create(&h->thread, NULL, io_main, h);
    if (r) {
        a->owner = NULL;
        a->on_conn_event = NULL;
        a->on_conn_idle = NULL;
        h->a = NULL; /* the caller keeps the adapter */
        jk_obj_unpublish(&h->obj);
        return -r;
    }
    out->id = h->obj.id;
    return 0;
}

JKTCP_API int jktcp_handle_close(jktcp_handle id, int linger_ms)
{
    struct jk_handle *h = jk_handle_get(id);
    if (!h)
        return -EBADF;
    if (atomic_exchange(&h->close_called, true)) {
        handle_put(h);
        return -EBADF; /* closed twice, or by two threads at once */
    }
    jk_obj_unpublish(&h->obj); /* later calls on the id: -EBADF */
    struct jk_cmd cmd = {.kind = CMD_STOP, .timeout_ms = linger_ms};
    jk_call(h, &cmd);
    pthread_join(h->thread, NULL);
    struct jktcp_adapter *a = h->a;
    a->owner = NULL;
    a->on_conn_event = NULL;
    a->on_conn_idle = NULL;
    jk_adapter_destroy(a);
    h->a = NULL;
    handle_put(h);
    return 0;
}

JKTCP_API int jktcp_handle_error(jktcp_handle id)
{
    struct jk_handle *h = jk_handle_get(id);
    if (!h)
        return -EBADF;
    int r = atomic_load(&h->terr);
    handle_put(h);
    return r;
}

JKTCP_API int jktcp_handle_pcap(jktcp_handle id, const char *path)
{
    struct jk_handle *h = jk_handle_get(id);
    if (!h)
        return -EBADF;
    struct jk_cmd cmd = {.kind = CMD_PCAP, .path = path};
    int r = jk_call(h, &cmd);
    handle_put(h);
    return r;
}

JKTCP_API int jktcp_handle_stats(jktcp_handle id, jktcp_stats *out, size_t size)
{
    if (!out || !size)
        return -EINVAL;
    struct jk_handle *h = jk_handle_get(id);
    if (!h)
        return -EBADF;
    jktcp_stats st;
    struct jk_cmd cmd = {.kind = CMD_STATS, .out = &st};
    int r = jk_call(h, &cmd);
    handle_put(h);
    return r < 0 ? r : jk_copy_out(out, size, &st, sizeof st);
}
