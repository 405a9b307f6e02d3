/* SPDX-License-Identifier: MIT */
/*
 * Flow control and readiness: a writer blocks with bounded memory, a
 * reader that stops closes the window, jktcp_stream_poll_fd follows
 * readiness, a listener serves kernel clients.
 *
 * Suite `thread`: the threaded handle (jktcp_handle, jktcp_stream,
 * jktcp_listener) against the Linux kernel's TCP in a private network
 * namespace over TUN (thread_test.h). Written against tests/support/minitest.h:
 * the same source runs under Criterion and under ThreadSanitizer
 * (`make test-tsan`). Skipped (not failed) without network namespaces or
 * /dev/net/tun.
 */
#include "minitest.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "rig.h"
#include "thread_test.h"

/* ------------------------------------------------------------------------ */
/* Back-pressure                                                            */
/* ------------------------------------------------------------------------ */

#define BP_SNDBUF (1 * MiB)
#define BP_CHUNK (4 * MiB)

JT_TEST(thread, backpressure_writer_blocks_memory_bounded, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, BP_SNDBUF, 256 * KiB);
    struct jkt_server srv = {.rcvbuf = 64 * 1024};
    server_up(&t, &srv, JKT_SRV_NOREAD);
    uint8_t *chunk = malloc(BP_CHUNK);
    JT_ASSERT(chunk, "malloc");
    jkt_pattern_fill(chunk, BP_CHUNK, 0, 5); /* touched before the baseline */
    jktcp_stream s = connect_ok(h, srv.port);
    long rss0 = rss_bytes();
    const int timeout = 25;
    uint64_t accepted = 0, tried = 0;
    int eagain = 0, shorts = 0;
    double slowest = 0;
    uint64_t tstart = now_ns();
    while (tried < 256ull * MiB) {
        uint64_t t0 = now_ns();
        ssize_t r = jktcp_stream_write(s, chunk, BP_CHUNK, timeout);
        double dt = ms_since(t0, now_ns());
        tried += BP_CHUNK;
        if (r > 0) {
            accepted += (uint64_t)r;
            if (r < (ssize_t)BP_CHUNK)
                shorts++;
        } else {
            JT_ASSERT(r == -EAGAIN, "write to a peer that does not read: %zd (%s)", r,
                      err_name(r));
            eagain++;
            JT_ASSERT(dt >= timeout - 1, "-EAGAIN after %.1f ms, before the %d ms timeout", dt,
                      timeout);
        }
        if (dt > slowest)
            slowest = dt;
    }
    double total_ms = ms_since(tstart, now_ns());
    /* write_all: the timeout covers the whole call */
    uint64_t t0 = now_ns();
    ssize_t r = jktcp_stream_write_all(s, chunk, BP_CHUNK, 100);
    double dt_all = ms_since(t0, now_ns());
    long rss1 = rss_bytes();
    JT_ASSERT(r == -EAGAIN, "write_all into a full buffer: %zd (%s)", r, err_name(r));
    JT_ASSERT(dt_all >= 99 && dt_all < 100 + WAKE_LIMIT_MS * 2, "write_all(100 ms) took %.1f ms",
              dt_all);
    JT_ASSERT(eagain > 0, "the writer never blocked");
    JT_ASSERT(slowest < timeout + 200 * SLOW_FACTOR, "a %d ms write took %.1f ms", timeout,
              slowest);
    JT_ASSERT(accepted < BP_SNDBUF + 8 * MiB,
              "%llu bytes accepted by a peer that does not read (send buffer %u)",
              (unsigned long long)accepted, BP_SNDBUF);
    long growth = rss1 - rss0;
    JT_ASSERT(growth < (long)(32 * MiB + BP_SNDBUF + 256 * KiB),
              "RSS grew by %ld KiB while writing 256 MiB into a stalled stream", growth / 1024);
    jktcp_info info;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    JT_LOG("back-pressure: tried 256 MiB in %.0f ms, accepted %llu KiB (%d short, %d EAGAIN), "
           "queued %llu KiB, snd_wnd %u, RSS +%ld KiB",
           total_ms, (unsigned long long)(accepted / 1024), shorts, eagain,
           (unsigned long long)(info.bytes_queued / 1024), info.snd_wnd, growth / 1024);
    JT_ASSERT(info.bytes_queued <= BP_SNDBUF, "bytes_queued %llu > SNDBUF",
              (unsigned long long)info.bytes_queued);
    jktcp_stream_abort(s);
    free(chunk);
    tt_down(&t);
    jkt_server_stop(&srv);
}

/* Kernel source that writes with MSG_DONTWAIT and notices when it blocks. */
struct wsrc {
    int lfd;
    uint32_t seed;
    atomic_bool blocked, resume, eagain_seen;
    atomic_ulong sent;
    uint64_t tail; /* bytes sent after resume */
    int err;
    pthread_t th;
};

static void *wsrc_main(void *arg)
{
    struct wsrc *w = arg;
    int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        w->err = errno;
        return NULL;
    }
    int sb = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    uint8_t *buf = malloc(64 * KiB);
    uint64_t off = 0, stall_ms = 0;
    while (stall_ms < 1000) {
        jkt_pattern_fill(buf, 64 * KiB, off, w->seed);
        ssize_t n = send(fd, buf, 64 * KiB, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (uint64_t)n;
            atomic_store(&w->sent, off);
            stall_ms = 0;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            w->err = errno;
            goto out;
        }
        atomic_store(&w->eagain_seen, true);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 100) == 0)
            stall_ms += 100;
    }
    atomic_store(&w->blocked, true);
    while (!atomic_load(&w->resume))
        sleep_ms(2);
    /* blocking now: the reader drains, the window must open again */
    for (uint64_t end = off + 2 * MiB; off < end;) {
        jkt_pattern_fill(buf, 64 * KiB, off, w->seed);
        ssize_t n = send(fd, buf, 64 * KiB, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = n < 0 ? errno : EIO;
            goto out;
        }
        off += (uint64_t)n;
        w->tail += (uint64_t)n;
    }
    atomic_store(&w->sent, off);
out:
    free(buf);
    close(fd);
    return NULL;
}

#define WIN_RCVBUF (256 * 1024)

JT_TEST(thread, backpressure_reader_closes_window, 60)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, WIN_RCVBUF);
    static struct wsrc w;
    memset(&w, 0, sizeof w);
    w.seed = 0x51DE;
    uint16_t port = 0;
    w.lfd = kernel_listen(AF_INET, &port, 4);
    JT_ASSERT(w.lfd >= 0, "listen: %s", strerror(-w.lfd));
    start_thread(&w.th, wsrc_main, &w);
    jktcp_stream s = connect_ok(h, port);
    for (int i = 0; i < 3000 * SLOW_FACTOR && !atomic_load(&w.blocked) && !w.err; i++)
        sleep_ms(5);
    JT_ASSERT(atomic_load(&w.blocked), "the kernel source never blocked (sent %lu, err %d)",
              (unsigned long)atomic_load(&w.sent), w.err);
    JT_ASSERT(atomic_load(&w.eagain_seen), "send(MSG_DONTWAIT) never returned EAGAIN");
    unsigned long sent = atomic_load(&w.sent);
    jktcp_info info;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    JT_LOG("reader stopped: kernel sent %lu KiB before blocking; readable %llu KiB, rcv_wnd %u",
           sent / 1024, (unsigned long long)(info.bytes_readable / 1024), info.rcv_wnd);
    JT_ASSERT(info.rcv_wnd == 0, "rcv_wnd %u with a full receive buffer", info.rcv_wnd);
    JT_ASSERT(info.bytes_readable <= WIN_RCVBUF && info.bytes_readable >= WIN_RCVBUF / 2,
              "bytes_readable %llu (RCVBUF %u)", (unsigned long long)info.bytes_readable,
              WIN_RCVBUF);
    JT_ASSERT(sent < WIN_RCVBUF + 8 * MiB, "kernel pushed %lu bytes into a stalled reader", sent);
    sleep_ms(200);
    JT_ASSERT(atomic_load(&w.sent) == sent, "the kernel kept sending into a zero window");

    atomic_store(&w.resume, true);
    size_t cap = 128 * KiB;
    uint8_t *buf = malloc(cap);
    uint64_t got = 0, bad = UINT64_MAX;
    ssize_t r;
    while ((r = jktcp_stream_read(s, buf, cap, IO_TIMEOUT)) > 0) {
        size_t at = jkt_pattern_check(buf, (size_t)r, got, w.seed);
        if (at != (size_t)r && bad == UINT64_MAX)
            bad = got + at;
        got += (uint64_t)r;
    }
    free(buf);
    join_or_fail(w.th, 10000, "kernel source");
    JT_ASSERT(r == 0, "read ended with %zd (%s) after %llu bytes", r, err_name(r),
              (unsigned long long)got);
    JT_ASSERT(w.err == 0, "kernel source: %s", strerror(w.err));
    JT_ASSERT(w.tail == 2 * MiB, "kernel sent only %llu bytes after the window reopened",
              (unsigned long long)w.tail);
    JT_ASSERT(got == atomic_load(&w.sent), "read %llu of %lu bytes", (unsigned long long)got,
              (unsigned long)atomic_load(&w.sent));
    JT_ASSERT(bad == UINT64_MAX, "data differs at byte %llu", (unsigned long long)bad);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    close(w.lfd);
    tt_down(&t);
}

/* ------------------------------------------------------------------------ */
/* jktcp_stream_poll_fd                                                     */
/* ------------------------------------------------------------------------ */

struct poller {
    int fd;
    bool woke;
    uint64_t t_wake;
    pthread_t th;
};

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    p->woke = rig_fd_readable(p->fd, 10000);
    p->t_wake = now_ns();
    return NULL;
}

JT_TEST(thread, poll_fd_readiness, 30)
{
    struct tt t;
    tt_up(&t, AF_INET, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    struct jkt_server srv = {0};
    server_up(&t, &srv, JKT_SRV_ECHO);
    jktcp_stream s = connect_ok(h, srv.port);
    int fd = jktcp_stream_poll_fd(s, JKTCP_POLL_READ);
    JT_ASSERT(fd >= 0, "poll_fd: %s", err_name(fd));
    JT_ASSERT(jktcp_stream_poll_fd(s, JKTCP_POLL_READ) == fd, "poll_fd changed between calls");
    sleep_ms(20);
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable before any data");

    const char msg[] = "hello, poll fd!";
    size_t n = sizeof msg - 1;
    JT_ASSERT(jktcp_stream_write(s, msg, n, IO_TIMEOUT) == (ssize_t)n, "write");
    JT_ASSERT(rig_fd_readable(fd, 5000), "not readable after the echo arrived");
    char back[64];
    JT_ASSERT(jktcp_stream_read(s, back, 5, IO_TIMEOUT) == 5, "read 5");
    jktcp_info info;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    if (info.bytes_readable > 0)
        JT_ASSERT(rig_fd_readable(fd, 0), "not readable with %llu bytes left",
                  (unsigned long long)info.bytes_readable);
    JT_ASSERT(read_exact(s, back + 5, n - 5, IO_TIMEOUT) == (ssize_t)(n - 5), "read rest");
    JT_ASSERT(memcmp(back, msg, n) == 0, "echo mismatch");
    JT_ASSERT(!rig_fd_readable(fd, 0), "still readable after draining");
    sleep_ms(50);
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable again without new data");

    /* a thread parked in poll() wakes when data arrives */
    struct poller p = {.fd = fd};
    start_thread(&p.th, poller_main, &p);
    sleep_ms(100);
    uint64_t t0 = now_ns();
    JT_ASSERT(jktcp_stream_write(s, "x", 1, IO_TIMEOUT) == 1, "write x");
    join_or_fail(p.th, 15000, "poller");
    JT_ASSERT(p.woke, "poll() in another thread did not wake for data");
    JT_LOG("poll fd: woke %.2f ms after the write (one round trip)", ms_since(t0, p.t_wake));
    JT_ASSERT(jktcp_stream_read(s, back, sizeof back, IO_TIMEOUT) == 1, "read x");
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable after draining x");

    /* end of stream: readable, and stays readable (level-triggered) */
    JT_ASSERT(jktcp_stream_shutdown(s) == 0, "shutdown");
    JT_ASSERT(rig_fd_readable(fd, 5000), "not readable at end of stream");
    JT_ASSERT(jktcp_stream_read(s, back, sizeof back, 0) == 0, "EOF");
    JT_ASSERT(rig_fd_readable(fd, 0), "not readable after EOF was read (EOF is permanent)");
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    tt_down(&t);
    jkt_server_stop(&srv);
}

/* ------------------------------------------------------------------------ */
/* Listener: kernel clients connect to jktcp                                */
/* ------------------------------------------------------------------------ */

#define LS_PORT 8080
#define LS_CLIENTS 4
#define LS_BYTES (256 * KiB)

struct ls_client {
    int family, id;
    uint64_t got, bad_at;
    int err;
    pthread_t th;
};

static void *ls_client_main(void *arg)
{
    struct ls_client *c = arg;
    c->bad_at = UINT64_MAX;
    int fd = socket(c->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TCHECK(fd >= 0, "socket");
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(c->family, jkt_local_ip(c->family), LS_PORT, &ss);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        c->err = errno;
        close(fd);
        return NULL;
    }
    uint8_t *buf = malloc(LS_BYTES);
    jkt_pattern_fill(buf, LS_BYTES, 0, 0x1000u + (uint32_t)c->id);
    size_t off = 0;
    while (off < LS_BYTES) {
        ssize_t n = send(fd, buf + off, LS_BYTES - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->err = errno;
            goto out;
        }
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = read(fd, buf, LS_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            c->err = errno;
            break;
        }
        if (n == 0)
            break;
        size_t at = jkt_pattern_check(buf, (size_t)n, c->got, 0x1000u + (uint32_t)c->id);
        if (at != (size_t)n && c->bad_at == UINT64_MAX)
            c->bad_at = c->got + at;
        c->got += (uint64_t)n;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

struct ls_echo {
    jktcp_stream s;
    uint64_t echoed;
    pthread_t th;
};

static void *ls_echo_main(void *arg)
{
    struct ls_echo *e = arg;
    uint8_t buf[16 * 1024];
    for (;;) {
        ssize_t r = jktcp_stream_read(e->s, buf, sizeof buf, IO_TIMEOUT);
        if (r == 0)
            break;
        TCHECK(r > 0, "echo read: %zd (%s)", r, err_name(r));
        ssize_t w = jktcp_stream_write_all(e->s, buf, (size_t)r, IO_TIMEOUT);
        TCHECK(w == r, "echo write: %zd (%s)", w, err_name(w));
        e->echoed += (uint64_t)r;
    }
    int rc = jktcp_stream_close(e->s);
    TCHECK(rc == 0, "close: %s", err_name(rc));
    return NULL;
}

static void listener_run(int family)
{
    struct tt t;
    tt_up(&t, family, 1500);
    jktcp_handle h = tt_handle(&t, NULL, 0, 0);
    jktcp_listener l = {0}, l2 = {0};
    int rc = jktcp_handle_listen(h, LS_PORT, 16, &l);
    JT_ASSERT(rc == 0, "listen: %s", err_name(rc));
    rc = jktcp_handle_listen(h, LS_PORT, 16, &l2);
    JT_ASSERT(rc == -EADDRINUSE, "second listen on the port: %s", err_name(rc));
    jktcp_stream none = {0};
    rc = jktcp_listener_accept(l, 0, &none);
    JT_ASSERT(rc == -EAGAIN, "accept with nothing pending: %s", err_name(rc));

    struct ls_client c[LS_CLIENTS];
    for (int i = 0; i < LS_CLIENTS; i++) {
        c[i] = (struct ls_client){.family = family, .id = i};
        start_thread(&c[i].th, ls_client_main, &c[i]);
    }
    struct ls_echo e[LS_CLIENTS];
    for (int i = 0; i < LS_CLIENTS; i++) {
        e[i] = (struct ls_echo){0};
        rc = jktcp_listener_accept(l, 10000 * SLOW_FACTOR, &e[i].s);
        JT_ASSERT(rc == 0 && e[i].s.id, "accept %d: %s", i, err_name(rc));
        jktcp_info info;
        JT_ASSERT(jktcp_stream_info(e[i].s, &info, sizeof info) == 0, "info");
        JT_ASSERT(info.local_port == LS_PORT, "accepted stream's local port %u", info.local_port);
        start_thread(&e[i].th, ls_echo_main, &e[i]);
    }
    for (int i = 0; i < LS_CLIENTS; i++) {
        join_or_fail(c[i].th, 30000 * SLOW_FACTOR, "kernel client");
        join_or_fail(e[i].th, 30000 * SLOW_FACTOR, "jktcp echo");
    }
    assert_no_thread_failures();
    for (int i = 0; i < LS_CLIENTS; i++) {
        JT_ASSERT(c[i].err == 0, "client %d: %s", i, strerror(c[i].err));
        JT_ASSERT(c[i].got == LS_BYTES, "client %d: %llu of %u bytes echoed", i,
                  (unsigned long long)c[i].got, LS_BYTES);
        JT_ASSERT(c[i].bad_at == UINT64_MAX, "client %d: echo differs at %llu", i,
                  (unsigned long long)c[i].bad_at);
    }
    /* a port nobody listens on is refused */
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(family, jkt_local_ip(family), LS_PORT + 1, &ss);
    int cr = connect(fd, (struct sockaddr *)&ss, sl);
    int ce = errno;
    close(fd);
    JT_ASSERT(cr != 0 && ce == ECONNREFUSED, "kernel connect to a closed jktcp port: %s",
              cr == 0 ? "connected" : strerror(ce));
    jktcp_listener_close(l);
    tt_down(&t);
}

JT_TEST(thread, listener_accept_v4, 60)
{
    listener_run(AF_INET);
}

JT_TEST(thread, listener_accept_v6, 60)
{
    listener_run(AF_INET6);
}
