/* SPDX-License-Identifier: MIT */
/*
 * Suite `nonblock`: jktcp_handle_connect with timeout 0 returns
 * -EINPROGRESS at once with a stream id; the stream's JKTCP_POLL_WRITE fd
 * becomes readable when the handshake completes or fails, and
 * jktcp_stream_error says which (like SO_ERROR), as a non-blocking connect
 * on a socket does. No kernel needed (tests/support/rig.h).
 */
#include "minitest.h"
#include "rig.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define E(x) jktcp_strerror((int)(x))

/* Start a non-blocking connect; asserts on everything connect(0) promises. */
static jktcp_stream start(struct rig *r, int port, int *wfd, int *rfd)
{
    jktcp_stream s = {0};
    double t = rig_now_ms();
    int rc = jktcp_handle_connect(r->h, port, 0, &s);
    double dt = rig_now_ms() - t;
    JT_ASSERT(rc == -EINPROGRESS, "connect(timeout 0): %d (%s)", rc, E(rc));
    JT_ASSERT(s.id != 0, "no stream id with -EINPROGRESS");
    JT_ASSERT(dt < 50, "connect(timeout 0) took %.1f ms", dt);
    *wfd = jktcp_stream_poll_fd(s, JKTCP_POLL_WRITE);
    *rfd = jktcp_stream_poll_fd(s, JKTCP_POLL_READ);
    JT_ASSERT(*wfd >= 0 && *rfd >= 0 && *wfd != *rfd, "poll fds %d %d", *wfd, *rfd);
    return s;
}

JT_TEST(nonblock, connect_completes_writable, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    for (int i = 0; i < 20; i++) {
        int wfd, rfd;
        jktcp_stream s = start(&r, RIG_PORT, &wfd, &rfd);
        int e = jktcp_stream_error(s);
        JT_ASSERT(e == -EINPROGRESS || e == 0, "stream_error right after: %s", E(e));
        if (e == -EINPROGRESS) {
            /* nothing to write into yet: timeout 0 does not wait */
            JT_ASSERT(jktcp_stream_write(s, "x", 1, 0) == -EAGAIN || jktcp_stream_error(s) == 0,
                      "write while connecting");
        }
        JT_ASSERT(rig_fd_readable(wfd, 5000), "writable fd never signalled the connection");
        JT_ASSERT(jktcp_stream_error(s) == 0, "stream_error once writable: %s",
                  E(jktcp_stream_error(s)));
        JT_ASSERT(!rig_fd_readable(rfd, 0), "readable with nothing received");
        JT_ASSERT(jktcp_stream_write_all(s, "hello", 5, 5000) == 5, "write");
        char b[5];
        JT_ASSERT(rig_read_exact(s, b, 5, 5000) == 5 && !memcmp(b, "hello", 5), "echo");
        jktcp_info info;
        JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
        JT_ASSERT(info.state == JKTCP_ESTABLISHED, "state %s", jktcp_state_name(info.state));
        JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    }
    rig_down(&r);
}

/* Bytes written with a timeout on a stream still connecting wait for the
 * handshake and then go out. */
JT_TEST(nonblock, write_waits_for_handshake, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    int wfd, rfd;
    jktcp_stream s = start(&r, RIG_PORT, &wfd, &rfd);
    JT_ASSERT(jktcp_stream_write_all(s, "early", 5, 5000) == 5, "write while connecting");
    char b[5];
    JT_ASSERT(rig_read_exact(s, b, 5, 5000) == 5 && !memcmp(b, "early", 5), "echo");
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    rig_down(&r);
}

/* Refused: the writable fd (and the readable one) signal; stream_error,
 * read and write all say -ECONNREFUSED; close still ends the id. */
JT_TEST(nonblock, connect_refused_reported, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    int wfd, rfd;
    jktcp_stream s = start(&r, 9, &wfd, &rfd);
    JT_ASSERT(rig_fd_readable(wfd, 5000), "writable fd never signalled the refusal");
    JT_ASSERT(rig_fd_readable(rfd, 0), "readable fd does not show the error");
    JT_ASSERT(jktcp_stream_error(s) == -ECONNREFUSED, "stream_error: %s",
              E(jktcp_stream_error(s)));
    uint8_t b[4];
    JT_ASSERT(jktcp_stream_read(s, b, sizeof b, 0) == -ECONNREFUSED, "read");
    JT_ASSERT(jktcp_stream_write(s, b, sizeof b, 0) == -ECONNREFUSED, "write");
    JT_ASSERT(jktcp_stream_error(s) == -ECONNREFUSED, "the error is not cleared by reading it");
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    JT_ASSERT(jktcp_stream_close(s) == -EBADF, "close again");
    rig_down(&r);
}

/* Nobody answers: the SYN retries decide (here 2 retries from 40 ms), and
 * the result arrives the same way: -ETIMEDOUT. */
JT_TEST(nonblock, connect_timeout_reported, 30)
{
    struct rig r;
    struct rig_opts o = {.mode = RIG_BLACKHOLE, .rto_init_ms = 40, .max_retries = 2};
    rig_up(&r, &o);
    int wfd, rfd;
    double t = rig_now_ms();
    jktcp_stream s = start(&r, RIG_PORT, &wfd, &rfd);
    JT_ASSERT(!rig_fd_readable(wfd, 100), "writable while the SYN is unanswered");
    JT_ASSERT(jktcp_stream_error(s) == -EINPROGRESS, "still in progress: %s",
              E(jktcp_stream_error(s)));
    JT_ASSERT(rig_fd_readable(wfd, 10000), "writable fd never signalled the timeout");
    double dt = rig_now_ms() - t;
    JT_ASSERT(jktcp_stream_error(s) == -ETIMEDOUT, "stream_error: %s", E(jktcp_stream_error(s)));
    JT_LOG("non-blocking connect to a black hole failed after %.0f ms", dt);
    JT_ASSERT(dt >= 40 + 80 + 160 - 20, "gave up after %.0f ms, before the retries", dt);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    rig_down(&r);
}

/* Many connects in flight at once, each completing on its own fd. */
JT_TEST(nonblock, many_in_flight, 60)
{
    struct rig r;
    rig_up(&r, NULL);
    enum { N = 64 };
    jktcp_stream s[N];
    struct pollfd p[N];
    for (int i = 0; i < N; i++) {
        int rfd;
        s[i] = start(&r, RIG_PORT, &p[i].fd, &rfd);
        p[i].events = POLLIN;
    }
    int done = 0;
    double t = rig_now_ms();
    while (done < N && rig_now_ms() - t < 10000) {
        int n = poll(p, N, 1000);
        for (int i = 0; n > 0 && i < N; i++) {
            if (p[i].fd >= 0 && (p[i].revents & POLLIN)) {
                JT_ASSERT(jktcp_stream_error(s[i]) == 0, "stream %d: %s", i,
                          E(jktcp_stream_error(s[i])));
                p[i].fd = -1; /* stop watching it */
                done++;
            }
        }
    }
    JT_ASSERT(done == N, "%d of %d connects completed", done, N);
    for (int i = 0; i < N; i++)
        JT_ASSERT(jktcp_stream_close(s[i]) == 0, "close %d", i);
    rig_down(&r);
}
