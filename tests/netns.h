/* SPDX-License-Identifier: MIT */
/*
 * Kernel-peer harness: a private network namespace with a TUN device whose
 * far end is jktcp, and kernel TCP servers (threads of this process, using
 * kernel sockets inside the namespace) for jktcp to talk to.
 *
 * Addresses (only ever used inside a namespace the harness created):
 *   kernel side  198.18.0.1/24   fd00::1/64   (assigned to the TUN device)
 *   jktcp side   198.18.0.2      fd00::2      (on-link: routed into the TUN)
 *
 * Everything here is free of Criterion so tools can use it too
 * (tools/jktcp-demo.c includes netns.c directly, since a tool is built from
 * its own single source file). Functions return 0 / a count or a negative
 * errno, like jktcp itself.
 */
#ifndef JKT_NETNS_H
#define JKT_NETNS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define JKT_KERNEL_IP4 "198.18.0.1"
#define JKT_LOCAL_IP4 "198.18.0.2"
#define JKT_KERNEL_IP6 "fd00::1"
#define JKT_LOCAL_IP6 "fd00::2"

/* family_flags for jkt_tun_open */
#define JKT_FAM_IPV4 1
#define JKT_FAM_IPV6 2

/* The kernel-side and jktcp-side addresses for a family (AF_INET/AF_INET6). */
const char *jkt_kernel_ip(int family);
const char *jkt_local_ip(int family);

/* ---------------------------------------------------------------------- */
/* Namespace and TUN                                                      */
/* ---------------------------------------------------------------------- */

/*
 * unshare(CLONE_NEWNET) for the calling thread (and so for threads and
 * processes it creates afterwards), bring lo up, quiet IPv6 defaults (no DAD,
 * no router solicitations). SIGPIPE is ignored. 0 or -errno (-EPERM without
 * root).
 */
int jkt_netns_enter(void);

struct jkt_tun {
    int fd;        /* /dev/net/tun fd, blocking, IFF_TUN|IFF_NO_PI */
    char name[16]; /* interface name */
    unsigned mtu;
    int ifindex;
};

/*
 * Create TUN device `name` (NULL: "jkt0") in the current namespace with the
 * given MTU, assign the kernel-side addresses of the families in
 * family_flags (0 = both), bring it up and wait until the addresses are
 * usable. 0 or -errno (-ENOENT if /dev/net/tun is missing).
 */
int jkt_tun_open(const char *name, unsigned mtu, int family_flags, struct jkt_tun *out);
void jkt_tun_close(struct jkt_tun *t);

/* Run a command (argv[0] looked up in PATH) in the current namespace and
 * wait: its exit status (0..255), or -errno. Output goes to /dev/null unless
 * out (captured, NUL-terminated, truncated to cap) is given. */
int jkt_run(char *const argv[], char *out, size_t cap);
/* Same through /bin/sh -c. */
int jkt_sh(const char *cmd, char *out, size_t cap);

/* True if a program is found in PATH. */
bool jkt_have_program(const char *name);

/* ---------------------------------------------------------------------- */
/* Deterministic data                                                     */
/* ---------------------------------------------------------------------- */

/* Byte at stream offset i of the pattern with this seed. */
uint8_t jkt_pattern_byte(uint64_t i, uint32_t seed);
/* buf[k] = jkt_pattern_byte(offset + k, seed). */
void jkt_pattern_fill(void *buf, size_t len, uint64_t offset, uint32_t seed);
/* Index of the first byte of buf that differs from the pattern at offset,
 * or len if all match. */
size_t jkt_pattern_check(const void *buf, size_t len, uint64_t offset, uint32_t seed);

/* Monotonic clock. */
uint64_t jkt_now_us(void);
double jkt_now_s(void);

/* ---------------------------------------------------------------------- */
/* Kernel-side servers                                                    */
/* ---------------------------------------------------------------------- */

enum jkt_server_kind {
    JKT_SRV_ECHO = 1,    /* echo until EOF, then close */
    JKT_SRV_SINK,        /* read to EOF, count/checksum (verify pattern if verify) */
    JKT_SRV_SOURCE,      /* write nbytes of pattern(seed), then close */
    JKT_SRV_RESET,       /* read reset_after bytes (0: none), then SO_LINGER 0 close (RST) */
    JKT_SRV_HALFCLOSE,   /* write nbytes, shutdown(SHUT_WR), read (verify) to EOF, close */
    JKT_SRV_DRAIN_SEND,  /* read (verify) to EOF, then write nbytes, then close */
    JKT_SRV_NOREAD,      /* accept and hold the connection without reading, until stop */
    JKT_SRV_RR,          /* request/response: read req_size bytes, answer nbytes in two
                            writes (all but the last 100 bytes, then those; Nagle on, so
                            the tail waits for the client's ACK), until EOF */
};

struct jkt_server {
    /* configuration (set before jkt_server_start) */
    int kind;
    int family;         /* AF_INET or AF_INET6 */
    uint16_t port;      /* kernel-side port; 0 picks a free one (set on start) */
    uint64_t nbytes;    /* SOURCE / HALFCLOSE / DRAIN_SEND: bytes to send */
    uint32_t seed;      /* pattern seed for data the server sends */
    uint32_t in_seed;   /* pattern seed to verify incoming data with */
    bool verify;        /* SINK / HALFCLOSE / DRAIN_SEND: check incoming pattern */
    bool count_only;    /* SINK without verify: count bytes, no checksum (benchmarks) */
    uint64_t reset_after; /* RESET: bytes to read before resetting */
    uint32_t req_size;  /* RR: request size */
    int rcvbuf;         /* SO_RCVBUF for accepted sockets (0 = default) */
    int backlog;        /* listen backlog (0 = 1024) */
    unsigned user_timeout_ms; /* TCP_USER_TIMEOUT on accepted sockets (0 = the
                                 kernel's tcp_retries2 budget) */

    /* results; read them after jkt_server_stop, or the atomics at any time */
    atomic_ulong accepted;     /* connections accepted */
    atomic_ulong done;         /* connection handlers finished */
    atomic_ulong eofs;         /* clean EOFs read (read() == 0) */
    atomic_ulong resets;       /* ECONNRESET / other read errors */
    atomic_ulong bytes_in, bytes_out;
    atomic_ulong mismatches;   /* connections whose incoming data broke the pattern */
    uint64_t first_mismatch;   /* stream offset of the first bad byte (UINT64_MAX: none) */
    uint64_t checksum;         /* sum over connections of a running FNV-1a of input */
    int error;                 /* first unexpected errno in the server (0 = none) */

    /* internal */
    int lfd;
    int stopfd;
    atomic_bool stopping;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    int *conn_fds;      /* open connection fds (for stop) */
    size_t nconn_fds, cap_conn_fds;
    atomic_int handlers; /* live handler threads */
};

/* Bind to the kernel address of s->family on s->port (listen) and start the
 * accept thread. 0 or -errno. */
int jkt_server_start(struct jkt_server *s);
/* Wait (without driving anything) until `done` >= n or timeout: 0 / -EAGAIN. */
int jkt_server_wait_done(struct jkt_server *s, unsigned long n, int timeout_ms);
/* Stop accepting, shut down open connections, join every thread. */
void jkt_server_stop(struct jkt_server *s);
/* One-line summary for logs. */
void jkt_server_describe(const struct jkt_server *s, char *buf, size_t cap);

/* ---------------------------------------------------------------------- */
/* Bridge: TUN <-> Unix socket (stream, or seqpacket), optionally lossy   */
/* ---------------------------------------------------------------------- */

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
/* Inspection and noise                                                   */
/* ---------------------------------------------------------------------- */

/*
 * Count kernel TCP sockets (ss -tanH in this namespace) with port as local
 * or remote port whose state is one of the '|'-separated ss state names in
 * states (e.g. "LAST-ACK|FIN-WAIT-1|FIN-WAIT-2|CLOSING"); NULL = any state.
 * -errno on failure. If dump is given, the matching lines are appended.
 */
int jkt_ss_count(uint16_t port, const char *states, char *dump, size_t cap);

/* Send a UDP datagram of len bytes from the kernel to jktcp's address
 * (family) port dport through the TUN. 0 or -errno. */
int jkt_send_udp(int family, uint16_t dport, size_t len);
/* Send an ICMP / ICMPv6 echo request to jktcp's address (raw socket). */
int jkt_send_ping(int family, uint16_t id, uint16_t seq, size_t payload_len);

/* Read frames off a TUN fd until one satisfies: IP protocol proto (6 = TCP),
 * and for TCP the given destination port and, if syn_only, the SYN flag.
 * Returns the frame length (copied to buf) or -EAGAIN after timeout_ms. */
ssize_t jkt_tun_wait_frame(int tunfd, int proto, uint16_t dport, bool syn_only,
                           void *buf, size_t cap, int timeout_ms);

#endif
