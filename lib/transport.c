/* SPDX-License-Identifier: MIT */
/* Transports: whole IP frames over an fd, caller functions or a packet
 * port. See transport.h for the contract the adapter relies on. */
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

enum kind { KIND_FD, KIND_OPS, KIND_PORT, KIND_FAULT };

struct jktcp_transport {
    enum kind kind;
    int framing;
    unsigned flags;

    int rfd, wfd;
    int epfd;   /* fd2 only: one fd that polls for rfd-readable or wfd-writable */
    bool wpoll; /* wfd currently registered for EPOLLOUT in epfd */
    bool wsock; /* wfd is a socket: send(MSG_NOSIGNAL) instead of write */
    bool rdgram; /* rfd is a datagram socket: an empty read is not EOF */

    jktcp_io_ops ops;
    void *ctx;

    jktcp_port *port;
    struct jk_fault *fault; /* KIND_FAULT: everything is delegated to fault.c */

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

static void t_destroy(jktcp_transport *t)
{
    free(t->in);
    free(t->out);
    free(t);
}

/* Every buffer a transport will ever use is allocated here: no path
 * allocates per frame. */
static jktcp_transport *t_new(enum kind kind, int framing)
{
    jktcp_transport *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    t->framing = framing;
    t->rfd = t->wfd = t->epfd = -1;
    bool stream = kind != KIND_PORT && framing == JKTCP_FRAMING_STREAM;
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

/* ---- raw I/O ------------------------------------------------------------ */

static ssize_t io_result(ssize_t n, size_t len)
{
    if (n == -EWOULDBLOCK)
        return -EAGAIN;
    if (n > (ssize_t)len)
        return -EIO; /* an ops callback claimed more than it was given */
    return n;
}

static ssize_t fd_read(int fd, void *buf, size_t len)
{
    ssize_t n = read(fd, buf, len);
    return n < 0 ? -errno : n;
}

static ssize_t fd_write(const jktcp_transport *t, const void *buf, size_t len)
{
    /* MSG_NOSIGNAL: a vanished peer must give -EPIPE, not kill the host. */
    ssize_t n = t->wsock ? send(t->wfd, buf, len, MSG_NOSIGNAL) : write(t->wfd, buf, len);
    return n < 0 ? -errno : n;
}

/* One read: bytes, 0 at end of stream, -EAGAIN, or negative errno. */
static ssize_t raw_read(jktcp_transport *t, void *buf, size_t len)
{
    ssize_t n;
    do
        n = t->kind == KIND_FD ? fd_read(t->rfd, buf, len) : t->ops.read(t->ctx, buf, len);
    while (n == -EINTR);
    return io_result(n, len);
}

/* One write: bytes taken (> 0), -EAGAIN, or negative errno. Notes
 * whether the transport now waits for writability. */
static ssize_t raw_write(jktcp_transport *t, const void *buf, size_t len)
{
    ssize_t n;
    do
        n = t->kind == KIND_FD ? fd_write(t, buf, len) : t->ops.write(t->ctx, buf, len);
    while (n == -EINTR);
    /* no progress: wait for writability like a full fd */
    n = n == 0 ? -EAGAIN : io_result(n, len);
    t->blocked = n == -EAGAIN;
    return n;
}

/* ---- receive ------------------------------------------------------------ */

static int rx_fail(jktcp_transport *t, int err)
{
    t->rx_err = err;
    return err;
}

static int recv_packet(jktcp_transport *t, const uint8_t **frame, size_t *len)
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
static long stream_next(const jktcp_transport *t)
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
static int stream_fill(jktcp_transport *t)
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

static int recv_stream(jktcp_transport *t, const uint8_t **frame, size_t *len)
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

static int recv_port(jktcp_transport *t, const uint8_t **frame, size_t *len)
{
    long n = jk_port_take(t->port, t->in, t->in_cap);
    if (n < 0)
        return rx_fail(t, (int)n);
    if (n == 0)
        return 0;
    *frame = t->in;
    *len = (size_t)n;
    return 1;
}

int jk_transport_recv(jktcp_transport *t, const uint8_t **frame, size_t *len)
{
    if (t->kind == KIND_FAULT)
        return jk_fault_recv(t->fault, frame, len);
    if (t->rx_err)
        return t->rx_err;
    if (t->kind == KIND_PORT)
        return recv_port(t, frame, len);
    if (t->framing == JKTCP_FRAMING_PACKET)
        return recv_packet(t, frame, len);
    return recv_stream(t, frame, len);
}

/* ---- send --------------------------------------------------------------- */

static int tx_fail(jktcp_transport *t, int err)
{
    t->tx_err = err;
    /* Nothing will ever be written again: stop asking for POLLOUT. */
    t->out_off = t->out_end = 0;
    t->blocked = false;
    return err;
}

static bool held(const jktcp_transport *t) { return t->out_off < t->out_end; }

/* fd2 with separate fds: the epoll fd stands for both, so register wfd for
 * EPOLLOUT exactly while the adapter needs to hear about writability. */
static void sync_wpoll(jktcp_transport *t)
{
    bool want = held(t) || t->blocked;
    if (t->epfd < 0 || want == t->wpoll)
        return;
    struct epoll_event ev = {.events = want ? EPOLLOUT : 0, .data.fd = t->wfd};
    if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->wfd, &ev) == 0)
        t->wpoll = want;
}

/* Write held bytes: 0 when none are left, -EAGAIN, or negative errno. */
static int flush_out(jktcp_transport *t)
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
static bool hold(jktcp_transport *t, const uint8_t *p, size_t len)
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

static int send_packet(jktcp_transport *t, const uint8_t *frame, size_t len)
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
static int send_single(jktcp_transport *t, const uint8_t *frame, size_t len)
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

static int send_coalesce(jktcp_transport *t, const uint8_t *frame, size_t len)
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

static int send_frame(jktcp_transport *t, const uint8_t *frame, size_t len)
{
    if (t->kind == KIND_PORT)
        return jk_port_give(t->port, frame, len);
    if (t->kind == KIND_FAULT)
        return jk_fault_send(t->fault, frame, len);
    if (t->framing == JKTCP_FRAMING_PACKET)
        return send_packet(t, frame, len);
    if (t->flags & JKTCP_TRANSPORT_COALESCE)
        return send_coalesce(t, frame, len);
    return send_single(t, frame, len);
}

int jk_transport_send(jktcp_transport *t, const uint8_t *frame, size_t len)
{
    if (!frame || len == 0 || len > JK_MAX_FRAME)
        return -EMSGSIZE;
    if (t->tx_err)
        return t->tx_err;
    int r = send_frame(t, frame, len);
    sync_wpoll(t);
    return r;
}

int jk_transport_flush(jktcp_transport *t)
{
    if (t->kind == KIND_FAULT)
        return jk_fault_flush(t->fault);
    if (t->tx_err)
        return t->tx_err;
    int r = flush_out(t);
    sync_wpoll(t);
    return r;
}

bool jk_transport_pending(const jktcp_transport *t)
{
    return t->kind == KIND_FAULT ? jk_fault_pending(t->fault) : held(t);
}

int jk_transport_poll_fd(const jktcp_transport *t)
{
    switch (t->kind) {
    case KIND_FD:
        return t->epfd >= 0 ? t->epfd : t->rfd;
    case KIND_OPS:
        return t->ops.poll_fd;
    case KIND_FAULT:
        return jk_fault_poll_fd(t->fault);
    default:
        return jk_port_in_fd(t->port);
    }
}

short jk_transport_poll_events(const jktcp_transport *t)
{
    if (t->kind == KIND_FAULT)
        return jk_fault_poll_events(t->fault);
    /* The port wakes in_efd itself; an epoll fd is readable for both. */
    if (t->kind == KIND_PORT || t->epfd >= 0)
        return POLLIN;
    return (short)(POLLIN | (held(t) || t->blocked ? POLLOUT : 0));
}

int jk_transport_framing(const jktcp_transport *t) { return t->framing; }

/* ---- construction ------------------------------------------------------- */

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
static int epoll_setup(jktcp_transport *t)
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
    if (rfd < 0 || wfd < 0 || !framing_ok(framing))
        return -EINVAL;
    if (set_nonblock(rfd) < 0 || set_nonblock(wfd) < 0)
        return -EINVAL;
    jktcp_transport *t = t_new(KIND_FD, framing);
    if (!t)
        return -ENOMEM;
    t->rfd = rfd;
    t->wfd = wfd;
    t->wsock = is_socket(wfd);
    t->rdgram = is_dgram(rfd);
    int r = rfd != wfd ? epoll_setup(t) : 0;
    if (r < 0) {
        t_destroy(t);
        return r;
    }
    *out = t;
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
    jktcp_transport *t = t_new(KIND_OPS, framing);
    if (!t)
        return -ENOMEM;
    t->ops = o;
    t->ctx = ctx;
    *out = t;
    return 0;
}

/* Called by jktcp_transport_faulty; the wrapper owns f (and f the inner
 * transport). No buffers: fault.c has its own. */
int jk_transport_new_fault(struct jk_fault *f, int framing, jktcp_transport **out)
{
    jktcp_transport *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->kind = KIND_FAULT;
    t->framing = framing;
    t->rfd = t->wfd = t->epfd = -1;
    t->fault = f;
    *out = t;
    return 0;
}

struct jk_fault *jk_transport_fault_of(jktcp_transport *t)
{
    return t && t->kind == KIND_FAULT ? t->fault : NULL;
}

/* Called by jktcp_port_transport, which holds the port reference for us. */
int jk_transport_new_port(jktcp_port *p, jktcp_transport **out)
{
    jktcp_transport *t = t_new(KIND_PORT, JKTCP_FRAMING_PACKET);
    if (!t)
        return -ENOMEM;
    t->port = p;
    *out = t;
    return 0;
}

JKTCP_API int jktcp_transport_set_flags(jktcp_transport *t, unsigned flags)
{
    const unsigned known = JKTCP_TRANSPORT_COALESCE | JKTCP_TRANSPORT_CLOSE_FD;
    if (!t || (flags & ~known))
        return -EINVAL;
    if (t->kind == KIND_FAULT)
        return jk_fault_set_flags(t->fault, flags);
    /* Held coalesced bytes would otherwise leave in one non-coalesced write. */
    if (held(t) && ((flags ^ t->flags) & JKTCP_TRANSPORT_COALESCE))
        return -EBUSY;
    t->flags = flags;
    return 0;
}

JKTCP_API void jktcp_transport_free(jktcp_transport *t)
{
    if (!t)
        return;
    if (t->kind == KIND_OPS && t->ops.close)
        t->ops.close(t->ctx);
    if (t->kind == KIND_FD && (t->flags & JKTCP_TRANSPORT_CLOSE_FD)) {
        close(t->rfd);
        if (t->wfd != t->rfd)
            close(t->wfd);
    }
    if (t->epfd >= 0)
        close(t->epfd);
    if (t->kind == KIND_PORT)
        jk_port_detach(t->port);
    if (t->kind == KIND_FAULT)
        jk_fault_free(t->fault);
    t_destroy(t);
}
