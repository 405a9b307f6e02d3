/* SPDX-License-Identifier: MIT */
/*
 * Closing wakes every blocked call: read, write, accept and connect return
 * within the limit when their stream, listener or handle is closed.
 *
 * Suite `thread_close`: the threaded handle (jktcp_handle, jktcp_stream,
 * jktcp_listener) against the Linux kernel's TCP in a private network
 * namespace over TUN (thread_test.h). Written against tests/support/minitest.h:
 * the same source runs under Criterion and under ThreadSanitizer
 * (`make test-tsan`). Skipped (not failed) without network namespaces or
 * /dev/net/tun.
 */
#include "minitest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "rig.h"
#include "thread_test.h"

/* ------------------------------------------------------------------------ */
/* Closing wakes blocked read / write / accept / connect                    */
/* ------------------------------------------------------------------------ */

enum { OP_READ, OP_WRITE, OP_ACCEPT, OP_CONNECT };
static const char *const op_names[] = {"read", "write", "accept", "connect"};

struct blocked {
    int op;
    jktcp_stream s; /* READ/WRITE: the thread's own reference */
    jktcp_listener l;
    jktcp_handle h;
    uint16_t port;
    int timeout_ms;
    atomic_bool started, returned;
    long result;
    uint64_t t_ret;
    pthread_t th;
};

static void *blocked_main(void *arg)
{
    struct blocked *b = arg;
    static uint8_t wbuf[64 * 1024];
    uint8_t rbuf[4096];
    jktcp_stream out = {0};
    long r = -1;
    atomic_store(&b->started, true);
    switch (b->op) {
    case OP_READ:
        r = jktcp_stream_read(b->s, rbuf, sizeof rbuf, b->timeout_ms);
        break;
    case OP_WRITE:
        r = jktcp_stream_write(b->s, wbuf, sizeof wbuf, b->timeout_ms);
        break;
    case OP_ACCEPT:
        r = jktcp_listener_accept(b->l, b->timeout_ms, &out);
        break;
    case OP_CONNECT:
        r = jktcp_handle_connect(b->h, b->port, b->timeout_ms, &out);
        break;
    }
    b->t_ret = now_ns();
    b->result = r;
    atomic_store(&b->returned, true);
    if (r == 0 && out.id)
        jktcp_stream_abort(out);
    return NULL;
}

static void blocked_start(struct blocked *b)
{
    b->timeout_ms = 4000; /* a missed wake-up fails (-EAGAIN), not hangs */
    start_thread(&b->th, blocked_main, b);
}

/* Wait until every thread is (very likely) parked inside its call. */
static void blocked_settle(struct blocked *b, int n)
{
    for (int i = 0; i < n; i++)
        while (!atomic_load(&b[i].started))
            sleep_ms(1);
    sleep_ms(300);
    for (int i = 0; i < n; i++)
        JT_ASSERT(!atomic_load(&b[i].returned), "%s returned %ld (%s) before any close",
                  op_names[b[i].op], b[i].result, err_name(b[i].result));
}

static void blocked_check(struct blocked *b, uint64_t t_close, long expect)
{
    join_or_fail(b->th, 15000 * SLOW_FACTOR, op_names[b->op]);
    double dt = ms_since(t_close, b->t_ret);
    JT_LOG("blocked %s woke after %.2f ms with %ld (%s)", op_names[b->op], dt, b->result,
           err_name(b->result));
    JT_ASSERT(b->result == expect, "blocked %s returned %ld (%s), expected %ld (%s)",
              op_names[b->op], b->result, err_name(b->result), expect, err_name(expect));
    JT_ASSERT(dt < WAKE_LIMIT_MS, "blocked %s returned %.1f ms after the close (limit %d ms)",
              op_names[b->op], dt, WAKE_LIMIT_MS);
}

struct close_setup {
    struct tt t;
    struct jkt_server echo, noread;
    jktcp_stream sr, sw;
    jktcp_listener l;
    struct blocked b[3];
};

static void close_setup(struct close_setup *c)
{
    memset(c, 0, sizeof *c);
    tt_up(&c->t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&c->t, NULL, 64 * KiB, 64 * KiB);
    server_up(&c->t, &c->echo, JKT_SRV_ECHO);
    c->noread.rcvbuf = 4096;
    server_up(&c->t, &c->noread, JKT_SRV_NOREAD);
    c->sr = connect_ok(h, c->echo.port);
    c->sw = connect_ok(h, c->noread.port);
    int rc = jktcp_handle_listen(h, 7000, 4, &c->l);
    JT_ASSERT(rc == 0, "listen: %s", err_name(rc));
    rig_fill(c->sw); /* the peer is a NOREAD server */
    c->b[0] = (struct blocked){.op = OP_READ, .s = c->sr};
    c->b[1] = (struct blocked){.op = OP_WRITE, .s = c->sw};
    c->b[2] = (struct blocked){.op = OP_ACCEPT, .l = c->l};
    for (int i = 0; i < 3; i++)
        blocked_start(&c->b[i]);
    blocked_settle(c->b, 3);
}

JT_TEST(thread_close, stream_close_wakes_read_write_accept, 60)
{
    static struct close_setup c;
    close_setup(&c);
    uint64_t t_r = now_ns();
    JT_ASSERT(jktcp_stream_close(c.sr) == 0, "close sr");
    uint64_t t_w = now_ns();
    JT_ASSERT(jktcp_stream_close(c.sw) == 0, "close sw");
    uint64_t t_a = now_ns();
    jktcp_listener_close(c.l);
    blocked_check(&c.b[0], t_r, -EBADF);
    blocked_check(&c.b[1], t_w, -EBADF);
    blocked_check(&c.b[2], t_a, -EBADF);
    tt_down(&c.t);
    jkt_server_stop(&c.echo);
    jkt_server_stop(&c.noread);
}

JT_TEST(thread_close, handle_close_wakes_read_write_accept, 60)
{
    static struct close_setup c;
    close_setup(&c);
    jktcp_handle h = c.t.h;
    c.t.h = (jktcp_handle){0};
    uint64_t t0 = now_ns();
    int rc = jktcp_handle_close(h, 0);
    double dt = ms_since(t0, now_ns());
    JT_ASSERT(rc == 0, "handle_close: %s", err_name(rc));
    for (int i = 0; i < 3; i++)
        blocked_check(&c.b[i], t0, -ESHUTDOWN);
    JT_ASSERT(dt < WAKE_LIMIT_MS, "handle_close itself took %.1f ms", dt);
    /* ids outlive the handle and fail cleanly until closed (rule 5) */
    uint8_t b[4];
    ssize_t r = jktcp_stream_read(c.sr, b, sizeof b, 0);
    JT_ASSERT(r == -ESHUTDOWN, "read after handle close: %zd (%s)", r, err_name(r));
    rc = jktcp_stream_close(c.sr);
    JT_ASSERT(rc == 0, "stream close after handle close: %s", err_name(rc));
    rc = jktcp_stream_close(c.sr);
    JT_ASSERT(rc == -EBADF, "second stream close after handle close: %s", err_name(rc));
    rc = jktcp_stream_close(c.sw);
    JT_ASSERT(rc == 0, "stream close after handle close: %s", err_name(rc));
    rc = jktcp_listener_close(c.l);
    JT_ASSERT(rc == 0, "listener close after handle close: %s", err_name(rc));
    tt_down(&c.t);
    jkt_server_stop(&c.echo);
    jkt_server_stop(&c.noread);
}

/* A connection the engine accepted and queued before the handle closed:
 * the listener is dead with the handle, so accept reports -ESHUTDOWN (and
 * must not touch the freed adapter). */
JT_TEST(thread_close, accept_after_handle_close, 30)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    jktcp_listener l = {0};
    int rc = jktcp_handle_listen(h, 7001, 4, &l);
    JT_ASSERT(rc == 0, "listen: %s", err_name(rc));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(AF_INET, JKT_LOCAL_IP4, 7001, &ss);
    JT_ASSERT(connect(fd, (struct sockaddr *)&ss, sl) == 0, "kernel connect: %s", strerror(errno));
    sleep_ms(100); /* the engine sees the final ACK and queues the stream */
    t.h = (jktcp_handle){0};
    rc = jktcp_handle_close(h, 0);
    JT_ASSERT(rc == 0, "handle_close: %s", err_name(rc));
    jktcp_stream s = {0};
    rc = jktcp_listener_accept(l, 0, &s);
    if (rc == 0 && s.id)
        jktcp_stream_abort(s);
    JT_ASSERT(rc == -ESHUTDOWN, "accept after handle close: %s, expected %s", err_name(rc),
              err_name(-ESHUTDOWN));
    jktcp_listener_close(l);
    close(fd);
    tt_down(&t);
}

/* A connect to 198.18.0.77: inside the test's private /24, owned by nobody,
 * and the namespace does not forward, so the SYNs go unanswered. */
#define BLACKHOLE_IP4 "198.18.0.77"

JT_TEST(thread_close, handle_close_wakes_connect, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, BLACKHOLE_IP4, 0, 0);
    /* the timeout alone ends an unanswered connect */
    jktcp_stream s = {0};
    uint64_t t0 = now_ns();
    int rc = jktcp_handle_connect(h, 80, 300, &s);
    double dt = ms_since(t0, now_ns());
    JT_ASSERT(rc == -ETIMEDOUT && !s.id, "connect to a silent peer: %s", err_name(rc));
    JT_ASSERT(dt >= 290 && dt < 300 + WAKE_LIMIT_MS, "connect timeout 300 ms took %.1f ms", dt);

    struct blocked b[2] = {{.op = OP_CONNECT, .h = h, .port = 80},
                           {.op = OP_CONNECT, .h = h, .port = 443}};
    blocked_start(&b[0]);
    blocked_start(&b[1]);
    blocked_settle(b, 2);
    t.h = (jktcp_handle){0};
    t0 = now_ns();
    rc = jktcp_handle_close(h, 0);
    JT_ASSERT(rc == 0, "handle_close: %s", err_name(rc));
    blocked_check(&b[0], t0, -ESHUTDOWN);
    blocked_check(&b[1], t0, -ESHUTDOWN);
    tt_down(&t);
}
