/* SPDX-License-Identifier: MIT */
/*
 * Suite `eintr`: a signal handler running in a thread blocked in
 * jktcp_stream_read / _write, jktcp_handle_connect or jktcp_listener_accept
 * makes the call return -EINTR at once (lifetime rule 8), so a binding can
 * run its own signal handlers (Python's Ctrl-C) and call again, as PEP 475
 * does for sockets. With an infinite timeout, a handler installed with
 * SA_RESTART resumes the wait instead, as recv(2) does.
 */
#include "minitest.h"
#include "rig.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define E(x) jktcp_strerror((int)(x))

static atomic_int handled;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static void install(bool restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0; /* Python installs its handlers without */
    sigemptyset(&sa.sa_mask);
    JT_ASSERT(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
}

/*
 * SIGUSR1 to a thread blocked in b until its call returns; returns
 * rig_now_ms() of the last signal. A signal that lands while the call is
 * between two waits (woken by unrelated news, say a window probe's ACK,
 * and about to sleep again) runs its handler without ending the call, as
 * a signal between two system calls would: the user's next Ctrl-C ends
 * it. So the signal is repeated every 50 ms, and *sent says how often.
 */
static double interrupt(struct rig_blocked *b, int *sent)
{
    double t = 0;
    for (*sent = 0; *sent < 20 && !atomic_load(&b->returned); (*sent)++) {
        t = rig_now_ms();
        JT_ASSERT(pthread_kill(b->th, SIGUSR1) == 0, "pthread_kill");
        for (int i = 0; i < 50 && !atomic_load(&b->returned); i++)
            usleep(1000);
    }
    return t;
}

struct setup {
    struct rig echo, noread, hole;
    jktcp_stream sr, sw;
    jktcp_listener l;
};

static void setup(struct setup *x)
{
    rig_up(&x->echo, NULL);
    struct rig_opts o = {.mode = RIG_NOREAD, .sndbuf = 64 * 1024, .rcvbuf = 64 * 1024};
    rig_up(&x->noread, &o);
    struct rig_opts h = {.mode = RIG_BLACKHOLE};
    rig_up(&x->hole, &h);
    x->sr = rig_connect(&x->echo);
    x->sw = rig_connect(&x->noread);
    rig_fill(x->sw);
    JT_ASSERT(jktcp_handle_listen(x->echo.h, 8080, 0, &x->l) == 0, "listen");
}

static void teardown(struct setup *x)
{
    jktcp_stream_close(x->sr);
    jktcp_stream_close(x->sw);
    jktcp_listener_close(x->l);
    rig_down(&x->echo);
    rig_down(&x->noread);
    rig_down(&x->hole);
}

static void blocked_set(struct setup *x, struct rig_blocked b[4], int timeout_ms)
{
    b[0] = (struct rig_blocked){.op = RIG_OP_READ, .s = x->sr, .timeout_ms = timeout_ms};
    b[1] = (struct rig_blocked){.op = RIG_OP_WRITE, .s = x->sw, .timeout_ms = timeout_ms};
    b[2] = (struct rig_blocked){.op = RIG_OP_ACCEPT, .l = x->l, .timeout_ms = timeout_ms};
    b[3] = (struct rig_blocked){
        .op = RIG_OP_CONNECT, .h = x->hole.h, .port = RIG_PORT, .timeout_ms = timeout_ms};
}

/* SIGUSR1 to each blocked thread: -EINTR within 100 ms; the stream, the
 * listener and the handle go on working afterwards. */
static void interrupt_all(int timeout_ms)
{
    install(false);
    static struct setup x;
    setup(&x);
    struct rig_blocked b[4];
    blocked_set(&x, b, timeout_ms);
    for (int i = 0; i < 4; i++)
        rig_blocked_start(&b[i]);
    rig_blocked_settle(b, 4);
    for (int i = 0; i < 4; i++) {
        int before = atomic_load(&handled), sent;
        double t = interrupt(&b[i], &sent);
        long r = rig_blocked_join(&b[i]);
        double dt = b[i].t_ret - t;
        JT_LOG("%s (timeout %d) interrupted: %ld (%s) after %.2f ms (%d signal%s)",
               rig_op_name(b[i].op), timeout_ms, r, E(r), dt, sent, sent == 1 ? "" : "s");
        JT_ASSERT(sent <= 3, "blocked %s needed %d signals", rig_op_name(b[i].op), sent);
        JT_ASSERT(atomic_load(&handled) > before, "the handler did not run");
        JT_ASSERT(r == -EINTR, "blocked %s returned %ld (%s), expected -EINTR",
                  rig_op_name(b[i].op), r, E(r));
        JT_ASSERT(dt < 100, "blocked %s returned %.1f ms after the signal", rig_op_name(b[i].op),
                  dt);
    }
    JT_ASSERT(b[3].out.id == 0, "an interrupted connect left a stream behind");
    /* nothing was lost: the calls work after the interruption */
    JT_ASSERT(jktcp_stream_write_all(x.sr, "after", 5, 5000) == 5, "write after -EINTR");
    char buf[5];
    JT_ASSERT(rig_read_exact(x.sr, buf, 5, 5000) == 5 && !memcmp(buf, "after", 5), "echo");
    jktcp_stream out;
    JT_ASSERT(jktcp_listener_accept(x.l, 0, &out) == -EAGAIN, "listener still listening");
    teardown(&x);
}

JT_TEST(eintr, infinite_timeout_returns_eintr, 60)
{
    interrupt_all(-1);
}

JT_TEST(eintr, finite_timeout_returns_eintr, 60)
{
    interrupt_all(20000);
}

/* SA_RESTART with an infinite timeout: the handler runs and the call goes
 * on waiting (the kernel restarts the wait), as recv(2) without
 * SO_RCVTIMEO. The data that arrives later completes it. */
JT_TEST(eintr, sa_restart_infinite_wait_resumes, 30)
{
    install(true);
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stream s = rig_connect(&r);
    struct rig_blocked b = {.op = RIG_OP_READ, .s = s, .timeout_ms = -1};
    rig_blocked_start(&b);
    rig_blocked_settle(&b, 1);
    int before = atomic_load(&handled);
    JT_ASSERT(pthread_kill(b.th, SIGUSR1) == 0, "pthread_kill");
    usleep(200000);
#ifndef JKT_PLAIN /* TSan runs a handler only when the thread leaves the syscall */
    JT_ASSERT(atomic_load(&handled) > before, "the handler did not run");
#else
    (void)before;
#endif
    JT_ASSERT(!atomic_load(&b.returned), "read returned %ld after an SA_RESTART handler",
              b.result);
    JT_ASSERT(jktcp_stream_write_all(s, "late", 4, 5000) == 4, "write");
    long n = rig_blocked_join(&b);
    JT_ASSERT(n == 4, "the resumed read got %ld (%s)", n, E(n));
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    rig_down(&r);
}

/* A write that already queued part of its bytes returns that count when
 * interrupted, like write(2): nothing queued is lost or repeated. */
JT_TEST(eintr, partial_write_returns_count, 30)
{
    install(false);
    struct rig r;
    struct rig_opts o = {.mode = RIG_NOREAD, .sndbuf = 64 * 1024, .rcvbuf = 64 * 1024};
    rig_up(&r, &o);
    jktcp_stream s = rig_connect(&r);
    /* 64 KiB send buffer + 64 KiB window: 100 KiB fit, 28 more will */
    static uint8_t first[100 * 1024];
    JT_ASSERT(jktcp_stream_write_all(s, first, sizeof first, 5000) == (long)sizeof first, "fill");
    usleep(100000);
    struct rig_blocked b = {.op = RIG_OP_WRITE, .s = s, .timeout_ms = -1};
    rig_blocked_start(&b); /* 64 KiB: part fits, the rest waits */
    rig_blocked_settle(&b, 1);
    int sent;
    interrupt(&b, &sent);
    long n = rig_blocked_join(&b);
    JT_ASSERT(sent <= 3, "the blocked write needed %d signals", sent);
    JT_ASSERT(n > 0 && n < 64 * 1024, "interrupted partial write returned %ld (%s)", n, E(n));
    jktcp_info info;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    JT_ASSERT(info.bytes_queued + info.bytes_sent == sizeof first + (uint64_t)n,
              "100 KiB + %ld bytes written, %llu queued + %llu sent", n,
              (unsigned long long)info.bytes_queued, (unsigned long long)info.bytes_sent);
    JT_ASSERT(jktcp_stream_abort(s) == 0, "abort");
    rig_down(&r);
}
