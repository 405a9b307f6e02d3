/* SPDX-License-Identifier: MIT */
/* The fd transport: whole IP frames over an fd (or a pair) or over caller
 * functions, with stream or packet framing. Both are one implementation:
 * an fd transport is caller ops whose functions are read/write on its fd.
 * See transport.h for the contract the adapter relies on. */
#include "abi.h"

/* sizeof(jktcp_io_ops) when the size argument came in (0.2) */
#define JK_IO_OPS_SIZE_0_2 (offsetof(jktcp_io_ops, poll_fd) + sizeof(int))
#include "transport.h"
#include "packet.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Stream buffers: large enough to read (and write) many frames per
 * syscall, plus one maximal frame so a partial frame always fits. */
#define STREAM_CHUNK (256u * 1024u)
#define STREAM_BUF (STREAM_CHUNK + JK_MAX_FRAME)

struct fd_transport {
    jktcp_transport base;
    unsigned flags;

    int rfd, wfd; /* -1 for caller ops */
    int epfd;   /* fd2 only: one fd that polls for rfd-readable or wfd-writable */
    bool wpoll; /* wfd currently registered for EPOLLOUT in epfd */
    bool wsock; /* wfd is a socket: send(MSG_NOSIGNAL) instead of write */
    bool rdgram; /* rfd is a datagram socket: an empty read is not EOF */

    jktcp_io_ops io; /* the caller's, or fd_io_* with ctx = this transport */
    void *ctx;

    int rx_err, tx_err; /* sticky failures (negative errno) */
    bool blocked;       /* the last write attempt would have blocked */

    uint8_t *in; /* frame buffer (packet) or read buffer (stream) */
    size_t in_cap, in_off, in_end;
    uint8_t *out; /* held output, stream framing only */
    size_t out_cap, out_off, out_end;
};

static bool framing_ok(int framing)
{
    return framing == JKTCP_FRAMING_STREAM || framing == JKTCP_FRAMING_PACKET;
}

static void t_destroy(struct fd_transport *t)
{
    free(t->in);
    free(t->out);
    free(t);
}

/* ---- raw I/O ------------------------------------------------------------ */

static ssize_t io_result(ssize_t n, size_t len)
{
    if (n == -EWOULDBLOCK)
        return -EAGAIN;
    if (n > (ssize_t)len)
        return -EIO; /* an ops callback claimed more than it was given */
    return n;
}

/* The fd transport's io functions (ctx is the transport). */
static ssize_t fd_io_read(void *ctx, void *buf, size_t len)
{
    const struct fd_transport *t = ctx;
    ssize_t n = read(t->rfd, buf, len);
    return n < 0 ? -errno : n;
}

static ssize_t fd_io_write(void *ctx, const void *buf, size_t len)
{
    const struct fd_transport *t = ctx;
    /* MSG_NOSIGNAL: a vanished peer must give -EPIPE, not kill the host. */
    ssize_t n = t->wsock ? send(t->wfd, buf, len, MSG_NOSIGNAL) : write(t->wfd, buf, len);
    return n < 0 ? -errno : n;
}

static void fd_io_close(void *ctx)
{
    const struct fd_transport *t = ctx;
    if (!(t->flags & JKTCP_TRANSPORT_CLOSE_FD))
        return;
    close(t->rfd);
    if (t->wfd != t->rfd)
        close(t->wfd);
}

/* One read: bytes, 0 at end of stream, -EAGAIN, or negative errno. */
static ssize_t raw_read(struct fd_transport *t, void *buf, size_t len)
{
    ssize_t n;
    do
        n = t->io.read(t->ctx, buf, len);
    while (n == -EINTR);
    return io_result(n, len);
}

/* One write: bytes taken (> 0), -EAGAIN, or negative errno. Notes
 * whether the transport now waits for writability. */
static ssize_t raw_write(struct fd_transport *t, const void *buf, size_t len)
{
    ssize_t n;
    do
        n = t->io.write(t->ctx, buf, len);
    while (n == -EINTR);
    /* no progress: wait for writability like a full fd */
    n = n == 0 ? -EAGAIN : io_result(n, len);
    t->blocked = n == -EAGAIN;
    return n;
}

/* ---- receive ------------------------------------------------------------ */

static int rx_fail(struct fd_transport *t, int err)
{
    t->rx_err = err;
    return err;
}

static int recv_packet(struct fd_transport *t, const uint8_t **frame, size_t *len)
{
    for (;;) {
        ssize_t n = raw_read(t, t->in, t->in_cap);
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return rx_fail(t, (int)n);
        if (n == 0 && t->rdgram)
            continue; /* an empty datagram carries no frame; skip it */
        if (n == 0)
            return rx_fail(t, -EPIPE);
        *frame = t->in;
        *len = (size_t)n;
        return 1;
    }
}

/* Length of the complete frame at in_off, 0 if not all there yet, -1 if
 * the bytes cannot start a frame. */
static long stream_next(const struct fd_transport *t)
{
    size_t avail = t->in_end - t->in_off;
    if (avail == 0)
        return 0;
    long n = jk_frame_length(t->in + t->in_off, avail);
    if (n > 0 && (size_t)n > avail)
        return 0;
    return n;
}

/* Read more bytes behind the partial frame: 1 got some, 0 would block,
 * negative errno (-EPIPE at end of stream). */
static int stream_fill(struct fd_transport *t)
{
    if (t->in_off == t->in_end) {
        t->in_off = t->in_end = 0;
    } else if (t->in_cap - t->in_off < JK_MAX_FRAME) {
        /* Rare (once per STREAM_CHUNK consumed) and moves less than one
         * frame: only now could the partial frame fail to fit. */
        memmove(t->in, t->in + t->in_off, t->in_end - t->in_off);
        t->in_end -= t->in_off;
        t->in_off = 0;
    }
    ssize_t n = raw_read(t, t->in + t->in_end, t->in_cap - t->in_end);
    if (n == -EAGAIN)
        return 0;
    if (n == 0)
        return -EPIPE;
    if (n < 0)
        return (int)n;
    t->in_end += (size_t)n;
    return 1;
}

static int recv_stream(struct fd_transport *t, const uint8_t **frame, size_t *len)
{
    for (;;) {
        long n = stream_next(t);
        if (n < 0)
            return rx_fail(t, -EPROTO);
        if (n > 0) {
            *frame = t->in + t->in_off;
            *len = (size_t)n;
            t->in_off += (size_t)n;
            return 1;
        }
        int r = stream_fill(t);
        if (r <= 0)
            return r == 0 ? 0 : rx_fail(t, r);
    }
}

static int fd_recv(jktcp_transport *base, const uint8_t **frame, size_t *len)
{
    struct fd_transport *t = (struct fd_transport *)base;
    if (t->rx_err)
        return t->rx_err;
    if (t->base.framing == JKTCP_FRAMING_PACKET)
        return recv_packet(t, frame, len);
    return recv_stream(t, frame, len);
}

/* ---- send --------------------------------------------------------------- */

static int tx_fail(struct fd_transport *t, int err)
{
    t->tx_err = err;
    /* Nothing will ever be written again: stop asking for POLLOUT. */
    t->out_off = t->out_end = 0;
    t->blocked = false;
    return err;
}

static bool held(const struct fd_transport *t) { return t->out_off < t->out_end; }

/* fd2 with separate fds: the epoll fd stands for both, so register wfd for
 * EPOLLOUT exactly while the adapter needs to hear about writability. */
static void sync_wpoll(struct fd_transport *t)
{
    bool want = held(t) || t->blocked;
    if (t->epfd < 0 || want == t->wpoll)
        return;
    struct epoll_event ev = {.events = want ? EPOLLOUT : 0, .data.fd = t->wfd};
    if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->wfd, &ev) == 0)
        t->wpoll = want;
}

/* Write held bytes: 0 when none are left, -EAGAIN, or negative errno. */
static int flush_out(struct fd_transport *t)
{
    while (held(t)) {
        ssize_t n = raw_write(t, t->out + t->out_off, t->out_end - t->out_off);
        if (n < 0)
            return n == -EAGAIN ? -EAGAIN : tx_fail(t, (int)n);
        t->out_off += (size_t)n;
    }
    t->out_off = t->out_end = 0;
    return 0;
}

/* Append to the held output, moving it to the front if that makes room. */
static bool hold(struct fd_transport *t, const uint8_t *p, size_t len)
{
    size_t used = t->out_end - t->out_off;
    if (t->out_cap - used < len)
        return false;
    if (t->out_cap - t->out_end < len) {
        memmove(t->out, t->out + t->out_off, used);
        t->out_off = 0;
        t->out_end = used;
    }
    memcpy(t->out + t->out_end, p, len);
    t->out_end += len;
    return true;
}

static int send_packet(struct fd_transport *t, const uint8_t *frame, size_t len)
{
    ssize_t n = raw_write(t, frame, len);
    if (n == -EAGAIN)
        return -EAGAIN;
    if (n == -ENOBUFS)
        return 0; /* a full device queue drops the frame; TCP retransmits */
    return n < 0 ? tx_fail(t, (int)n) : 0;
}

/* Stream, no coalescing: one write() per frame; a partial write is held
 * and finished before the next frame's write. */
static int send_single(struct fd_transport *t, const uint8_t *frame, size_t len)
{
    int r = flush_out(t);
    if (r < 0)
        return r;
    ssize_t n = raw_write(t, frame, len);
    if (n < 0)
        return n == -EAGAIN ? -EAGAIN : tx_fail(t, (int)n);
    if ((size_t)n < len)
        hold(t, frame + n, len - (size_t)n); /* fits: the buffer was empty */
    return 0;
}

static int send_coalesce(struct fd_transport *t, const uint8_t *frame, size_t len)
{
    if (hold(t, frame, len))
        return 0;
    int r = flush_out(t);
    if (r < 0 && r != -EAGAIN)
        return r;
    if (hold(t, frame, len))
        return 0;
    t->blocked = true;
    return -EAGAIN;
}

static int send_frame(struct fd_transport *t, const uint8_t *frame, size_t len)
{
    if (t->base.framing == JKTCP_FRAMING_PACKET)
        return send_packet(t, frame, len);
    if (t->flags & JKTCP_TRANSPORT_COALESCE)
        return send_coalesce(t, frame, len);
    return send_single(t, frame, len);
}

static int fd_send(jktcp_transport *base, const uint8_t *frame, size_t len)
{
    struct fd_transport *t = (struct fd_transport *)base;
    if (t->tx_err)
        return t->tx_err;
    int r = send_frame(t, frame, len);
    sync_wpoll(t);
    return r;
}

static int fd_flush(jktcp_transport *base)
{
    struct fd_transport *t = (struct fd_transport *)base;
    if (t->tx_err)
        return t->tx_err;
    int r = flush_out(t);
    sync_wpoll(t);
    return r;
}

static bool fd_pending(const jktcp_transport *base)
{
    return held((const struct fd_transport *)base);
}

static int fd_poll_fd(const jktcp_transport *base)
{
    return ((const struct fd_transport *)base)->io.poll_fd;
}

static short fd_poll_events(const jktcp_transport *base)
{
    const struct fd_transport *t = (const struct fd_transport *)base;
    /* An epoll fd is readable for both directions. */
    if (t->epfd >= 0)
        return POLLIN;
    return (short)(POLLIN | (held(t) || t->blocked ? POLLOUT : 0));
}

static int fd_set_flags(jktcp_transport *base, unsigned flags)
{
    struct fd_transport *t = (struct fd_transport *)base;
    /* Held coalesced bytes would otherwise leave in one non-coalesced write. */
    if (held(t) && ((flags ^ t->flags) & JKTCP_TRANSPORT_COALESCE))
        return -EBUSY;
    t->flags = flags;
    return 0;
}

static void fd_destroy(jktcp_transport *base)
{
    struct fd_transport *t = (struct fd_transport *)base;
    if (t->io.close)
        t->io.close(t->ctx);
    if (t->epfd >= 0)
        close(t->epfd);
    t_destroy(t);
}

static const struct jk_transport_ops fd_ops = JK_TRANSPORT_OPS(fd);

/* ---- construction ------------------------------------------------------- */

/* Every buffer a transport will ever use is allocated here: no path
 * allocates per frame. */
static struct fd_transport *t_new(int framing, const jktcp_io_ops *io, void *ctx)
{
    struct fd_transport *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->base = (jktcp_transport){.ops = &fd_ops, .framing = framing};
    t->rfd = t->wfd = t->epfd = -1;
    t->io = *io;
    t->ctx = ctx;
    bool stream = framing == JKTCP_FRAMING_STREAM;
    t->in_cap = stream ? STREAM_BUF : JK_MAX_FRAME;
    t->in = malloc(t->in_cap);
    if (stream) {
        t->out_cap = STREAM_BUF;
        t->out = malloc(t->out_cap);
    }
    if (!t->in || (stream && !t->out)) {
        t_destroy(t);
        return NULL;
    }
    return t;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -EINVAL;
    return 0;
}

static bool is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool is_dgram(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return is_socket(fd) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           type == SOCK_DGRAM;
}

/* Separate read and write fds need one pollable fd for both directions.
 * Regular files cannot be epolled (EPERM) but never block either, so the
 * plain rfd then does. */
static int epoll_setup(struct fd_transport *t)
{
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (t->epfd < 0)
        return -errno;
    struct epoll_event rev = {.events = EPOLLIN, .data.fd = t->rfd};
    struct epoll_event wev = {.events = 0, .data.fd = t->wfd};
    int err = 0;
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->rfd, &rev) < 0 ||
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wfd, &wev) < 0)
        err = errno;
    if (err) {
        close(t->epfd);
        t->epfd = -1;
    }
    return err == 0 || err == EPERM ? 0 : -err;
}

JKTCP_API int jktcp_transport_fd2(int rfd, int wfd, int framing, jktcp_transport **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (framing == JKTCP_FRAMING_TUN_OFFLOAD && rfd >= 0 && rfd == wfd)
        return jk_transport_tun_new(rfd, out); /* transport_tun.c */
    if (rfd < 0 || wfd < 0 || !framing_ok(framing))
        return -EINVAL;
    if (set_nonblock(rfd) < 0 || set_nonblock(wfd) < 0)
        return -EINVAL;
    const jktcp_io_ops io = {.read = fd_io_read, .write = fd_io_write, .close = fd_io_close};
    struct fd_transport *t = t_new(framing, &io, NULL);
    if (!t)
        return -ENOMEM;
    t->ctx = t;
    t->rfd = rfd;
    t->wfd = wfd;
    t->wsock = is_socket(wfd);
    t->rdgram = is_dgram(rfd);
    int r = rfd != wfd ? epoll_setup(t) : 0;
    if (r < 0) {
        t_destroy(t);
        return r;
    }
    t->io.poll_fd = t->epfd >= 0 ? t->epfd : rfd;
    *out = &t->base;
    return 0;
}

JKTCP_API int jktcp_transport_fd(int fd, int framing, jktcp_transport **out)
{
    return jktcp_transport_fd2(fd, fd, framing, out);
}

JKTCP_API int jktcp_transport_ops(const jktcp_io_ops *ops, size_t ops_size, void *ctx,
                                  int framing, jktcp_transport **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    /* every field of the 0.2 struct is needed (a poll_fd read as 0 would
     * be stdin): a size below it is the caller's mistake */
    jktcp_io_ops o;
    if (ops_size < JK_IO_OPS_SIZE_0_2 || jk_copy_in(&o, sizeof o, ops, ops_size) < 0 || !o.read ||
        !o.write || o.poll_fd < 0 || !framing_ok(framing))
        return -EINVAL;
    struct fd_transport *t = t_new(framing, &o, ctx);
    if (!t)
        return -ENOMEM;
    *out = &t->base;
    return 0;
}
