/* SPDX-License-Identifier: MIT */
/*
 * Streams of the threaded handle: the public stream calls (caller threads)
 * and the I/O thread's side of each stream (binding to a connection,
 * publishing its events, close and release).
 *
 * Callers block on the stream's futex word `seq`, which the I/O thread
 * bumps after every event on the connection and wakes only if someone
 * waits. Every call resolves the stream's id first (a reference for the
 * call's duration) and touches the rings only inside an RCU read-side
 * section after checking `dead` (handle.h explains the ownership).
 */
#include "stream.h"

#include "abi.h"
#include "conn.h"
#include "tsan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IO (1u << 30)
#define WRITE_LOWAT_MAX (64u * 1024u) /* JKTCP_POLL_WRITE: free space needed */
#define WOULD_BLOCK (-100000)         /* a step found nothing to do yet (no errno) */

/* ------------------------------------------------------------------ */
/* Records and their lifetime                                         */
/* ------------------------------------------------------------------ */

static void stream_free(struct jk_obj *o)
{
    struct jk_stream *s = caa_container_of(o, struct jk_stream, obj);
    jk_ready_close(&s->rd_ready);
    jk_ready_close(&s->wr_ready);
    struct jk_handle *h = s->h;
    free(s);
    jk_handle_iunref(h);
}

static void owner_drop(struct jk_stream *s)
{
    if (atomic_fetch_sub(&s->owners, 1) == 1)
        jk_obj_free_later(&s->obj, stream_free);
}

/* The caller side let go (closed, no call inside): hand the stream to the
 * I/O thread, which finishes the connection and frees the record; once
 * the handle is stopping, drop our share instead. */
static void stream_last_ref(struct jk_obj *o)
{
    struct jk_stream *s = caa_container_of(o, struct jk_stream, obj);
    if (jk_submit(s->h, &s->release_cmd) < 0)
        owner_drop(s);
}

struct jk_stream *jk_stream_new(struct jk_handle *h)
{
    struct jk_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    jk_obj_init(&s->obj, JK_OBJ_STREAM, stream_last_ref);
    s->h = h;
    jk_handle_iref(h);
    atomic_init(&s->owners, 2);
    atomic_init(&s->setup, 1);
    jk_ready_init(&s->rd_ready);
    jk_ready_init(&s->wr_ready);
    s->connect_cmd.kind = CMD_CONNECT;
    s->connect_cmd.s = s;
    s->kick.kind = CMD_KICK;
    s->kick.s = s;
    s->close_cmd.s = s;
    s->release_cmd.kind = CMD_RELEASE;
    s->release_cmd.s = s;
    cds_wfcq_node_init(&s->acc_node);
    jk_list_init(&s->io_link);
    jk_list_init(&s->wake_link);
    return s;
}

struct jk_stream *jk_stream_get(jktcp_stream id)
{
    struct jk_obj *o = jk_obj_get(id.id, JK_OBJ_STREAM);
    return o ? caa_container_of(o, struct jk_stream, obj) : NULL;
}

void jk_stream_put(struct jk_stream *s)
{
    jk_obj_put(&s->obj);
}

/* ------------------------------------------------------------------ */
/* Waiting and readiness                                              */
/* ------------------------------------------------------------------ */

/* Wake everyone blocked on s (I/O thread after events, or a closer). */
static void jk_stream_signal(struct jk_stream *s)
{
    atomic_fetch_add(&s->seq, 1);
    if (atomic_load(&s->waiters))
        jk_wake_all(&s->seq);
}

static int stream_wait(struct jk_stream *s, unsigned seq, uint64_t deadline)
{
    atomic_fetch_add(&s->waiters, 1);
    int r = jk_wait(&s->seq, seq, deadline);
    atomic_fetch_sub(&s->waiters, 1);
    return r;
}

static bool past(uint64_t deadline)
{
    return deadline != JK_FOREVER && jk_mono_ns() >= deadline;
}

static struct jk_ring *ring_of(_Atomic(struct jk_ring *) *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}

/* The conditions behind the readiness fds (JKTCP_POLL_READ / _WRITE).
 * Inside an RCU read-side section (they look at the rings). */
static bool read_ready(struct jk_stream *s)
{
    struct jk_ring *rcv = ring_of(&s->rcv);
    return atomic_load(&s->closed) || atomic_load(&s->dead) || atomic_load(&s->eof) ||
           atomic_load(&s->err) || (rcv && jk_ring_used(rcv) > 0);
}

static uint32_t write_lowat(const struct jk_ring *snd)
{
    return snd->cap / 4 < WRITE_LOWAT_MAX ? snd->cap / 4 : WRITE_LOWAT_MAX;
}

static bool write_ready(struct jk_stream *s)
{
    if (atomic_load(&s->closed) || atomic_load(&s->dead) || atomic_load(&s->err) ||
        atomic_load(&s->wr_shut))
        return true;
    struct jk_ring *snd = ring_of(&s->snd);
    return atomic_load(&s->cstate) == JK_CONNECTED && snd &&
           jk_ring_free_space(snd) >= write_lowat(snd);
}

/* Lower a readiness fd whose condition no longer holds (the caller just
 * made it false by reading or writing), then re-check: the I/O thread may
 * have made it true again meanwhile. */
static void settle(struct jk_ready *r, bool (*cond)(struct jk_stream *), struct jk_stream *s)
{
    if (atomic_load_explicit(&r->fd, memory_order_relaxed) < 0 || cond(s))
        return;
    jk_ready_lower(r);
    if (cond(s))
        jk_ready_raise(r);
}

static void raise_both(struct jk_stream *s)
{
    jk_ready_raise(&s->rd_ready);
    jk_ready_raise(&s->wr_ready);
}

/* 0, or the code a call on s returns now that it is closed or its handle
 * stopped. */
static int gone(struct jk_stream *s)
{
    if (atomic_load(&s->closed))
        return -EBADF;
    if (atomic_load(&s->dead))
        return -ESHUTDOWN;
    return 0;
}

static void kick(struct jk_stream *s)
{
    if (!atomic_exchange(&s->kicked, true) && jk_submit(s->h, &s->kick) < 0)
        atomic_store(&s->kicked, false);
}

/* ------------------------------------------------------------------ */
/* I/O thread                                                         */
/* ------------------------------------------------------------------ */

void jk_io_stream_add(struct jk_handle *h, struct jk_stream *s)
{
    jk_list_push(&h->streams, &s->io_link);
}

void jk_io_stream_bind(struct jk_handle *h, struct jk_stream *s, struct jktcp_conn *c)
{
    (void)h;
    s->c = c;
    c->user = s;
    atomic_store_explicit(&s->snd, &c->tcp.snd, memory_order_release);
    atomic_store_explicit(&s->rcv, &c->tcp.rcv, memory_order_release);
}

/* Let the engine finish the connection on its own. */
static void unbind(struct jk_stream *s)
{
    struct jktcp_conn *c = s->c;
    if (!c)
        return;
    c->user = NULL;
    s->c = NULL;
    jk_adapter_release(c);
}

static void wake_waiters(struct jk_handle *h, struct jk_stream *s)
{
    if (atomic_load(&s->waiters)) {
        jk_wake_all(&s->seq);
        atomic_fetch_add_explicit(&h->caller_wakes, 1, memory_order_relaxed);
    }
}

void jk_io_wake_pending(struct jk_handle *h)
{
    while (!jk_list_empty(&h->wake_pending)) {
        struct jk_stream *s = jk_list_entry(h->wake_pending.next, struct jk_stream, wake_link);
        jk_list_del(&s->wake_link);
        wake_waiters(h, s);
    }
}

/* An event from an output pass: the sequence moves now (a caller about to
 * wait sees it and does not sleep). The futex wake of one already asleep
 * waits, in a pass between batches of a step's input (more input follows
 * in the same step), until the input has drained: the step's last pass
 * (which first wakes all that waited) or the step's end
 * (jk_io_wake_pending). Why: a step drains up to JK_STEP_FRAMES frames with
 * an output pass every JK_BATCH, and with many streams each pass had news
 * for most of them: 64 streams downloading, the I/O thread spent 46% of
 * its time in futex wake-ups, one per stream per pass. So a caller is
 * woken at most twice per step, late by at most the rest of the step's
 * input; a request/response exchange, whose input drains between
 * messages, is woken in the last pass as before. */
static void signal_event(struct jk_stream *s, struct jktcp_conn *c)
{
    struct jk_handle *h = s->h;
    atomic_fetch_add(&s->seq, 1);
    if (c->a->mid_input) {
        if (!jk_list_linked(&s->wake_link))
            jk_list_push_back(&h->wake_pending, &s->wake_link);
        return;
    }
    jk_io_wake_pending(h);
    wake_waiters(h, s);
}

static void publish(struct jk_stream *s, struct jktcp_conn *c)
{
    if (c->tcp.err)
        atomic_store(&s->err, c->tcp.err);
    if (c->tcp.fin_rcvd)
        atomic_store(&s->eof, true);
    atomic_store(&s->adv_wnd, c->tcp.rcv_adv - c->tcp.rcv_nxt);
    /* a reader that emptied the ring before this store judged by the
     * window before the last ACK and may not have asked for an update:
     * look again (pairs with maybe_window_update) */
    if (atomic_exchange(&s->rd_since, false))
        jk_tcp_app_read(&c->tcp);
    signal_event(s, c);
    /* the conditions read the rings: this thread is the one that frees
     * them, so no read-side section is needed here */
    if (atomic_load_explicit(&s->rd_ready.fd, memory_order_relaxed) >= 0 && read_ready(s))
        jk_ready_raise(&s->rd_ready);
    if (atomic_load_explicit(&s->wr_ready.fd, memory_order_relaxed) >= 0 && write_ready(s))
        jk_ready_raise(&s->wr_ready);
}

static void fail(struct jk_stream *s, int err)
{
    atomic_store(&s->err, err);
    atomic_store(&s->cstate, JK_FAILED);
    jk_stream_signal(s);
    raise_both(s);
}

void jk_io_stream_event(struct jk_handle *h, struct jk_stream *s, struct jktcp_conn *c)
{
    (void)h;
    if (atomic_load_explicit(&s->cstate, memory_order_relaxed) == JK_CONNECTING) {
        /* still handshaking (the SYN went out, or again): nothing a caller
         * waits for changed, so no wake-up (a blocking connect sleeps once) */
        if (c->tcp.state == JKTCP_SYN_SENT || c->tcp.state == JKTCP_SYN_RCVD)
            return;
        if (c->tcp.state == JKTCP_CLOSED) {
            fail(s, c->tcp.err ? c->tcp.err : -ECONNREFUSED);
            return;
        }
        atomic_store(&s->cstate, JK_CONNECTED);
    }
    publish(s, c);
}

void jk_io_stream_idle(struct jk_handle *h, struct jk_stream *s, struct jktcp_conn *c)
{
    (void)h;
    if (jk_lock_acquire(&s->wr_lock, 0) != 0) /* a deadline already past: try once */
        return;
    jk_ring_trim(&c->tcp.snd); /* writers are out: only the engine, its consumer, runs */
    jk_lock_release(&s->wr_lock);
}

void jk_io_connect(struct jk_handle *h, struct jk_stream *s)
{
    struct jktcp_adapter *a = h->a;
    jk_io_stream_add(h, s); /* the I/O side's share of the record, from now on */
    int err = h->closing ? -ESHUTDOWN : a->err ? -ENETDOWN : 0;
    struct jktcp_conn *c =
        err ? NULL : jk_adapter_new_conn(a, 0, (uint16_t)s->connect_cmd.port, true, &err);
    if (!c) {
        atomic_store(&s->setup, err);
        fail(s, err);
        return;
    }
    jk_io_stream_bind(h, s, c);
    atomic_store(&s->cstate, JK_CONNECTING);
    atomic_store(&s->setup, 0);
    /* only a non-blocking connect waits for the setup (setup_wait); a
     * blocking one sleeps until connected, so a signal now would only
     * wake it for nothing (and cost this thread a futex call) */
    if (s->connect_cmd.timeout_ms == 0)
        jk_stream_signal(s);
    jk_tcp_connect(&c->tcp);
}

void jk_io_stream_close(struct jk_handle *h, struct jk_stream *s, bool abort)
{
    (void)h;
    struct jktcp_conn *c = s->c;
    if (!c || s->close_done)
        return;
    s->close_done = true;
    jk_tcp_close(&c->tcp, abort);
    jk_adapter_mark_dirty(c);
}

/* The caller side let go: close if not yet done, hand the connection to
 * the engine, free the record. Its last command: nothing of s is queued
 * behind it (every other command was submitted by a call holding a
 * reference). */
void jk_io_stream_release(struct jk_handle *h, struct jk_stream *s)
{
    jk_io_stream_close(h, s, false);
    unbind(s); /* the engine keeps the connection as an orphan */
    jk_list_del(&s->io_link);
    jk_list_del(&s->wake_link); /* nobody left to wake */
    jk_obj_free_later(&s->obj, stream_free);
}

void jk_io_stream_discard(struct jk_handle *h, struct jk_stream *s)
{
    (void)h;
    if (s->c) {
        jk_tcp_abort(&s->c->tcp, true);
        jk_adapter_mark_dirty(s->c);
    }
    unbind(s);
    jk_list_del(&s->io_link);
    jk_list_del(&s->wake_link);
    jk_obj_free_later(&s->obj, stream_free);
}

void jk_io_stream_kick(struct jk_handle *h, struct jk_stream *s)
{
    (void)h;
    atomic_store(&s->kicked, false);
    struct jktcp_conn *c = s->c;
    if (!c)
        return;
    if (atomic_exchange(&s->rd_since, false)) /* a write's kick is no read */
        jk_tcp_app_read(&c->tcp);
    jk_adapter_mark_dirty(c);
}

int jk_io_stream_info(struct jk_stream *s, jktcp_info *out)
{
    return s->c ? jk_conn_info_internal(s->c, out) : -ENOTCONN;
}

int jk_io_stream_set_congestion(struct jk_stream *s, int cc)
{
    return s->c ? jk_conn_set_congestion_internal(s->c, cc) : -ENOTCONN;
}

int jk_io_stream_shutdown(struct jk_stream *s)
{
    if (!s->c || s->c->tcp.state == JKTCP_CLOSED)
        return -ENOTCONN;
    jk_tcp_shutdown(&s->c->tcp);
    return 0;
}

/* The handle is stopping: fail every stream, wait one grace period (no
 * caller is inside a ring any more, and none will enter: `dead`), then
 * detach them from their connections, which the adapter frees next. */
void jk_io_kill_streams(struct jk_handle *h)
{
    struct jk_list *pos, *tmp;
    jk_list_each_safe(pos, tmp, &h->streams) {
        struct jk_stream *s = jk_list_entry(pos, struct jk_stream, io_link);
        atomic_store(&s->dead, true);
        jk_stream_signal(s);
        raise_both(s);
    }
    jk_rcu_synchronize();
    while (!jk_list_empty(&h->streams)) {
        struct jk_stream *s = jk_list_entry(h->streams.next, struct jk_stream, io_link);
        jk_list_del(&s->io_link);
        jk_list_del(&s->wake_link);
        if (s->c) {
            s->c->user = NULL;
            s->c = NULL;
        }
        atomic_store(&s->snd, NULL);
        atomic_store(&s->rcv, NULL);
        owner_drop(s);
    }
}

/* ------------------------------------------------------------------ */
/* Public: connect                                                    */
/* ------------------------------------------------------------------ */

/* End the stream's id: the first close wins. */
static int stream_end(struct jk_stream *s, int kind)
{
    if (atomic_exchange(&s->closed, true))
        return -EBADF;
    jk_obj_unpublish(&s->obj); /* later lookups fail; our reference stays */
    jk_stream_signal(s);       /* blocked callers return -EBADF */
    raise_both(s);
    s->close_cmd.kind = kind;
    jk_submit(s->h, &s->close_cmd); /* fails only when stopping: nothing to do then */
    return 0;
}

/* Until the I/O thread ran the connect command: setup errors (no port,
 * too many connections, a dead transport, a stopping handle) come back
 * from the call itself, never later through the stream. Bounded: the I/O
 * thread answers every command at once. */
static int setup_wait(struct jk_stream *s)
{
    for (;;) {
        unsigned seq = atomic_load(&s->seq);
        int r = atomic_load(&s->setup); /* not cstate: a fast RST may follow */
        if (r != 1)
            return r;
        stream_wait(s, seq, JK_FOREVER);
    }
}

/* Why a blocking connect spins first: on a near peer the handshake ends
 * some 35-60 us after the call, and a caller asleep by then is woken
 * ~45 us later still (a halted vCPU: an IPI and a VM exit), which was half
 * of a connect here (the kernel's own connect never sleeps: its SYN,
 * SYN-ACK and ACK run in the caller's system call). So the caller polls
 * the state for up to twice JKTCP_OPT_BUSY_POLL_US first (100 us by
 * default: 50 caught the handshakes that found the I/O thread awake, not
 * those that had to wake it); a far peer costs that much CPU once per
 * connect, then the caller sleeps as before. One caller
 * spins at a time: many connecting at once are not waiting on latency, and
 * their spins would take the CPUs the I/O thread needs. */
static void connect_spin(struct jk_stream *s, uint64_t deadline)
{
    struct jk_handle *h = s->h;
    if (!h->connect_spin_ns)
        return;
    if (atomic_fetch_add(&h->connect_spinners, 1) == 0) {
        uint64_t now = jk_mono_ns(), end = now + h->connect_spin_ns;
        if (end > deadline)
            end = deadline;
        for (; now < end; now = jk_mono_ns()) {
            int cs = atomic_load(&s->cstate);
            if (cs == JK_CONNECTED || cs == JK_FAILED || atomic_load(&s->closed) ||
                atomic_load(&s->dead))
                break;
            jk_cpu_relax();
        }
    }
    atomic_fetch_sub(&h->connect_spinners, 1);
}

static int connect_wait(struct jk_stream *s, uint64_t deadline)
{
    connect_spin(s, deadline);
    for (;;) {
        unsigned seq = atomic_load(&s->seq);
        if (atomic_load(&s->closed))
            return -EBADF;
        int cs = atomic_load(&s->cstate);
        if (cs == JK_CONNECTED)
            return 0;
        if (cs == JK_FAILED)
            return atomic_load(&s->err);
        if (atomic_load(&s->dead))
            return -ESHUTDOWN;
        int w = stream_wait(s, seq, deadline);
        if (w == -ETIMEDOUT || w == -EINTR)
            return w;
    }
}

JKTCP_API int jktcp_handle_connect(jktcp_handle hid, int port, int timeout_ms, jktcp_stream *out)
{
    if (!out)
        return -EINVAL;
    out->id = 0;
    if (port < 1 || port > 65535)
        return -EINVAL;
    struct jk_handle *h = jk_handle_get(hid);
    if (!h)
        return -EBADF;
    int r = -ENOMEM;
    struct jk_stream *s = jk_stream_new(h);
    if (!s)
        goto out;
    if (jk_obj_publish(&s->obj) < 0) {
        free(s);
        jk_handle_iunref(h);
        goto out;
    }
    jk_obj_ref(&s->obj); /* this call's reference */
    s->connect_cmd.port = port;
    s->connect_cmd.timeout_ms = timeout_ms;
    if ((r = jk_submit(h, &s->connect_cmd)) < 0) {
        owner_drop(s); /* the I/O thread never saw it */
        stream_end(s, CMD_ABORT);
    } else if (timeout_ms == 0 && (r = setup_wait(s)) < 0) {
        stream_end(s, CMD_ABORT);
    } else if (timeout_ms == 0) {
        out->id = s->obj.id;
        r = -EINPROGRESS;
    } else if ((r = connect_wait(s, jk_deadline(timeout_ms))) == 0) {
        /* one sleep until connected: a setup error arrives as JK_FAILED
         * (fail()), so waiting for the setup first would only cost the
         * caller a second wake-up per connect */
        out->id = s->obj.id;
    } else if (r != -EBADF) { /* -EBADF: another thread closed it already */
        stream_end(s, CMD_ABORT);
    }
    jk_stream_put(s);
out:
    jk_obj_put(&h->obj);
    return r;
}

/* ------------------------------------------------------------------ */
/* Public: read and write                                             */
/* ------------------------------------------------------------------ */

static void maybe_window_update(struct jk_stream *s, struct jk_ring *rcv)
{
    /* publish stores adv_wnd, then takes rd_since: either it sees this
     * read, or this load sees its window (all seq_cst) */
    atomic_store(&s->rd_since, true);
    uint32_t adv = atomic_load(&s->adv_wnd);
    uint32_t free_now = jk_ring_free_space(rcv);
    if ((uint64_t)adv * 2 <= rcv->cap && free_now >= 2 * (uint64_t)adv)
        kick(s);
}

/* One attempt: bytes (> 0), 0 at end of stream, a negative errno, or
 * WOULD_BLOCK. Inside an RCU read-side section. */
static ssize_t read_step(struct jk_stream *s, void *buf, uint32_t len)
{
    int e = gone(s);
    if (e)
        return e;
    bool eof = atomic_load(&s->eof); /* before the ring: see data first */
    int err = atomic_load(&s->err);
    struct jk_ring *rcv = ring_of(&s->rcv);
    uint32_t n = rcv ? jk_ring_read(rcv, buf, len) : 0;
    if (n)
        maybe_window_update(s, rcv);
    settle(&s->rd_ready, read_ready, s);
    if (n)
        return n;
    if (eof)
        return 0;
    return err ? err : WOULD_BLOCK;
}

static ssize_t read_locked(struct jk_stream *s, void *buf, uint32_t len, uint64_t deadline)
{
    for (;;) {
        unsigned seq = atomic_load(&s->seq);
        jk_rcu_read_lock();
        ssize_t r = read_step(s, buf, len);
        jk_rcu_read_unlock();
        if (r != WOULD_BLOCK)
            return r;
        if (past(deadline))
            return -EAGAIN;
        if (stream_wait(s, seq, deadline) == -EINTR)
            return -EINTR;
    }
}

ssize_t jk_stream_read(struct jk_stream *s, void *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = jk_deadline(timeout_ms);
    if (len == 0) {
        jk_rcu_read_lock();
        ssize_t r = gone(s);
        jk_rcu_read_unlock();
        return r;
    }
    if (len > MAX_IO)
        len = MAX_IO;
    int e = jk_lock_acquire(&s->rd_lock, deadline);
    if (e < 0)
        return e;
    ssize_t r = read_locked(s, buf, (uint32_t)len, deadline);
    jk_lock_release(&s->rd_lock);
    return r;
}

JKTCP_API ssize_t jktcp_stream_read(jktcp_stream id, void *buf, size_t len, int timeout_ms)
{
    if (!buf && len)
        return -EINVAL;
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    ssize_t r = jk_stream_read(s, buf, len, timeout_ms);
    jk_stream_put(s);
    return r;
}

static int write_error(struct jk_stream *s)
{
    int e = gone(s);
    if (!e && atomic_load(&s->wr_shut))
        e = -EPIPE;
    if (!e)
        e = atomic_load(&s->err);
    return e;
}

/* Bytes queued by one attempt (0: no room, or not connected yet), or a
 * negative errno. Inside an RCU read-side section. */
static long write_step(struct jk_stream *s, const uint8_t *buf, uint32_t len)
{
    int e = write_error(s);
    if (e)
        return e;
    struct jk_ring *snd = ring_of(&s->snd);
    uint32_t n = 0;
    if (snd && atomic_load(&s->cstate) == JK_CONNECTED)
        n = jk_ring_write(snd, buf, len);
    if (n)
        kick(s);
    settle(&s->wr_ready, write_ready, s);
    return n;
}

/* Queue up to len bytes, waiting for room until the deadline. Returns the
 * bytes queued; when that is short of len (or 0), *why says what stopped
 * it: -EAGAIN (deadline), -EINTR, or the stream's error. */
static size_t write_locked(struct jk_stream *s, const uint8_t *buf, size_t len,
                           uint64_t deadline, int *why)
{
    size_t done = 0;
    for (;;) {
        unsigned seq = atomic_load(&s->seq);
        jk_rcu_read_lock();
        long n = write_step(s, buf + done, (uint32_t)(len - done));
        jk_rcu_read_unlock();
        if (n < 0) {
            *why = (int)n;
            return done;
        }
        done += (size_t)n;
        if (done == len)
            return done;
        if (n)
            continue; /* the ring may have drained meanwhile */
        if (past(deadline)) {
            *why = -EAGAIN;
            return done;
        }
        if (stream_wait(s, seq, deadline) == -EINTR) {
            *why = -EINTR;
            return done;
        }
    }
}

ssize_t jk_stream_write(struct jk_stream *s, const void *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = jk_deadline(timeout_ms);
    if (len > MAX_IO)
        len = MAX_IO;
    int e = jk_lock_acquire(&s->wr_lock, deadline);
    if (e < 0)
        return e;
    ssize_t r;
    if (len) {
        int why = 0;
        size_t n = write_locked(s, buf, len, deadline, &why);
        r = n ? (ssize_t)n : why;
    } else {
        jk_rcu_read_lock();
        r = gone(s);
        jk_rcu_read_unlock();
    }
    jk_lock_release(&s->wr_lock);
    return r;
}

JKTCP_API ssize_t jktcp_stream_write(jktcp_stream id, const void *buf, size_t len, int timeout_ms)
{
    if (!buf && len)
        return -EINVAL;
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    ssize_t r = jk_stream_write(s, buf, len, timeout_ms);
    jk_stream_put(s);
    return r;
}

JKTCP_API ssize_t jktcp_stream_write_all(jktcp_stream id, const void *buf, size_t len,
                                         int timeout_ms)
{
    if (!buf && len)
        return -EINVAL;
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    if (len == 0) { /* as jktcp_stream_write: says whether the stream is usable */
        ssize_t r = jk_stream_write(s, buf, 0, timeout_ms);
        jk_stream_put(s);
        return r;
    }
    uint64_t deadline = jk_deadline(timeout_ms);
    int why = jk_lock_acquire(&s->wr_lock, deadline);
    size_t done = 0;
    if (why == 0) {
        while (done < len) {
            size_t chunk = len - done > MAX_IO ? MAX_IO : len - done;
            size_t n = write_locked(s, (const uint8_t *)buf + done, chunk, deadline, &why);
            done += n;
            if (n < chunk)
                break;
        }
        jk_lock_release(&s->wr_lock);
    }
    jk_stream_put(s);
    return done == len ? (ssize_t)len : why;
}

/* ------------------------------------------------------------------ */
/* Public: the rest                                                   */
/* ------------------------------------------------------------------ */

JKTCP_API int jktcp_stream_shutdown(jktcp_stream id)
{
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    /* writers finish their call first: FIN goes after their bytes */
    int e = jk_lock_acquire(&s->wr_lock, JK_FOREVER);
    if (e == 0) {
        if (!(e = gone(s))) {
            atomic_store(&s->wr_shut, true);
            struct jk_cmd cmd = {.kind = CMD_SHUTDOWN, .s = s};
            e = jk_call(s->h, &cmd);
            jk_ready_raise(&s->wr_ready); /* writable: a write now fails at once */
        }
        jk_lock_release(&s->wr_lock);
    }
    jk_stream_put(s);
    return e;
}

static int close_common(jktcp_stream id, int kind)
{
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    int r = stream_end(s, kind);
    jk_stream_put(s);
    return r;
}

JKTCP_API int jktcp_stream_close(jktcp_stream id)
{
    return close_common(id, CMD_CLOSE);
}

JKTCP_API int jktcp_stream_abort(jktcp_stream id)
{
    return close_common(id, CMD_ABORT);
}

JKTCP_API int jktcp_stream_error(jktcp_stream id)
{
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    int r = atomic_load(&s->err);
    if (atomic_load(&s->closed))
        r = -EBADF;
    else if (!r && atomic_load(&s->dead))
        r = -ESHUTDOWN;
    else if (!r && atomic_load(&s->cstate) < JK_CONNECTED)
        r = -EINPROGRESS;
    jk_stream_put(s);
    return r;
}

JKTCP_API int jktcp_stream_info(jktcp_stream id, jktcp_info *out, size_t size)
{
    if (!out || !size)
        return -EINVAL;
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    jktcp_info info;
    int e = gone(s);
    if (!e) {
        struct jk_cmd cmd = {.kind = CMD_INFO, .s = s, .out = &info};
        e = jk_call(s->h, &cmd);
    }
    jk_stream_put(s);
    return e < 0 ? e : jk_copy_out(out, size, &info, sizeof info);
}

JKTCP_API int jktcp_stream_set_congestion(jktcp_stream id, int cc)
{
    if (cc < JKTCP_CC_OFF || cc > JKTCP_CC_BBR)
        return -EINVAL;
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    int e = gone(s);
    if (!e) {
        struct jk_cmd cmd = {.kind = CMD_SET_CC, .s = s, .value = cc};
        e = jk_call(s->h, &cmd);
    }
    jk_stream_put(s);
    return e;
}

JKTCP_API int jktcp_stream_poll_fd(jktcp_stream id, int events)
{
    if (events != JKTCP_POLL_READ && events != JKTCP_POLL_WRITE)
        return -EINVAL;
    struct jk_stream *s = jk_stream_get(id);
    if (!s)
        return -EBADF;
    bool rd = events == JKTCP_POLL_READ;
    struct jk_ready *r = rd ? &s->rd_ready : &s->wr_ready;
    int fd = gone(s);
    if (!fd) {
        bool created;
        fd = jk_ready_fd(r, &created);
        if (fd >= 0 && created) { /* the I/O thread raises it from now on */
            jk_rcu_read_lock();
            if (rd ? read_ready(s) : write_ready(s))
                jk_ready_raise(r);
            jk_rcu_read_unlock();
        }
    }
    jk_stream_put(s);
    return fd;
}
