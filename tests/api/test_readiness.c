/* SPDX-License-Identifier: MIT */
/*
 * Suite `readiness`: the fds behind jktcp_stream_poll_fd (JKTCP_POLL_READ,
 * JKTCP_POLL_WRITE) and jktcp_listener_poll_fd are level-triggered: they
 * poll readable exactly while the condition holds, so an event loop (epoll,
 * libuv, asyncio) never spins and never misses an event.
 *
 * The first tests use tests/support/rig.h (no kernel); the last one runs 64
 * streams on one epoll set against the kernel's echo server in a private
 * namespace (skipped without root or /dev/net/tun).
 */
#include "kserver.h"
#include "minitest.h"
#include "netns.h"
#include "rig.h"
#include "tuntest.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define E(x) jktcp_strerror((int)(x))

JT_TEST(readiness, read_fd_follows_data_eof_close, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stream s = rig_connect(&r);
    int fd = jktcp_stream_poll_fd(s, JKTCP_POLL_READ);
    JT_ASSERT(fd >= 0, "poll_fd: %s", E(fd));
    JT_ASSERT(jktcp_stream_poll_fd(s, JKTCP_POLL_READ) == fd, "same fd on every call");
    JT_ASSERT(!rig_fd_readable(fd, 20), "readable before any data");
    JT_ASSERT(jktcp_stream_write_all(s, "0123456789", 10, 5000) == 10, "write");
    JT_ASSERT(rig_fd_readable(fd, 5000), "not readable once the echo arrived");
    char b[16];
    JT_ASSERT(rig_read_exact(s, b, 4, 5000) == 4, "read 4");
    JT_ASSERT(rig_fd_readable(fd, 0), "not readable with 6 bytes left");
    JT_ASSERT(rig_read_exact(s, b, 6, 5000) == 6, "read 6");
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable after draining");
    usleep(30000);
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable again with no new data");
    /* end of stream: B closes once we shut down; EOF stays readable */
    JT_ASSERT(jktcp_stream_shutdown(s) == 0, "shutdown");
    JT_ASSERT(rig_fd_readable(fd, 5000), "not readable at end of stream");
    JT_ASSERT(jktcp_stream_read(s, b, sizeof b, 0) == 0, "EOF");
    JT_ASSERT(rig_fd_readable(fd, 0), "EOF is permanent: readable after reading it");
    rig_down(&r);
}

struct poller {
    int fd;
    double t_wake;
    bool ready;
    pthread_t th;
};

/* poll() holds the file while it waits: the wake-up it reports is the
 * stream's raise, even if the record (and the fd number) goes right after */
static void *poller_main(void *arg)
{
    struct poller *p = arg;
    p->ready = rig_fd_readable(p->fd, 5000);
    p->t_wake = rig_now_ms();
    return NULL;
}

/* Threads parked in poll() on either fd of a stream that is idle and
 * full wake when another thread closes the stream (a call would now
 * return -EBADF at once). */
JT_TEST(readiness, close_signals_both_fds, 30)
{
    struct rig r;
    struct rig_opts o = {.mode = RIG_NOREAD, .sndbuf = 64 * 1024, .rcvbuf = 64 * 1024};
    rig_up(&r, &o);
    jktcp_stream s = rig_connect(&r);
    /* dups: the library closes its fds soon after the close (rule 7), and
     * a poller that starts late would then see POLLNVAL; a dup keeps the
     * same eventfd open, so it shows whether the close raised it */
    struct poller p[2] = {{.fd = dup(jktcp_stream_poll_fd(s, JKTCP_POLL_READ))},
                          {.fd = dup(jktcp_stream_poll_fd(s, JKTCP_POLL_WRITE))}};
    rig_fill(s);
    JT_ASSERT(!rig_fd_readable(p[0].fd, 0) && !rig_fd_readable(p[1].fd, 0),
              "idle, full: none ready");
    for (int i = 0; i < 2; i++)
        JT_ASSERT(pthread_create(&p[i].th, NULL, poller_main, &p[i]) == 0, "thread");
    usleep(100000);
    double t = rig_now_ms();
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    for (int i = 0; i < 2; i++) {
        pthread_join(p[i].th, NULL);
        JT_ASSERT(p[i].ready, "%s fd not readable after the close", i ? "write" : "read");
        JT_ASSERT(p[i].t_wake - t < 100, "poll woke %.1f ms after the close", p[i].t_wake - t);
        close(p[i].fd);
    }
    rig_down(&r);
}

/* The write fd: readable once connected, not readable when the send
 * buffer is full, readable again when the peer reads and space frees. */
JT_TEST(readiness, write_fd_follows_send_buffer, 30)
{
    struct rig r;
    struct rig_opts o = {.mode = RIG_NOREAD, .sndbuf = 64 * 1024, .rcvbuf = 64 * 1024};
    rig_up(&r, &o);
    jktcp_stream s = rig_connect(&r);
    int fd = jktcp_stream_poll_fd(s, JKTCP_POLL_WRITE);
    JT_ASSERT(fd >= 0, "poll_fd: %s", E(fd));
    JT_ASSERT(rig_fd_readable(fd, 1000), "not writable when connected and empty");
    rig_fill(s);
    JT_ASSERT(!rig_fd_readable(fd, 50), "writable with the send buffer full");
    JT_ASSERT(jktcp_stream_write(s, "x", 1, 0) == -EAGAIN, "a write would block");
    rig_set_mode(&r, RIG_ECHO); /* the peer starts reading: ACKs free space */
    JT_ASSERT(rig_fd_readable(fd, 5000), "not writable after the peer drained");
    JT_ASSERT(jktcp_stream_write(s, "x", 1, 0) == 1, "a write goes in");
    JT_ASSERT(jktcp_stream_shutdown(s) == 0, "shutdown");
    JT_ASSERT(rig_fd_readable(fd, 0), "shut down for writing: writable (a write fails at once)");
    JT_ASSERT(jktcp_stream_write(s, "x", 1, 0) == -EPIPE, "write after shutdown");
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    rig_down(&r);
}

JT_TEST(readiness, listener_fd_follows_queue, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_listener l = {0};
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 16, &l) == 0, "listen");
    int fd = jktcp_listener_poll_fd(l);
    JT_ASSERT(fd >= 0, "listener poll_fd: %s", E(fd));
    JT_ASSERT(jktcp_listener_poll_fd(l) == fd, "same fd on every call");
    JT_ASSERT(!rig_fd_readable(fd, 20), "readable with nothing queued");
    rig_b_connect(&r, 8080, 2); /* B connects to our listener */
    JT_ASSERT(rig_fd_readable(fd, 5000), "not readable with connections queued");
    jktcp_stream a = {0}, b = {0};
    JT_ASSERT(jktcp_listener_accept(l, 5000, &a) == 0, "accept 1");
    for (int i = 0; i < 100 && !rig_fd_readable(fd, 0); i++)
        usleep(10000);
    JT_ASSERT(jktcp_listener_accept(l, 5000, &b) == 0, "accept 2");
    JT_ASSERT(!rig_fd_readable(fd, 0), "readable with the queue empty");
    JT_ASSERT(jktcp_listener_close(l) == 0, "close");
    JT_ASSERT(jktcp_stream_abort(a) == 0 && jktcp_stream_abort(b) == 0, "aborts");
    rig_down(&r); /* frees B and its conns */
}

/* ---------------------------------------------------------------------- */
/* 64 streams on one epoll set against the kernel                          */
/* ---------------------------------------------------------------------- */

#define EP_STREAMS 64
#define EP_BYTES (1024u * 1024u)
#define EP_CHUNK (16u * 1024u)

struct ep_stream {
    jktcp_stream s;
    int rfd, wfd;
    uint64_t sent, got;
    bool wr_armed, done;
    uint32_t seed;
};

static void ep_mod(int ep, int fd, bool on, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    int rc = epoll_ctl(ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
    JT_ASSERT(rc == 0, "epoll_ctl: %s", strerror(errno));
}

JT_TEST(readiness, epoll_64_streams_echo_1mib, 120)
{
    struct jkt_tun tun = {.fd = -1};
    jkt_tun_up_or_skip("readiness", "jkt0", 1500, JKT_FAM_IPV4, &tun);
    struct jkt_server srv = {.kind = JKT_SRV_ECHO, .family = AF_INET};
    JT_ASSERT(jkt_server_start(&srv) == 0, "echo server");
    jktcp_transport *t = NULL;
    jktcp_adapter *a = NULL;
    jktcp_handle h = {0};
    JT_ASSERT(jktcp_transport_fd(tun.fd, JKTCP_FRAMING_PACKET, &t) == 0, "transport");
    JT_ASSERT(jktcp_adapter_new(t, JKT_LOCAL_IP4, JKT_KERNEL_IP4, &a) == 0, "adapter");
    JT_ASSERT(jktcp_handle_start(a, &h) == 0, "handle");

    static struct ep_stream st[EP_STREAMS];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < EP_STREAMS; i++) {
        st[i] = (struct ep_stream){.seed = 0x1000u + (uint32_t)i};
        int rc = jktcp_handle_connect(h, srv.port, 0, &st[i].s); /* all at once */
        JT_ASSERT(rc == -EINPROGRESS, "connect %d: %s", i, E(rc));
        st[i].rfd = jktcp_stream_poll_fd(st[i].s, JKTCP_POLL_READ);
        st[i].wfd = jktcp_stream_poll_fd(st[i].s, JKTCP_POLL_WRITE);
        ep_mod(ep, st[i].rfd, true, (uint64_t)i << 1);
        ep_mod(ep, st[i].wfd, true, (uint64_t)i << 1 | 1);
        st[i].wr_armed = true;
    }
    static uint8_t buf[EP_CHUNK];
    unsigned long waits = 0, events = 0, idle_events = 0, reads = 0, writes = 0;
    int done = 0;
    double t0 = rig_now_ms();
    while (done < EP_STREAMS) {
        JT_ASSERT(rig_now_ms() - t0 < 60000, "64 x 1 MiB echo did not finish in 60 s (%d done)",
                  done);
        struct epoll_event evs[128];
        int n = epoll_wait(ep, evs, 128, 5000);
        waits++;
        JT_ASSERT(n > 0 || errno == EINTR, "epoll_wait: nothing for 5 s (%d done)", done);
        for (int k = 0; k < n; k++) {
            struct ep_stream *x = &st[evs[k].data.u64 >> 1];
            bool wr = evs[k].data.u64 & 1;
            events++;
            if (wr) {
                int e = jktcp_stream_error(x->s);
                JT_ASSERT(e == 0, "stream error: %s", E(e));
                size_t len = EP_BYTES - x->sent > EP_CHUNK ? EP_CHUNK : EP_BYTES - x->sent;
                jkt_pattern_fill(buf, len, x->sent, x->seed);
                ssize_t w = jktcp_stream_write(x->s, buf, len, 0);
                if (w == -EAGAIN)
                    idle_events++;
                else
                    JT_ASSERT(w > 0, "write: %s", E(w));
                if (w > 0) {
                    x->sent += (uint64_t)w;
                    writes++;
                }
                if (x->sent == EP_BYTES) { /* nothing left to write: stop watching */
                    ep_mod(ep, x->wfd, false, 0);
                    x->wr_armed = false;
                }
            } else {
                ssize_t r = jktcp_stream_read(x->s, buf, sizeof buf, 0);
                if (r == -EAGAIN) {
                    idle_events++;
                    continue;
                }
                JT_ASSERT(r > 0, "read: %zd (%s) at %llu", r, E(r), (unsigned long long)x->got);
                size_t bad = jkt_pattern_check(buf, (size_t)r, x->got, x->seed);
                JT_ASSERT(bad == (size_t)r, "echo differs at %llu",
                          (unsigned long long)(x->got + bad));
                x->got += (uint64_t)r;
                reads++;
                if (x->got == EP_BYTES && !x->done) {
                    x->done = true;
                    done++;
                    ep_mod(ep, x->rfd, false, 0);
                }
            }
        }
    }
    double secs = (rig_now_ms() - t0) / 1e3;
    JT_LOG("epoll: 64 streams x 1 MiB echoed in %.2f s: %lu epoll_wait, %lu events "
           "(%lu reads, %lu writes, %lu found nothing to do)",
           secs, waits, events, reads, writes, idle_events);
    /* no busy loop: every wake-up moved data, and an event that found
     * nothing to do is the rare race between a raise and our call */
    JT_ASSERT(idle_events * 20 <= events, "%lu of %lu events found nothing to do", idle_events,
              events);
    JT_ASSERT(waits <= reads + writes, "%lu epoll_wait calls for %lu reads and writes", waits,
              reads + writes);
    for (int i = 0; i < EP_STREAMS; i++)
        JT_ASSERT(jktcp_stream_close(st[i].s) == 0, "close %d", i);
    close(ep);
    JT_ASSERT(jktcp_handle_close(h, 1000) == 0, "handle close");
    jkt_server_stop(&srv);
    jkt_tun_close(&tun);
}
