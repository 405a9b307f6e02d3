/* SPDX-License-Identifier: MIT */
/* Transports: move whole IP frames between the adapter and the outside.
 * A transport is an ops table and its implementation's state; the
 * implementations are fd and caller ops (transport_fd.c), the TUN offload
 * transport (transport_tun.c), the packet port (port.c), and the wrappers
 * fault (fault.c) and pcap (pcap.c). This
 * header is the contract the adapter relies on (transport.c dispatches)
 * and the one every implementation fills in. */
#ifndef JK_TRANSPORT_H
#define JK_TRANSPORT_H

#include "jktcp.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One implementation. Every entry is required; the meaning of each is that
 * of the jk_transport_* function of the same name below, which calls it. */
struct jk_transport_ops {
    int (*recv)(jktcp_transport *t, const uint8_t **frame, size_t *len);
    int (*send)(jktcp_transport *t, const uint8_t *frame, size_t len); /* len checked */
    int (*flush)(jktcp_transport *t);
    bool (*pending)(const jktcp_transport *t);
    int (*poll_fd)(const jktcp_transport *t);
    short (*poll_events)(const jktcp_transport *t);
    int (*set_flags)(jktcp_transport *t, unsigned flags); /* flags known */
    void (*destroy)(jktcp_transport *t);                 /* frees t */
};

/* The ops table of an implementation whose functions are named
 * <prefix>_recv, <prefix>_send, ... after the entries they fill. */
#define JK_TRANSPORT_OPS(prefix)                                                                 \
    {                                                                                            \
        .recv = prefix##_recv, .send = prefix##_send, .flush = prefix##_flush,                   \
        .pending = prefix##_pending, .poll_fd = prefix##_poll_fd,                                \
        .poll_events = prefix##_poll_events, .set_flags = prefix##_set_flags,                    \
        .destroy = prefix##_destroy,                                                             \
    }

/* The first member of every implementation's struct, so that a
 * jktcp_transport * is also a pointer to the implementation's state. */
struct jktcp_transport {
    const struct jk_transport_ops *ops;
    int framing; /* JKTCP_FRAMING_*; a wrapper has its inner transport's */
    /* Set by recv with the frame it returns (jk_transport_recv clears it
     * first): the frame's TCP checksum is the transport's own work, made
     * over the bytes as they are (the TUN offload transport's cut of a
     * super-segment), so the adapter does not sum them again. A wrapper
     * that hands on its inner transport's frame unchanged may copy it. */
    bool rx_csum_ours;
};

/*
 * Receive one frame. On 1, *frame and *len point into the transport's own
 * buffer, valid until the next jk_transport_recv call. Returns 0 when no
 * complete frame is ready (the caller then waits on jk_transport_poll_fd),
 * -EPIPE at end of stream, -EPROTO if a stream lost framing (a header
 * that cannot start a frame), or the transport's negative errno.
 * Stream transports read in large chunks and hand out frames one by one;
 * a frame may arrive split across any number of reads.
 */
int jk_transport_recv(jktcp_transport *t, const uint8_t **frame, size_t *len);
/* After a recv that returned 1: see jktcp_transport.rx_csum_ours. */
static inline bool jk_transport_rx_csum_ours(const jktcp_transport *t) { return t->rx_csum_ours; }

/*
 * Send one whole frame. 0: accepted (written, or — partially written or
 * coalesced — held inside the transport until jk_transport_flush).
 * -EAGAIN: the transport is busy (earlier output still pending and the fd
 * would block); nothing was taken, retry after the fd polls writable.
 * -EMSGSIZE: frame is NULL, empty or longer than JK_MAX_FRAME.
 * Other negative errno: the transport failed.
 * Stream framing without JKTCP_TRANSPORT_COALESCE issues exactly one
 * write() per frame (a partial write is finished by later writes before
 * the next frame starts).
 */
int jk_transport_send(jktcp_transport *t, const uint8_t *frame, size_t len);

/* Write out held output. 0 when nothing is held any more, -EAGAIN while
 * some is, negative errno on failure. */
int jk_transport_flush(jktcp_transport *t);

/* True while output is held (poll the fd for POLLOUT). */
bool jk_transport_pending(const jktcp_transport *t);

/* The fd to poll: readable when recv may return a frame. */
int jk_transport_poll_fd(const jktcp_transport *t);

/* poll() events to wait for: POLLIN, plus POLLOUT while output is held
 * on an fd that reports writability. (A packet port instead makes its fd
 * readable when the host pulls after a refused send.) */
short jk_transport_poll_events(const jktcp_transport *t);

/* Framing of the transport (JKTCP_FRAMING_*). */
int jk_transport_framing(const jktcp_transport *t);

/* The TUN offload transport over fd (transport_tun.c): checks that fd is a
 * TUN device opened with IFF_VNET_HDR (-EINVAL), sets the header size and
 * the offloads (-EOPNOTSUPP if the kernel refuses), makes fd non-blocking.
 * 0, or -ENOMEM. jktcp_transport_fd with JKTCP_FRAMING_TUN_OFFLOAD. */
int jk_transport_tun_new(int fd, jktcp_transport **out);

#endif
