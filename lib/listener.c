/* SPDX-License-Identifier: MIT */
/*
 * Listeners of the threaded handle. The I/O thread turns every connection
 * the engine's listener completes into a stream and appends it to the
 * listener's wait-free accept queue (cds_wfcq); accepting threads take
 * from it and give the stream its id. Accepters sleep on the listener's
 * futex word `seq`, bumped whenever a stream is queued or the listener
 * goes away.
 */
#include "listener.h"
#include "stream.h"

#include "tsan.h"

#include <errno.h>
#include <stdlib.h>

static void listener_free(struct jk_obj *o)
{
    struct jk_listener *l = caa_container_of(o, struct jk_listener, obj);
    jk_ready_close(&l->ready);
    cds_wfcq_destroy(&l->qhead, &l->qtail);
    struct jk_handle *h = l->h;
    free(l);
    jk_handle_iunref(h);
}

/* Freed when both the caller side (its last reference) and the I/O side
 * (unlisten, or the handle's stop) let go. */
static void owner_drop(struct jk_listener *l)
{
    if (atomic_fetch_sub(&l->owners, 1) == 1)
        jk_obj_free_later(&l->obj, listener_free);
}

static void listener_last_ref(struct jk_obj *o)
{
    owner_drop(caa_container_of(o, struct jk_listener, obj));
}

static void signal_accepters(struct jk_listener *l)
{
    atomic_fetch_add(&l->seq, 1);
    if (atomic_load(&l->waiters))
        jk_wake_all(&l->seq);
    jk_ready_raise(&l->ready);
}

static struct jk_listener *listener_get(jktcp_listener id)
{
    struct jk_obj *o = jk_obj_get(id.id, JK_OBJ_LISTENER);
    return o ? caa_container_of(o, struct jk_listener, obj) : NULL;
}

/* ------------------------------------------------------------------ */
/* I/O thread                                                         */
/* ------------------------------------------------------------------ */

void jk_io_listen(struct jk_handle *h, struct jk_cmd *cmd)
{
    struct jk_listener *l = cmd->l;
    int r = h->closing ? -ESHUTDOWN : h->a->err ? -ENETDOWN : 0;
    if (!r)
        r = jk_adapter_listen_internal(h->a, cmd->port, cmd->backlog, &l->cl);
    if (r == 0) {
        l->cl->owner = l;
        l->cl->handed = &l->queued;
        jk_list_push(&h->listeners, &l->io_link);
    }
    jk_complete(cmd, r);
}

void jk_io_accept_ready(struct jk_handle *h, struct jktcp_conn_listener *cl)
{
    struct jk_listener *l = cl->owner;
    struct jktcp_conn *c;
    while ((c = jk_adapter_listener_pop(cl))) {
        struct jk_stream *s = jk_stream_new(h);
        if (!s) {
            jk_tcp_abort(&c->tcp, true);
            jk_adapter_release(c);
            continue;
        }
        jk_io_stream_add(h, s);
        jk_io_stream_bind(h, s, c);
        atomic_store(&s->cstate, JK_CONNECTED);
        jk_io_stream_event(h, s, c);
        atomic_fetch_add(&l->queued, 1);
        TSAN_RELEASE(s);
        cds_wfcq_enqueue(&l->qhead, &l->qtail, &s->acc_node);
        signal_accepters(l);
    }
}

/* Reset and free every stream nobody accepted. */
static void drain_queue(struct jk_handle *h, struct jk_listener *l)
{
    struct cds_wfcq_node *n;
    while ((n = cds_wfcq_dequeue_blocking(&l->qhead, &l->qtail))) {
        struct jk_stream *s = caa_container_of(n, struct jk_stream, acc_node);
        TSAN_ACQUIRE(s);
        atomic_fetch_sub(&l->queued, 1);
        jk_io_stream_discard(h, s);
    }
}

static void stop_listening(struct jk_handle *h, struct jk_listener *l)
{
    if (l->cl) {
        struct jktcp_conn_listener *cl = l->cl;
        l->cl = NULL;
        jk_adapter_unlisten_internal(cl); /* resets half-open connections */
    }
    drain_queue(h, l);
    jk_list_del(&l->io_link);
}

void jk_io_unlisten(struct jk_handle *h, struct jk_listener *l)
{
    stop_listening(h, l);
    owner_drop(l);
}

void jk_io_kill_listeners(struct jk_handle *h)
{
    while (!jk_list_empty(&h->listeners)) {
        struct jk_listener *l = jk_list_entry(h->listeners.next, struct jk_listener, io_link);
        atomic_store(&l->dead, true);
        signal_accepters(l);
        stop_listening(h, l);
        owner_drop(l);
    }
}

/* ------------------------------------------------------------------ */
/* Public                                                             */
/* ------------------------------------------------------------------ */

JKTCP_API int jktcp_handle_listen(jktcp_handle hid, int port, int backlog, jktcp_listener *out)
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
    struct jk_listener *l = calloc(1, sizeof *l);
    if (!l)
        goto out;
    jk_obj_init(&l->obj, JK_OBJ_LISTENER, listener_last_ref);
    l->h = h;
    jk_handle_iref(h);
    atomic_init(&l->owners, 2);
    cds_wfcq_init(&l->qhead, &l->qtail);
    jk_list_init(&l->io_link);
    jk_ready_init(&l->ready);
    l->unlisten_cmd.kind = CMD_UNLISTEN;
    l->unlisten_cmd.l = l;
    struct jk_cmd cmd = {.kind = CMD_LISTEN, .port = port, .backlog = backlog, .l = l};
    if ((r = jk_call(h, &cmd)) < 0) { /* the I/O thread never kept it */
        cds_wfcq_destroy(&l->qhead, &l->qtail);
        free(l);
        jk_handle_iunref(h);
        goto out;
    }
    if ((r = jk_obj_publish(&l->obj)) < 0) {
        atomic_store(&l->closed, true);
        (void)jk_submit(h, &l->unlisten_cmd); /* if stopping, the stop lets go of it */
        jk_obj_put(&l->obj);
        goto out;
    }
    out->id = l->obj.id;
out:
    jk_obj_put(&h->obj);
    return r;
}

/* 0 when a stream was taken (*s), 1 when none is queued, or -errno. */
static int try_accept(struct jk_listener *l, struct jk_stream **s)
{
    if (atomic_load(&l->closed))
        return -EBADF;
    if (atomic_load(&l->dead))
        return -ESHUTDOWN;
    struct cds_wfcq_node *n = cds_wfcq_dequeue_blocking(&l->qhead, &l->qtail);
    if (n) {
        *s = caa_container_of(n, struct jk_stream, acc_node);
        TSAN_ACQUIRE(*s);
        atomic_fetch_sub(&l->queued, 1);
    }
    if (atomic_load_explicit(&l->ready.fd, memory_order_relaxed) >= 0 &&
        atomic_load(&l->queued) == 0) {
        jk_ready_lower(&l->ready);
        if (atomic_load(&l->queued) || atomic_load(&l->closed) || atomic_load(&l->dead))
            jk_ready_raise(&l->ready);
    }
    return n ? 0 : 1;
}

JKTCP_API int jktcp_listener_accept(jktcp_listener id, int timeout_ms, jktcp_stream *out)
{
    if (!out)
        return -EINVAL;
    out->id = 0;
    struct jk_listener *l = listener_get(id);
    if (!l)
        return -EBADF;
    uint64_t deadline = jk_deadline(timeout_ms);
    int r;
    for (;;) {
        unsigned seq = atomic_load(&l->seq);
        struct jk_stream *s = NULL;
        if ((r = try_accept(l, &s)) <= 0) {
            if (s && (r = jk_obj_publish(&s->obj)) == 0)
                out->id = s->obj.id;
            else if (s) /* no table: cannot happen once a handle exists */
                jk_obj_put(&s->obj);
            break;
        }
        if (deadline != JK_FOREVER && jk_mono_ns() >= deadline) {
            r = -EAGAIN;
            break;
        }
        atomic_fetch_add(&l->waiters, 1);
        int w = jk_wait(&l->seq, seq, deadline);
        atomic_fetch_sub(&l->waiters, 1);
        if (w == -EINTR) {
            r = -EINTR;
            break;
        }
    }
    jk_obj_put(&l->obj);
    return r;
}

JKTCP_API int jktcp_listener_close(jktcp_listener id)
{
    struct jk_listener *l = listener_get(id);
    if (!l)
        return -EBADF;
    int r = -EBADF;
    if (!atomic_exchange(&l->closed, true)) {
        jk_obj_unpublish(&l->obj);
        signal_accepters(l);
        jk_submit(l->h, &l->unlisten_cmd); /* fails only when stopping: the stop does it */
        r = 0;
    }
    jk_obj_put(&l->obj);
    return r;
}

JKTCP_API int jktcp_listener_poll_fd(jktcp_listener id)
{
    struct jk_listener *l = listener_get(id);
    if (!l)
        return -EBADF;
    int fd = atomic_load(&l->dead) ? -ESHUTDOWN : 0;
    if (!fd) {
        bool created;
        fd = jk_ready_fd(&l->ready, &created);
        if (fd >= 0 && created &&
            (atomic_load(&l->queued) || atomic_load(&l->closed) || atomic_load(&l->dead)))
            jk_ready_raise(&l->ready);
    }
    jk_obj_put(&l->obj);
    return fd;
}
