/* SPDX-License-Identifier: MIT */
/* The TUN offload transport (JKTCP_FRAMING_TUN_OFFLOAD): a TUN fd opened
 * with IFF_VNET_HDR, every read and write a struct virtio_net_hdr and one
 * packet. With TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 turned on the kernel
 * hands over TCP super-segments of up to 64 KiB and takes them: received
 * ones are cut into the segments they stand for and handed to the adapter
 * one by one; the segments of one flow that one output pass sends back to
 * back are written as one super-segment at the pass's flush (vnet.c does
 * the header work). See transport.h for the contract. */
#include "transport.h"

#include "packet.h"
#include "vnet.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define TUN_OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
#define IN_CAP (JK_VNET_HDR_LEN + JK_MAX_FRAME)

struct tun_transport {
    jktcp_transport base;
    unsigned flags;
    int fd;
    int rx_err, tx_err; /* sticky failures (negative errno) */
    bool blocked;       /* the last write would have blocked */
    uint8_t *in;        /* IN_CAP: the last packet read, cut in place */
    struct jk_vnet_split split;
    struct jk_vnet_coalesce co; /* co.buf: the super-segment being built */
    size_t out_len; /* bytes of co.buf finished and not yet written (0: none) */
};

/* ---- receive ------------------------------------------------------------ */

static int tun_recv(jktcp_transport *base, const uint8_t **frame, size_t *len)
{
    struct tun_transport *t = (struct tun_transport *)base;
    if (t->rx_err)
        return t->rx_err;
    for (;;) {
        if (jk_vnet_split_next(&t->split, frame, len)) {
            base->rx_csum_ours = t->split.csum_ours;
            return 1;
        }
        ssize_t n;
        do
            n = read(t->fd, t->in, IN_CAP);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return t->rx_err = n == 0 ? -EPIPE : -errno;
        if ((size_t)n <= JK_VNET_HDR_LEN)
            continue; /* no packet behind the header */
        struct jk_vnet_hdr h;
        jk_vnet_hdr_get(&h, t->in);
        jk_vnet_split_begin(&t->split, t->in + JK_VNET_HDR_LEN, (size_t)n - JK_VNET_HDR_LEN, &h);
    }
}

/* ---- send --------------------------------------------------------------- */

static int tx_fail(struct tun_transport *t, int err)
{
    t->tx_err = err;
    t->out_len = 0; /* nothing will be written any more */
    t->co.len = 0;
    t->blocked = false;
    return err;
}

/* One packet: 0 written (or dropped by a full device queue: TCP
 * retransmits), -EAGAIN, or the failure. */
static int write_packet(struct tun_transport *t, const struct iovec *iov, int n)
{
    ssize_t w;
    do
        w = writev(t->fd, iov, n);
    while (w < 0 && errno == EINTR);
    t->blocked = w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (t->blocked)
        return -EAGAIN;
    if (w < 0 && errno != ENOBUFS)
        return tx_fail(t, -errno);
    return 0;
}

/* Write what is held (finishing the super-segment first): 0 when nothing
 * is held any more, -EAGAIN, or the failure. */
static int write_held(struct tun_transport *t)
{
    if (t->out_len == 0)
        t->out_len = jk_vnet_coalesce_finish(&t->co);
    if (t->out_len == 0)
        return 0;
    struct iovec iov = {t->co.buf, t->out_len};
    int r = write_packet(t, &iov, 1);
    if (r == 0)
        t->out_len = 0;
    return r;
}

static bool held(const struct tun_transport *t) { return t->out_len > 0 || t->co.len > 0; }

static int tun_send(jktcp_transport *base, const uint8_t *frame, size_t len)
{
    struct tun_transport *t = (struct tun_transport *)base;
    if (t->tx_err)
        return t->tx_err;
    if (t->out_len == 0 && jk_vnet_coalesce_add(&t->co, frame, len))
        return 0;
    int r = write_held(t);
    if (r < 0)
        return r;
    if (jk_vnet_coalesce_add(&t->co, frame, len))
        return 0;
    /* alone, as it is, behind a zero header */
    static const uint8_t zero[JK_VNET_HDR_LEN];
    const struct iovec iov[2] = {{(void *)zero, sizeof zero}, {(void *)frame, len}};
    return write_packet(t, iov, 2);
}

static int tun_flush(jktcp_transport *base)
{
    struct tun_transport *t = (struct tun_transport *)base;
    return t->tx_err ? t->tx_err : write_held(t);
}

static bool tun_pending(const jktcp_transport *base)
{
    return held((const struct tun_transport *)base);
}

static int tun_poll_fd(const jktcp_transport *base)
{
    return ((const struct tun_transport *)base)->fd;
}

static short tun_poll_events(const jktcp_transport *base)
{
    const struct tun_transport *t = (const struct tun_transport *)base;
    return (short)(POLLIN | (t->blocked ? POLLOUT : 0));
}

static int tun_set_flags(jktcp_transport *base, unsigned flags)
{
    ((struct tun_transport *)base)->flags = flags; /* COALESCE: stream framing's, no effect */
    return 0;
}

static void tun_free(struct tun_transport *t)
{
    free(t->in);
    free(t->co.buf);
    free(t);
}

static void tun_destroy(jktcp_transport *base)
{
    struct tun_transport *t = (struct tun_transport *)base;
    if (t->flags & JKTCP_TRANSPORT_CLOSE_FD)
        close(t->fd);
    tun_free(t);
}

static const struct jk_transport_ops tun_ops = JK_TRANSPORT_OPS(tun);

/* ---- construction ------------------------------------------------------- */

/* The fd must be a TUN device (IFF_TUN, IFF_NO_PI) opened with
 * IFF_VNET_HDR; then the header size and the offloads are set. */
static int tun_setup(int fd)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) < 0)
        return -EINVAL; /* not a TUN fd */
    unsigned want = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    if (((unsigned)ifr.ifr_flags & (want | IFF_TAP)) != want)
        return -EINVAL;
    int hdr = JK_VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, TUN_OFFLOADS) < 0)
        return -EOPNOTSUPP;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -EINVAL;
    return 0;
}

int jk_transport_tun_new(int fd, jktcp_transport **out)
{
    int r = tun_setup(fd);
    if (r < 0)
        return r;
    struct tun_transport *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->base = (jktcp_transport){.ops = &tun_ops, .framing = JKTCP_FRAMING_TUN_OFFLOAD};
    t->fd = fd;
    t->in = malloc(IN_CAP);
    t->co.buf = malloc(JK_VNET_HDR_LEN + JK_VNET_MAX_SUPER);
    if (!t->in || !t->co.buf) {
        tun_free(t);
        return -ENOMEM;
    }
    *out = &t->base;
    return 0;
}
