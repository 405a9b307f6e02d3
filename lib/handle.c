/*
 * Threaded handle: the adapter runs on its own I/O thread; caller threads
 * reach it through
 *   - a wait-free command queue (liburcu cds_wfcq) plus an eventfd that is
 *     written only while the I/O thread sleeps, and
 *   - each stream's single-producer/single-consumer byte rings (the engine's
 *     own send and receive buffers), so data never crosses a lock shared
 *     with the I/O thread.
 * Callers block on the stream's futex word `seq`, which the I/O thread bumps
 * after every event on the connection and wakes only if someone waits.
 */
#include "handle.h"

#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define JK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define JK_TSAN 1
#endif
#endif
#ifdef JK_TSAN
/* liburcu's queue synchronises with inline asm TSan cannot see */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_RELEASE(p) __tsan_release(p)
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define TSAN_RELEASE(p) ((void)(p))
#define TSAN_ACQUIRE(p) ((void)(p))
#endif

#define MAX_IO (1u << 30)

/* ------------------------------------------------------------------ */
/* Time and futexes                                                   */
/* ------------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Absolute deadline for a timeout; UINT64_MAX = none. */
static uint64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Wait while *word == val, until the deadline. false once it passed. */
static bool futex_wait_until(atomic_uint *word, unsigned val, uint64_t deadline)
{
    struct timespec rel, *tp = NULL;
    if (deadline != UINT64_MAX) {
        uint64_t now = mono_ns();
        if (now >= deadline)
            return false;
        uint64_t d = deadline - now;
        rel.tv_sec = (time_t)(d / 1000000000u);
        rel.tv_nsec = (long)(d % 1000000000u);
        tp = &rel;
    }
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
    return true;
}

static void futex_wake_all(atomic_uint *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Command queue                                                      */
/* ------------------------------------------------------------------ */

static void wake_io(jktcp_handle *h)
{
    /* an RMW reads the latest `sleeping`: with the I/O thread's exchange
     * before it checks the queue, one of us sees the other */
    if (atomic_fetch_or(&h->sleeping, 0)) {
        uint64_t one = 1;
        ssize_t r = write(h->efd, &one, sizeof one);
        (void)r; /* a full counter still wakes the thread */
    }
}

/* Enqueue unless the handle is stopping. The enq counter and stopping
 * flag form a Dekker pair with the I/O thread's final drain, so nothing
 * enqueued is ever left unanswered. */
static int submit(jktcp_handle *h, struct jk_cmd *cmd)
{
    atomic_fetch_add(&h->enq, 1);
    if (atomic_load(&h->stopping)) {
        atomic_fetch_sub(&h->enq, 1);
        return -ESHUTDOWN;
    }
    cds_wfcq_node_init(&cmd->node);
    TSAN_RELEASE(cmd);
    cds_wfcq_enqueue(&h->qhead, &h->qtail, &cmd->node);
    atomic_fetch_sub(&h->enq, 1);
    wake_io(h);
    return 0;
}

static void complete(struct jk_cmd *cmd, int result)
{
    cmd->result = result;
    atomic_store(&cmd->done, 1);
    futex_wake_all(&cmd->done);
}

/* Submit and wait for the I/O thread's answer (always bounded: the I/O
 * thread answers every command, with -ESHUTDOWN when stopping). */
static int call(jktcp_handle *h, struct jk_cmd *cmd)
{
    atomic_init(&cmd->done, 0);
    int r = submit(h, cmd);
    if (r < 0)
        return r;
    while (!atomic_load(&cmd->done))
        futex_wait_until(&cmd->done, 0, UINT64_MAX);
    return cmd->result;
}

/* ------------------------------------------------------------------ */
/* Streams: lifetime                                                  */
/* ------------------------------------------------------------------ */

static void handle_unref(jktcp_handle *h)
{
    if (atomic_fetch_sub(&h->refs, 1) == 1) {
        close(h->efd);
        cds_wfcq_destroy(&h->qhead, &h->qtail);
        free(h);
    }
}

static jktcp_stream *stream_new(jktcp_handle *h)
{
    jktcp_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->efd, -1);
    pthread_mutex_init(&s->rd_lock, NULL);
    pthread_mutex_init(&s->wr_lock, NULL);
    s->h = h;
    atomic_fetch_add(&h->refs, 1);
    s->kick.kind = CMD_KICK;
    s->kick.async = true;
    s->kick.s = s;
    s->close_cmd.async = true;
    s->close_cmd.s = s;
    s->release_cmd.kind = CMD_RELEASE;
    s->release_cmd.async = true;
    s->release_cmd.s = s;
    return s;
}

static void stream_free(jktcp_stream *s)
{
    int efd = atomic_load(&s->efd);
    if (efd >= 0)
        close(efd);
    pthread_mutex_destroy(&s->rd_lock);
    pthread_mutex_destroy(&s->wr_lock);
    jktcp_handle *h = s->h;
    free(s);
    handle_unref(h);
}

/* Every public call brackets its work with enter/leave so that handle
 * close can wait until no call is inside a stream before freeing rings. */
static int enter(jktcp_stream *s)
{
    atomic_fetch_add(&s->active, 1);
    if (atomic_load(&s->dead)) {
        atomic_fetch_sub(&s->active, 1);
        return -ESHUTDOWN;
    }
    return 0;
}

static void leave(jktcp_stream *s)
{
    if (atomic_fetch_sub(&s->active, 1) == 1 && atomic_load(&s->dead))
        futex_wake_all(&s->seq);
}

/* Wake everyone blocked on s (I/O thread after events, or a closer). */
static void stream_signal(jktcp_stream *s)
{
    atomic_fetch_add(&s->seq, 1);
    if (atomic_load(&s->waiters))
        futex_wake_all(&s->seq);
}

static void stream_wait(jktcp_stream *s, unsigned seq, uint64_t deadline)
{
    atomic_fetch_add(&s->waiters, 1);
    futex_wait_until(&s->seq, seq, deadline);
    atomic_fetch_sub(&s->waiters, 1);
}

static void kick(jktcp_stream *s)
{
    if (!atomic_exchange(&s->kicked, true) && submit(s->h, &s->kick) < 0)
        atomic_store(&s->kicked, false);
}

/* ------------------------------------------------------------------ */
/* I/O thread: events from the engine                                 */
/* ------------------------------------------------------------------ */

static void signal_poll_fd(jktcp_stream *s)
{
    int efd = atomic_load(&s->efd);
    if (efd < 0)
        return;
    bool ready = atomic_load(&s->eof) || atomic_load(&s->err) ||
                 (s->rcv && jk_ring_used(s->rcv) > 0);
    if (ready && !atomic_exchange(&s->efd_set, true)) {
        uint64_t one = 1;
        ssize_t r = write(efd, &one, sizeof one);
        (void)r;
    }
}

static void publish(jktcp_stream *s, struct jktcp_conn *c)
{
    if (c->err)
        atomic_store(&s->err, c->err);
    if (c->fin_rcvd)
        atomic_store(&s->eof, true);
    atomic_store(&s->adv_wnd, c->rcv_adv - c->rcv_nxt);
    stream_signal(s);
    signal_poll_fd(s);
}

static void io_list_add(jktcp_handle *h, jktcp_stream *s)
{
    s->io_prev = NULL;
    s->io_next = h->streams;
    if (h->streams)
        h->streams->io_prev = s;
    h->streams = s;
}

static void io_list_del(jktcp_handle *h, jktcp_stream *s)
{
    if (s->io_prev)
        s->io_prev->io_next = s->io_next;
    else if (h->streams == s)
        h->streams = s->io_next;
    if (s->io_next)
        s->io_next->io_prev = s->io_prev;
    s->io_next = s->io_prev = NULL;
}

/* Attach a stream to a connection (I/O thread). */
static void bind_stream(jktcp_handle *h, jktcp_stream *s, struct jktcp_conn *c)
{
    s->c = c;
    s->snd = &c->snd;
    s->rcv = &c->rcv;
    c->user = s;
    io_list_add(h, s);
}

/* Detach and let the engine finish the connection (I/O thread). */
static void unbind_stream(jktcp_handle *h, jktcp_stream *s)
{
    struct jktcp_conn *c = s->c;
    if (!c)
        return;
    io_list_del(h, s);
    c->user = NULL;
    s->c = NULL;
    jk_adapter_release(c);
}

static void finish_connect(jktcp_handle *h, jktcp_stream *s, struct jktcp_conn *c)
{
    struct jk_cmd *cmd = s->connect_cmd;
    s->connect_cmd = NULL;
    if (c->state == JKTCP_CLOSED) {
        int err = c->err ? c->err : -ECONNREFUSED;
        unbind_stream(h, s);
        complete(cmd, err);
        return;
    }
    c->t_close = 0; /* the connect deadline */
    *(jktcp_stream **)cmd->out = s;
    complete(cmd, 0);
}

static void accept_ready(jktcp_handle *h, struct jktcp_conn_listener *cl)
{
    jktcp_listener *l = cl->owner;
    struct jktcp_conn *c;
    while ((c = jk_listener_pop(cl))) {
        jktcp_stream *s = stream_new(h);
        if (!s) {
            jk_tcp_abort(c, true);
            jk_adapter_release(c);
            continue;
        }
        bind_stream(h, s, c);
        publish(s, c);
        atomic_fetch_add(&cl->handed, 1);
        pthread_mutex_lock(&l->mu);
        if (l->tail)
            l->tail->acc_next = s;
        else
            l->head = s;
        l->tail = s;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
}

/* Adapter hook: a connection was processed in the output pass. */
static void on_conn_event(struct jktcp_adapter *a, struct jktcp_conn *c)
{
    jktcp_handle *h = a->owner;
    jktcp_stream *s = c->user;
    if (!s) {
        if (c->queued && c->listener && c->listener->owner)
            accept_ready(h, c->listener);
        return;
    }
    if (s->connect_cmd && c->state != JKTCP_SYN_SENT && c->state != JKTCP_SYN_RCVD) {
        publish(s, c);
        finish_connect(h, s, c);
        return;
    }
    publish(s, c);
}

/* ------------------------------------------------------------------ */
/* I/O thread: commands                                               */
/* ------------------------------------------------------------------ */

static void do_connect(jktcp_handle *h, struct jk_cmd *cmd)
{
    struct jktcp_adapter *a = h->a;
    int err = h->closing ? -ESHUTDOWN : a->err;
    struct jktcp_conn *c = err ? NULL : jk_adapter_new_conn(a, 0, cmd->port, true, &err);
    if (!c) {
        complete(cmd, err);
        return;
    }
    jktcp_stream *s = cmd->s;
    bind_stream(h, s, c);
    s->connect_cmd = cmd;
    jk_tcp_connect(c);
    if (cmd->timeout_ms > 0)
        c->t_close = jk_now(a) + (uint64_t)cmd->timeout_ms * 1000;
}

static void do_close(jktcp_handle *h, jktcp_stream *s, bool abort)
{
    (void)h;
    struct jktcp_conn *c = s->c;
    if (!c || s->close_done)
        return;
    s->close_done = true;
    if (abort || c->state == JKTCP_SYN_SENT)
        jk_tcp_abort(c, abort);
    else if (c->state != JKTCP_CLOSED && jk_ring_used(&c->rcv) > 0)
        jk_tcp_abort(c, true); /* unread data: RST, like a kernel socket */
    else if (c->state != JKTCP_CLOSED)
        jk_tcp_shutdown(c);
    jk_adapter_mark_dirty(c);
}

static void do_release(jktcp_handle *h, jktcp_stream *s)
{
    if (s->connect_cmd) { /* cannot happen: a connecting caller holds a ref */
        complete(s->connect_cmd, -ECANCELED);
        s->connect_cmd = NULL;
    }
    do_close(h, s, false);
    struct jktcp_conn *c = s->c;
    if (c && c->state == JKTCP_FIN_WAIT_2)
        c->t_close = jk_now(h->a) + JK_FIN_WAIT2_US;
    unbind_stream(h, s);
    stream_free(s);
}

static void do_listen(jktcp_handle *h, struct jk_cmd *cmd)
{
    jktcp_listener *l = cmd->l;
    int r = h->closing ? -ESHUTDOWN : h->a->err;
    if (!r)
        r = jktcp_adapter_listen_internal(h->a, cmd->port, cmd->backlog, &l->cl);
    if (r == 0) {
        l->cl->owner = l;
        l->io_prev = NULL;
        l->io_next = h->listeners;
        if (h->listeners)
            h->listeners->io_prev = l;
        h->listeners = l;
    }
    complete(cmd, r);
}

static void listener_list_del(jktcp_handle *h, jktcp_listener *l)
{
    if (l->io_prev)
        l->io_prev->io_next = l->io_next;
    else if (h->listeners == l)
        h->listeners = l->io_next;
    if (l->io_next)
        l->io_next->io_prev = l->io_prev;
    l->io_next = l->io_prev = NULL;
}

static void do_unlisten(jktcp_handle *h, struct jk_cmd *cmd)
{
    jktcp_listener *l = cmd->l;
    pthread_mutex_lock(&l->mu);
    struct jktcp_conn_listener *cl = l->cl;
    l->cl = NULL;
    pthread_mutex_unlock(&l->mu);
    if (cl) {
        listener_list_del(h, l);
        jk_adapter_unlisten_internal(cl);
    }
    complete(cmd, 0);
}

/* The handle is going: fail blocked and future accepts, forget the
 * adapter's listener before the adapter is freed. */
static void kill_listeners(jktcp_handle *h)
{
    while (h->listeners) {
        jktcp_listener *l = h->listeners;
        listener_list_del(h, l);
        pthread_mutex_lock(&l->mu);
        l->dead = true;
        l->cl = NULL;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
}

static void do_kick(jktcp_handle *h, jktcp_stream *s)
{
    (void)h;
    atomic_store(&s->kicked, false);
    struct jktcp_conn *c = s->c;
    if (!c)
        return;
    jk_tcp_app_read(c);
    jk_adapter_mark_dirty(c);
}

static void do_sync(jktcp_handle *h, struct jk_cmd *cmd)
{
    struct jktcp_adapter *a = h->a;
    int r = 0;
    switch (cmd->kind) {
    case CMD_PCAP:
        r = jk_adapter_set_pcap(a, cmd->path);
        break;
    case CMD_STATS:
        *(jktcp_stats *)cmd->out = a->st;
        ((jktcp_stats *)cmd->out)->io_wakeups = atomic_load(&h->wakeups);
        break;
    case CMD_INFO:
        if (cmd->s->c)
            r = jk_conn_info_internal(cmd->s->c, cmd->out);
        else
            r = -ENOTCONN;
        break;
    case CMD_SHUTDOWN:
        if (!cmd->s->c || cmd->s->c->state == JKTCP_CLOSED)
            r = -ENOTCONN;
        else
            jk_tcp_shutdown(cmd->s->c);
        break;
    }
    complete(cmd, r);
}

/* Returns true when a STOP command arrived. */
static bool run_command(jktcp_handle *h, struct jk_cmd *cmd)
{
    switch (cmd->kind) {
    case CMD_CONNECT: do_connect(h, cmd); break;
    case CMD_LISTEN: do_listen(h, cmd); break;
    case CMD_UNLISTEN: do_unlisten(h, cmd); break;
    case CMD_CLOSE: do_close(h, cmd->s, false); break;
    case CMD_ABORT: do_close(h, cmd->s, true); break;
    case CMD_RELEASE: do_release(h, cmd->s); break;
    case CMD_KICK: do_kick(h, cmd->s); break;
    case CMD_STOP:
        h->linger_ms = cmd->timeout_ms;
        h->closing = true; /* connects from now on fail: the handle is going */
        complete(cmd, 0);
        return true;
    default: do_sync(h, cmd); break;
    }
    return false;
}

static bool run_queue(jktcp_handle *h)
{
    bool stop = false;
    struct cds_wfcq_node *n;
    while ((n = __cds_wfcq_dequeue_blocking(&h->qhead, &h->qtail))) {
        struct jk_cmd *cmd = caa_container_of(n, struct jk_cmd, node);
        TSAN_ACQUIRE(cmd);
        if (run_command(h, cmd))
            stop = true;
    }
    return stop;
}

/* ------------------------------------------------------------------ */
/* I/O thread: loop and shutdown                                      */
/* ------------------------------------------------------------------ */

static void io_sleep(jktcp_handle *h)
{
    struct jktcp_adapter *a = h->a;
    atomic_exchange(&h->sleeping, 1);
    if (!cds_wfcq_empty(&h->qhead, &h->qtail)) {
        atomic_store(&h->sleeping, 0);
        return;
    }
    int t = jk_adapter_next_timeout(a);
    struct pollfd p[2] = {
        {h->efd, POLLIN, 0},
        {jk_transport_poll_fd(a->t), jk_transport_poll_events(a->t), 0},
    };
    if (a->tx_blocked)
        p[1].events |= POLLOUT;
    int np = a->err ? 1 : 2;
    poll(p, (nfds_t)np, t);
    atomic_store(&h->sleeping, 0);
    if (p[0].revents & POLLIN) {
        uint64_t v;
        ssize_t r = read(h->efd, &v, sizeof v);
        (void)r;
    }
}

/* Give closed streams' data up to linger_ms to get out. */
static void linger(jktcp_handle *h)
{
    struct jktcp_adapter *a = h->a;
    int ms = h->linger_ms < 0 ? 1000 : h->linger_ms;
    uint64_t deadline = mono_ns() + (uint64_t)ms * 1000000u;
    while (!a->err && mono_ns() < deadline) {
        run_queue(h);
        jk_adapter_step(a);
        bool busy = false;
        for (struct jktcp_conn *c = a->all; c && !busy; c = c->all_next)
            busy = !c->user && !jk_tcp_flushed(c);
        if (!busy)
            break;
        io_sleep(h);
    }
}

/* Answer what is still queued; no new command can arrive any more. */
static void drain_final(jktcp_handle *h)
{
    atomic_store(&h->stopping, 1);
    while (atomic_load(&h->enq))
        sched_yield();
    struct cds_wfcq_node *n;
    while ((n = __cds_wfcq_dequeue_blocking(&h->qhead, &h->qtail))) {
        struct jk_cmd *cmd = caa_container_of(n, struct jk_cmd, node);
        TSAN_ACQUIRE(cmd);
        if (cmd->kind == CMD_RELEASE || cmd->kind == CMD_CLOSE || cmd->kind == CMD_ABORT ||
            cmd->kind == CMD_KICK || cmd->kind == CMD_UNLISTEN)
            run_command(h, cmd);
        else
            complete(cmd, -ESHUTDOWN);
    }
}

/* Fail every stream; wait until no call is inside any of them. */
static void kill_streams(jktcp_handle *h)
{
    for (jktcp_stream *s = h->streams, *next; s; s = next) {
        next = s->io_next;
        if (s->connect_cmd) { /* its caller frees it as soon as it hears */
            struct jk_cmd *cmd = s->connect_cmd;
            s->connect_cmd = NULL;
            io_list_del(h, s);
            s->c->user = NULL;
            s->c = NULL;
            complete(cmd, -ESHUTDOWN);
        }
    }
    for (jktcp_stream *s = h->streams; s; s = s->io_next) {
        atomic_store(&s->dead, true);
        stream_signal(s);
        int efd = atomic_load(&s->efd);
        if (efd >= 0) {
            uint64_t one = 1;
            ssize_t r = write(efd, &one, sizeof one);
            (void)r;
        }
    }
    for (jktcp_stream *s = h->streams; s; s = s->io_next) {
        while (atomic_load(&s->active)) {
            unsigned seq = atomic_load(&s->seq);
            if (atomic_load(&s->active))
                futex_wait_until(&s->seq, seq, mono_ns() + 1000000u);
        }
    }
    /* streams stay allocated for their remaining references; detach them */
    while (h->streams) {
        jktcp_stream *s = h->streams;
        io_list_del(h, s);
        s->c->user = NULL;
        s->c = NULL;
        s->snd = s->rcv = NULL;
        atomic_store(&s->detached, true); /* last touch: unref may free it */
    }
}

static void *io_main(void *arg)
{
    jktcp_handle *h = arg;
    struct jktcp_adapter *a = h->a;
    for (;;) {
        atomic_fetch_add_explicit(&h->wakeups, 1, memory_order_relaxed);
        if (run_queue(h))
            break;
        jk_adapter_step(a);
        if ((!a->dirty_head || a->tx_blocked) && !a->input_more)
            io_sleep(h);
    }
    linger(h);
    drain_final(h);
    kill_listeners(h);
    kill_streams(h);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Public: handle                                                     */
/* ------------------------------------------------------------------ */

JKTCP_API int jktcp_handle_start(jktcp_adapter *a, jktcp_handle **out)
{
    if (!a || !out)
        return -EINVAL;
    if (a->owner)
        return -EBUSY;
    jktcp_handle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        free(h);
        return -errno;
    }
    h->a = a;
    cds_wfcq_init(&h->qhead, &h->qtail);
    atomic_init(&h->refs, 1);
    a->owner = h;
    a->on_conn_event = on_conn_event;
    int r = pthread_create(&h->thread, NULL, io_main, h);
    if (r) {
        a->owner = NULL;
        a->on_conn_event = NULL;
        close(h->efd);
        free(h);
        return -r;
    }
    *out = h;
    return 0;
}

JKTCP_API int jktcp_handle_close(jktcp_handle *h, int linger_ms)
{
    if (!h)
        return -EINVAL;
    struct jk_cmd cmd = {.kind = CMD_STOP, .timeout_ms = linger_ms};
    int r = call(h, &cmd);
    if (r == -ESHUTDOWN)
        return -EBADF; /* closed twice */
    pthread_join(h->thread, NULL);
    struct jktcp_adapter *a = h->a;
    a->owner = NULL;
    a->on_conn_event = NULL;
    jk_adapter_destroy(a);
    h->a = NULL;
    handle_unref(h);
    return 0;
}

JKTCP_API int jktcp_handle_pcap(jktcp_handle *h, const char *path)
{
    if (!h)
        return -EINVAL;
    struct jk_cmd cmd = {.kind = CMD_PCAP, .path = path};
    return call(h, &cmd);
}

JKTCP_API int jktcp_handle_stats(jktcp_handle *h, jktcp_stats *out)
{
    if (!h || !out)
        return -EINVAL;
    struct jk_cmd cmd = {.kind = CMD_STATS, .out = out};
    return call(h, &cmd);
}

JKTCP_API int jktcp_handle_connect(jktcp_handle *h, uint16_t port, int timeout_ms,
                                   jktcp_stream **out)
{
    if (!h || !out || port == 0)
        return -EINVAL;
    *out = NULL;
    jktcp_stream *s = stream_new(h);
    if (!s)
        return -ENOMEM;
    jktcp_stream *res = NULL;
    struct jk_cmd cmd = {.kind = CMD_CONNECT, .port = port, .timeout_ms = timeout_ms,
                         .s = s, .out = &res};
    int r = call(h, &cmd);
    if (r < 0) {
        stream_free(s); /* the I/O thread already detached it */
        return r;
    }
    *out = res;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public: listeners                                                  */
/* ------------------------------------------------------------------ */

JKTCP_API int jktcp_handle_listen(jktcp_handle *h, uint16_t port, int backlog,
                                  jktcp_listener **out)
{
    if (!h || !out || port == 0)
        return -EINVAL;
    jktcp_listener *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->h = h;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    struct jk_cmd cmd = {.kind = CMD_LISTEN, .port = port, .backlog = backlog, .l = l};
    int r = call(h, &cmd);
    if (r < 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        free(l);
        return r;
    }
    atomic_fetch_add(&h->refs, 1);
    *out = l;
    return 0;
}

static void deadline_timespec(uint64_t deadline, struct timespec *ts)
{
    /* condvar waits use CLOCK_REALTIME: convert the remaining time */
    uint64_t now = mono_ns(), rem = deadline > now ? deadline - now : 0;
    clock_gettime(CLOCK_REALTIME, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + rem % 1000000000u;
    ts->tv_sec += (time_t)(rem / 1000000000u + ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

JKTCP_API int jktcp_listener_accept(jktcp_listener *l, int timeout_ms, jktcp_stream **out)
{
    if (!l || !out)
        return -EINVAL;
    uint64_t deadline = deadline_of(timeout_ms);
    int r = 0;
    atomic_fetch_add(&l->active, 1);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->closed || l->dead) {
            r = l->dead ? -ESHUTDOWN : -EBADF;
            break;
        }
        if (l->head) {
            jktcp_stream *s = l->head;
            l->head = s->acc_next;
            if (!l->head)
                l->tail = NULL;
            s->acc_next = NULL;
            *out = s;
            if (l->cl) /* under mu: the I/O thread clears it under mu */
                atomic_fetch_sub(&l->cl->handed, 1);
            break;
        }
        if (timeout_ms == 0 || (deadline != UINT64_MAX && mono_ns() >= deadline)) {
            r = -EAGAIN;
            break;
        }
        if (deadline == UINT64_MAX) {
            pthread_cond_wait(&l->cv, &l->mu);
        } else {
            struct timespec ts;
            deadline_timespec(deadline, &ts);
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        }
    }
    pthread_mutex_unlock(&l->mu);
    atomic_fetch_sub(&l->active, 1);
    return r;
}

JKTCP_API void jktcp_listener_close(jktcp_listener *l)
{
    if (!l)
        return;
    jktcp_handle *h = l->h;
    pthread_mutex_lock(&l->mu);
    l->closed = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    while (atomic_load(&l->active))
        sched_yield();
    struct jk_cmd cmd = {.kind = CMD_UNLISTEN, .l = l};
    call(h, &cmd);
    while (l->head) { /* accepted by the engine, never by the user: reset */
        jktcp_stream *s = l->head;
        l->head = s->acc_next;
        jktcp_stream_abort(s);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
    handle_unref(h);
}

/* ------------------------------------------------------------------ */
/* Public: streams                                                    */
/* ------------------------------------------------------------------ */

JKTCP_API jktcp_stream *jktcp_stream_ref(jktcp_stream *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

JKTCP_API void jktcp_stream_unref(jktcp_stream *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (submit(s->h, &s->release_cmd) == 0)
        return; /* the I/O thread closes, releases and frees it */
    /* the handle is stopping: kill_streams detaches every stream still
     * attached; free only after its last touch */
    while (!atomic_load(&s->detached))
        sched_yield();
    stream_free(s);
}

static int stream_gone(jktcp_stream *s)
{
    if (atomic_load(&s->closed))
        return -EBADF;
    if (atomic_load(&s->dead))
        return -ESHUTDOWN;
    return 0;
}

static void maybe_window_update(jktcp_stream *s)
{
    uint32_t adv = atomic_load(&s->adv_wnd);
    uint32_t free_now = jk_ring_free_space(s->rcv);
    if ((uint64_t)adv * 2 <= s->rcv->cap && free_now >= 2 * (uint64_t)adv)
        kick(s);
}

static void rearm_poll_fd(jktcp_stream *s)
{
    int efd = atomic_load(&s->efd);
    if (efd < 0 || !atomic_load(&s->efd_set))
        return;
    uint64_t v;
    ssize_t r = read(efd, &v, sizeof v);
    (void)r;
    /* RMW pairs with the I/O thread's exchange after it produced data */
    atomic_exchange(&s->efd_set, false);
    if (jk_ring_used(s->rcv) > 0 || atomic_load(&s->eof) || atomic_load(&s->err)) {
        if (!atomic_exchange(&s->efd_set, true)) {
            uint64_t one = 1;
            r = write(efd, &one, sizeof one);
        }
    }
}

static ssize_t read_locked(jktcp_stream *s, void *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        unsigned seq = atomic_load(&s->seq);
        int e = stream_gone(s);
        if (e)
            return e;
        bool eof = atomic_load(&s->eof); /* before the ring: see data first */
        int err = atomic_load(&s->err);
        uint32_t n = jk_ring_read(s->rcv, buf, (uint32_t)len);
        if (n) {
            maybe_window_update(s);
            rearm_poll_fd(s);
            return n;
        }
        rearm_poll_fd(s);
        if (eof)
            return 0;
        if (err)
            return err;
        if (timeout_ms == 0 || (deadline != UINT64_MAX && mono_ns() >= deadline))
            return -EAGAIN;
        stream_wait(s, seq, deadline);
    }
}

JKTCP_API ssize_t jktcp_stream_read(jktcp_stream *s, void *buf, size_t len, int timeout_ms)
{
    if (!s || (!buf && len))
        return -EINVAL;
    int e = enter(s);
    if (e)
        return e;
    ssize_t r = 0;
    if (len) {
        if (len > MAX_IO)
            len = MAX_IO;
        pthread_mutex_lock(&s->rd_lock);
        r = read_locked(s, buf, len, timeout_ms);
        pthread_mutex_unlock(&s->rd_lock);
    } else {
        r = stream_gone(s);
    }
    leave(s);
    return r;
}

static ssize_t write_locked(jktcp_stream *s, const uint8_t *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = deadline_of(timeout_ms);
    size_t done = 0;
    for (;;) {
        unsigned seq = atomic_load(&s->seq);
        int e = stream_gone(s);
        if (!e && atomic_load(&s->wr_shut))
            e = -EPIPE;
        if (!e)
            e = atomic_load(&s->err);
        if (e)
            return done ? (ssize_t)done : e;
        uint32_t n = jk_ring_write(s->snd, buf + done, (uint32_t)(len - done));
        if (n) {
            done += n;
            kick(s);
        }
        if (done == len)
            return (ssize_t)done;
        if (n)
            continue; /* the ring may have drained meanwhile */
        if (timeout_ms == 0 || (deadline != UINT64_MAX && mono_ns() >= deadline))
            return done ? (ssize_t)done : -EAGAIN;
        stream_wait(s, seq, deadline);
    }
}

JKTCP_API ssize_t jktcp_stream_write(jktcp_stream *s, const void *buf, size_t len, int timeout_ms)
{
    if (!s || (!buf && len))
        return -EINVAL;
    int e = enter(s);
    if (e)
        return e;
    ssize_t r = 0;
    if (len > MAX_IO)
        len = MAX_IO;
    pthread_mutex_lock(&s->wr_lock);
    r = len ? write_locked(s, buf, len, timeout_ms) : stream_gone(s);
    pthread_mutex_unlock(&s->wr_lock);
    leave(s);
    return r;
}

JKTCP_API ssize_t jktcp_stream_write_all(jktcp_stream *s, const void *buf, size_t len,
                                         int timeout_ms)
{
    if (!s || (!buf && len))
        return -EINVAL;
    int e = enter(s);
    if (e)
        return e;
    uint64_t deadline = deadline_of(timeout_ms);
    size_t done = 0;
    ssize_t r = 0;
    pthread_mutex_lock(&s->wr_lock);
    while (done < len) {
        int left = -1;
        if (deadline != UINT64_MAX) {
            uint64_t now = mono_ns();
            left = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
        }
        size_t chunk = len - done > MAX_IO ? MAX_IO : len - done;
        r = write_locked(s, (const uint8_t *)buf + done, chunk, left);
        if (r <= 0)
            break;
        done += (size_t)r;
        if (left == 0 && done < len) {
            r = -EAGAIN;
            break;
        }
    }
    pthread_mutex_unlock(&s->wr_lock);
    leave(s);
    if (done == len)
        return (ssize_t)len;
    return r < 0 ? r : -EAGAIN;
}

JKTCP_API int jktcp_stream_shutdown(jktcp_stream *s)
{
    if (!s)
        return -EINVAL;
    int e = enter(s);
    if (e)
        return e;
    if (!(e = stream_gone(s))) {
        /* writers finish their call first: FIN goes after their bytes */
        pthread_mutex_lock(&s->wr_lock);
        atomic_store(&s->wr_shut, true);
        struct jk_cmd cmd = {.kind = CMD_SHUTDOWN, .s = s};
        e = call(s->h, &cmd);
        pthread_mutex_unlock(&s->wr_lock);
    }
    leave(s);
    return e;
}

static int close_common(jktcp_stream *s, int kind)
{
    if (!s)
        return -EINVAL;
    int e = enter(s);
    if (e) {
        jktcp_stream_unref(s);
        return e;
    }
    if (atomic_exchange(&s->closed, true)) {
        leave(s);
        jktcp_stream_unref(s);
        return -EBADF;
    }
    stream_signal(s); /* blocked callers return -EBADF */
    int efd = atomic_load(&s->efd);
    if (efd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(efd, &one, sizeof one);
        (void)r;
    }
    s->close_cmd.kind = kind;
    submit(s->h, &s->close_cmd);
    leave(s);
    jktcp_stream_unref(s);
    return 0;
}

JKTCP_API int jktcp_stream_close(jktcp_stream *s)
{
    return close_common(s, CMD_CLOSE);
}

JKTCP_API int jktcp_stream_abort(jktcp_stream *s)
{
    return close_common(s, CMD_ABORT);
}

JKTCP_API int jktcp_stream_info(jktcp_stream *s, jktcp_info *out)
{
    if (!s || !out)
        return -EINVAL;
    int e = enter(s);
    if (e)
        return e;
    if (!(e = stream_gone(s))) {
        struct jk_cmd cmd = {.kind = CMD_INFO, .s = s, .out = out};
        e = call(s->h, &cmd);
    }
    leave(s);
    return e;
}

JKTCP_API int jktcp_stream_poll_fd(jktcp_stream *s)
{
    if (!s)
        return -EINVAL;
    int e = enter(s);
    if (e)
        return e;
    if ((e = stream_gone(s))) {
        leave(s);
        return e;
    }
    int fd = atomic_load(&s->efd);
    if (fd < 0) {
        int nfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (nfd < 0) {
            leave(s);
            return -errno;
        }
        int expect = -1;
        if (atomic_compare_exchange_strong(&s->efd, &expect, nfd)) {
            fd = nfd;
            kick(s); /* let the I/O thread signal data already there */
        } else {
            close(nfd);
            fd = expect;
        }
    }
    leave(s);
    return fd;
}
