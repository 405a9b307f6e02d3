/* SPDX-License-Identifier: MIT */
/* Transports: move whole IP frames between the adapter and an fd, caller
 * functions or a packet port. Internal interface used by the adapter. */
#ifndef JK_TRANSPORT_H
#define JK_TRANSPORT_H

#include "jktcp.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/*
 * Send one whole frame. 0: accepted (written, or — partially written or
 * coalesced — held inside the transport until jk_transport_flush).
 * -EAGAIN: the transport is busy (earlier output still pending and the fd
 * would block); nothing was taken, retry after the fd polls writable.
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

/* Between transport.c and the kinds that live in their own files. */

/* Packet port (port.c): take/give one frame, the inbound eventfd, and
 * dropping the transport's reference. */
long jk_port_take(jktcp_port *p, uint8_t *buf, size_t cap);
int jk_port_give(jktcp_port *p, const uint8_t *frame, size_t len);
int jk_port_in_fd(const jktcp_port *p);
void jk_port_detach(jktcp_port *p);
int jk_transport_new_port(jktcp_port *p, jktcp_transport **out);

/* Fault-injecting wrapper (fault.c): the transport operations of a FAULT
 * transport, forwarded by transport.c. */
struct jk_fault;
int jk_fault_recv(struct jk_fault *f, const uint8_t **frame, size_t *len);
int jk_fault_send(struct jk_fault *f, const uint8_t *frame, size_t len);
int jk_fault_flush(struct jk_fault *f);
bool jk_fault_pending(const struct jk_fault *f);
int jk_fault_poll_fd(const struct jk_fault *f);
short jk_fault_poll_events(const struct jk_fault *f);
int jk_fault_set_flags(struct jk_fault *f, unsigned flags);
void jk_fault_free(struct jk_fault *f);
int jk_transport_new_fault(struct jk_fault *f, int framing, jktcp_transport **out);
struct jk_fault *jk_transport_fault_of(jktcp_transport *t);

#endif
