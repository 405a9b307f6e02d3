/* SPDX-License-Identifier: MIT */
/*
 * Bridge: TUN <-> Unix socket (stream, or seqpacket), optionally lossy, so
 * that jktcp reaches the kernel over jktcp_transport_fd's stream or packet
 * framing. Criterion-free. Functions return 0 or a negative errno.
 */
#ifndef JKT_BRIDGE_H
#define JKT_BRIDGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* bridge flags */
#define JKT_BRIDGE_RANDOM_CHUNKS 1u /* TUN->socket: coalesce frames and write
                                       them in random-sized pieces */
#define JKT_BRIDGE_SEQPACKET 2u     /* socketpair(SOCK_SEQPACKET): one frame per
                                       message, for JKTCP_FRAMING_PACKET */

struct jkt_bridge {
    int tunfd;
    int sock;      /* the bridge's end of the socketpair */
    int user_fd;   /* the other end: give it to jktcp_transport_fd(STREAM) */
    unsigned flags;
    uint32_t seed;
    unsigned loss_permille; /* frames dropped per 1000, each direction */
    int stopfd;
    atomic_bool stopping;
    pthread_t th_up, th_down;
    bool running;
    atomic_ulong frames_to_sock, frames_to_tun;
    atomic_ulong bytes_to_sock, bytes_to_tun;
    atomic_int error;    /* first failure (-EPROTO: bad frame in the stream) */
    atomic_ulong dropped_up, dropped_down; /* frames dropped on purpose */
};

/* Create the socketpair and start both threads. 0 or -errno. */
int jkt_bridge_start(struct jkt_bridge *b, int tunfd, unsigned flags, uint32_t seed);
/* Same, dropping loss_permille of every 1000 frames in each direction
 * (pseudo-random, from seed) to exercise retransmission on both stacks. */
int jkt_bridge_start_lossy(struct jkt_bridge *b, int tunfd, unsigned flags, uint32_t seed,
                           unsigned loss_permille);
/* Stop both threads and close both socketpair ends (free the adapter that
 * uses user_fd first). Leaves the TUN fd open. */
void jkt_bridge_stop(struct jkt_bridge *b);

/* ---------------------------------------------------------------------- */
#endif
