/* SPDX-License-Identifier: MIT */
/*
 * Kernel-side servers: threads of the test process serving kernel TCP
 * sockets on the kernel-side address of the namespace (netns.h), for jktcp
 * to talk to. Criterion-free. Functions return 0 or a negative errno.
 */
#ifndef JKT_KSERVER_H
#define JKT_KSERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    JKT_SRV_SINK_VERDICT, /* the client says what to expect: read a 4-byte seed (big-endian),
                             check every byte after it against pattern(seed) until EOF, answer
                             "OK <bytes>\n" or "BAD <offset of the first bad byte>\n", close */
    JKT_SRV_SOURCE_ASKED, /* the client asks: read a 4-byte seed and an 8-byte count (both
                             big-endian), send count bytes of pattern(seed), close */
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
    const char *cc;     /* TCP_CONGESTION on accepted sockets (NULL = the namespace's
                           default); if the kernel refuses it, `error` says so and the
                           connection goes on with the default */

    /* results; read them after jkt_server_stop, or the atomics at any time */
    atomic_ulong accepted;     /* connections accepted */
    atomic_ulong done;         /* connection handlers finished */
    atomic_ulong eofs;         /* clean EOFs read (read() == 0) */
    atomic_ulong resets;       /* ECONNRESET / other read errors */
    atomic_ulong bytes_in, bytes_out;
    atomic_ulong mismatches;   /* connections whose incoming data broke the pattern */
    atomic_ulong cpu_ns;       /* CPU time of the connection handlers, added as each ends
                                  (benchmarks subtract it from the process's) */
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
#endif
