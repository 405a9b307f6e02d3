/* SPDX-License-Identifier: MIT */
/*
 * jktcp — a userspace TCP/IP stack over any pipe that carries raw IP packets.
 *
 * Conventions (the whole API follows them):
 *  - Every type is opaque and every name starts with jktcp_ / JKTCP_.
 *  - Functions return 0 (or a byte count) on success and a negative errno
 *    value on failure: -EINVAL, -ENOMEM, -EAGAIN, -ETIMEDOUT, -ECONNREFUSED,
 *    -ECONNRESET, -EPIPE, -ENOTCONN, ... jktcp_strerror() describes them.
 *  - Timeouts are in milliseconds: < 0 waits forever, 0 never waits.
 *    A wait that runs out returns -EAGAIN (as a socket with SO_RCVTIMEO
 *    does); -ETIMEDOUT always means the *connection* timed out
 *    (connect not answered, retransmissions exhausted).
 *  - No callbacks required: every object hangs off the adapter it was
 *    created from. The only process-wide state is the table that resolves
 *    handle, stream and listener ids (see "Threaded handle").
 *  - Ports are int and must be 1..65535 (-EINVAL otherwise).
 *  - Structs the library fills (or reads) grow over time: every call that
 *    takes one also takes its size (pass sizeof). The library copies
 *    min(size, its own size) bytes and zeroes the rest of the caller's
 *    struct, so old binaries keep working against a newer library and
 *    the other way round. size 0 is -EINVAL.
 *  - Every public enum value is explicit and never renumbered.
 *
 * Objects and lifetimes:
 *   jktcp_transport  carries raw IPv4/IPv6 frames (fd, caller functions or a
 *                    packet port). Handed to an adapter, which then owns it.
 *   jktcp_adapter    one TCP/IP endpoint: one transport, a local and a peer
 *                    address, every connection and timer. Single-threaded:
 *                    only one thread may call into an adapter (and its
 *                    connections and listeners) at a time.
 *   jktcp_conn       one TCP connection of an adapter. Valid from connect or
 *                    accept until jktcp_conn_close / jktcp_conn_abort.
 *   jktcp_conn_listener  accepts connections the peer opens to a local port
 *                    (single-threaded adapter API).
 *   jktcp_handle     the adapter moved onto its own I/O thread; thread-safe.
 *   jktcp_stream     a connection of a handle: thread-safe.
 *   jktcp_listener   accepts connections of a handle as streams.
 *                    Handles, streams and listeners are 64-bit ids that are
 *                    never reused in the process (see "Threaded handle").
 *   jktcp_port       an in-memory packet pipe for hosts that have frames but
 *                    no fd. Thread-safe.
 *
 * The adapter does nothing on its own: it moves when a call drives it
 * (jktcp_adapter_poll, or any blocking conn call, which polls while waiting).
 */
#ifndef JKTCP_H
#define JKTCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define JKTCP_API __attribute__((visibility("default")))
#else
#define JKTCP_API
#endif

#define JKTCP_VERSION_MAJOR 0
#define JKTCP_VERSION_MINOR 2
#define JKTCP_VERSION_PATCH 0
/* (major << 16) | (minor << 8) | patch, e.g. 0x000200 for 0.2.0. A binding
 * compares it with jktcp_version_number(): the same major (and, while the
 * major is 0, the same minor) is ABI-compatible. */
#define JKTCP_VERSION_NUMBER                                                                    \
    ((JKTCP_VERSION_MAJOR << 16) | (JKTCP_VERSION_MINOR << 8) | JKTCP_VERSION_PATCH)

typedef struct jktcp_transport jktcp_transport;
typedef struct jktcp_adapter jktcp_adapter;
typedef struct jktcp_conn jktcp_conn;
typedef struct jktcp_conn_listener jktcp_conn_listener;
typedef struct jktcp_port jktcp_port;

/* Ids of the threaded API's objects (see "Threaded handle"). Passed by
 * value; id 0 never names an object. Distinct types so that C catches a
 * stream passed where a listener belongs. */
typedef struct jktcp_handle {
    uint64_t id;
} jktcp_handle;
typedef struct jktcp_stream {
    uint64_t id;
} jktcp_stream;
typedef struct jktcp_listener {
    uint64_t id;
} jktcp_listener;

/* "jktcp 0.2.0". Static storage. */
JKTCP_API const char *jktcp_version(void);
/* JKTCP_VERSION_NUMBER of the library actually loaded. */
JKTCP_API unsigned jktcp_version_number(void);

/* Text for a return code (positive or negative errno, or 0). Static storage. */
JKTCP_API const char *jktcp_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Transports                                                               */
/* ------------------------------------------------------------------------ */

/* How frames sit on a file descriptor. */
enum jktcp_framing {
    /* Bytes back to back; each frame's length comes from its IPv4 total
     * length / IPv6 payload length (CDTunnel over TLS, a Unix stream socket).
     * Reads may split or coalesce frames in any way. */
    JKTCP_FRAMING_STREAM = 1,
    /* One frame per read()/write() (TUN device, SOCK_SEQPACKET, SOCK_DGRAM). */
    JKTCP_FRAMING_PACKET = 2,
    /* Linux TUN with offloads: jktcp_transport_fd only, on a TUN fd the
     * caller opened with IFF_TUN | IFF_NO_PI | IFF_VNET_HDR. Each read()/
     * write() is a struct virtio_net_hdr and one packet; jktcp sets the
     * header size (TUNSETVNETHDRSZ) and turns on TUN_F_CSUM | TUN_F_TSO4 |
     * TUN_F_TSO6 (TUNSETOFFLOAD), so the kernel exchanges TCP
     * super-segments of up to 64 KiB instead of one syscall per segment.
     * Received super-segments are cut into their segments (checksums
     * completed); the segments of one connection that one output pass
     * sends back to back are written as one super-segment. */
    JKTCP_FRAMING_TUN_OFFLOAD = 3,
};

/* Transport flags (jktcp_transport_set_flags). */
enum jktcp_transport_flag {
    /* Stream framing only: allow several frames in one write call. Off by
     * default because iOS's CDTunnel forwarder drops or corrupts coalesced
     * writes; turn on for peers that take a byte stream as a byte stream. */
    JKTCP_TRANSPORT_COALESCE = 1u << 0,
    /* Close the fd when the transport is freed (default: the caller keeps it). */
    JKTCP_TRANSPORT_CLOSE_FD = 1u << 1,
};

/*
 * A transport over a file descriptor. The fd is switched to non-blocking
 * mode. framing is JKTCP_FRAMING_STREAM, JKTCP_FRAMING_PACKET or
 * JKTCP_FRAMING_TUN_OFFLOAD. Returns 0 or -EINVAL / -ENOMEM; with
 * JKTCP_FRAMING_TUN_OFFLOAD also -EINVAL when fd is not a TUN device
 * opened with IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, and -EOPNOTSUPP when
 * the kernel refuses the header size or the offloads.
 */
JKTCP_API int jktcp_transport_fd(int fd, int framing, jktcp_transport **out);

/* Same, with separate read and write fds (a pair of pipes, stdin/stdout).
 * JKTCP_FRAMING_TUN_OFFLOAD needs rfd == wfd (else -EINVAL). */
JKTCP_API int jktcp_transport_fd2(int rfd, int wfd, int framing, jktcp_transport **out);

/*
 * Caller-supplied I/O (e.g. a TLS library). All functions are called from
 * the thread that drives the adapter.
 */
typedef struct jktcp_io_ops {
    /* Non-blocking read. Return bytes read, 0 at end of stream, -EAGAIN when
     * nothing is ready, another negative errno on failure. With packet
     * framing each call returns exactly one frame. */
    ssize_t (*read)(void *ctx, void *buf, size_t len);
    /* Write. Return bytes written (stream framing may write part of a
     * buffer), -EAGAIN when it would block, negative errno on failure.
     * With packet framing a call carries exactly one frame. */
    ssize_t (*write)(void *ctx, const void *buf, size_t len);
    /* Optional; called once when the transport is freed. */
    void (*close)(void *ctx);
    /* A file descriptor that polls readable whenever read() may return data
     * (for a TLS library: the socket) and writable when write() may make
     * progress. Required: jktcp never spins. Hosts without an fd use a
     * jktcp_port instead. Because buffered input (TLS records) may sit
     * behind a readable fd, jktcp calls read() until it returns -EAGAIN on
     * every wake-up. */
    int poll_fd;
} jktcp_io_ops;

/* A transport over caller functions; ops is copied (ops_size = sizeof *ops:
 * fields a newer header adds read as 0 from an older caller; a size short
 * of this header's fields is -EINVAL, as every one of them is needed).
 * framing: JKTCP_FRAMING_STREAM or JKTCP_FRAMING_PACKET. */
JKTCP_API int jktcp_transport_ops(const jktcp_io_ops *ops, size_t ops_size, void *ctx,
                                  int framing, jktcp_transport **out);

/* Set JKTCP_TRANSPORT_* flags (replaces the previous set). Before handing
 * the transport to an adapter. */
JKTCP_API int jktcp_transport_set_flags(jktcp_transport *t, unsigned flags);

/* Free a transport that was never handed to an adapter. */
JKTCP_API void jktcp_transport_free(jktcp_transport *t);

/*
 * Packet port: an in-memory pipe of frames for hosts without an fd (FFI
 * users, VPN extensions, simulators). The host pushes frames that arrived
 * for jktcp and pulls frames jktcp wants sent. All port calls are
 * thread-safe. Memory is bounded: each direction holds at most
 * queue_bytes (0 = default 4 MiB; raised to fit one 65575-byte frame;
 * more than 1 GiB is -EINVAL) of frames.
 */
JKTCP_API int jktcp_port_new(size_t queue_bytes, jktcp_port **out);

/* A transport reading from / writing to the port (one per port). */
JKTCP_API int jktcp_port_transport(jktcp_port *port, jktcp_transport **out);

/* Queue one inbound frame (copied). Returns 0, -EAGAIN if the inbound queue
 * is full, -EMSGSIZE if len is 0 or larger than 65575, -EPIPE after close. */
JKTCP_API int jktcp_port_push(jktcp_port *port, const void *frame, size_t len);

/* Take one outbound frame. Returns its length, -EAGAIN if none arrived within
 * timeout_ms, -EMSGSIZE if cap is too small (the frame stays queued),
 * -EPIPE once the port is closed and drained. */
JKTCP_API ssize_t jktcp_port_pull(jktcp_port *port, void *buf, size_t cap, int timeout_ms);

/* An fd that polls readable while outbound frames wait to be pulled. */
JKTCP_API int jktcp_port_pull_fd(jktcp_port *port);

/* Close the port: the adapter's transport sees end of stream, blocked pulls
 * return -EPIPE. */
JKTCP_API void jktcp_port_close(jktcp_port *port);

/* Release the host's reference. The port is freed when its transport is too. */
JKTCP_API void jktcp_port_free(jktcp_port *port);

/* ------------------------------------------------------------------------ */
/* Fault-injecting transport (testing)                                      */
/* ------------------------------------------------------------------------ */
/*
 * jktcp_transport_faulty wraps any transport and mistreats the frames that
 * pass through it, in each direction independently: "in" is toward the
 * adapter (frames the inner transport received), "out" is from it (frames
 * the adapter sends). Decisions come from a per-direction splitmix64
 * generator seeded from cfg->seed, so a given seed and frame sequence
 * always get the same faults (timing of delayed frames aside). Print the
 * seed when a test fails.
 *
 * For every frame, in this order: the MTU limit (see mtu below); drop (nothing else happens); corrupt
 * (flip 1..corrupt_bits distinct random bits anywhere in the frame);
 * truncate (cut to a random length 1..len-1); duplicate (a second copy
 * follows right after the frame); then either reorder (the frame is held
 * back and released after reorder_frames later frames of that direction,
 * or after reorder_max_us) or delay (held for delay_us of real time);
 * last, as the frame (or copy) goes on, the direction's bottleneck link if
 * one is set (jktcp_fault_link below: rate, queue, propagation delay).
 *
 * With reorder_max_us == 0 a held frame is also released at the end of the
 * burst: inbound when the inner transport has no more frames at that recv
 * call, outbound at the adapter's next flush (the end of each output
 * pass). So reordering then only happens within a burst, and nothing is
 * ever held while the adapter waits.
 *
 * Timed releases need a wake-up: the faulty transport's poll fd is its own
 * epoll fd holding the inner transport's poll fd (registered for whatever
 * events the inner transport asks for) and a timerfd armed for the earliest
 * held frame, so the adapter (single-threaded or handle) wakes when a held
 * frame falls due and no engine change is needed. The inner poll fd must
 * therefore be pollable by epoll (not a regular file).
 *
 * Corruption: one flipped bit is always caught by the IPv4 header checksum
 * or the TCP checksum (or makes the frame unparseable, or hits an IPv6
 * field no checksum covers and that does not matter: traffic class, flow
 * label, hop limit). Two or more flipped bits can cancel out in the 16-bit
 * ones'-complement checksum (same bit position, opposite directions), as
 * on a real link; use corrupt_bits = 1 where a test needs every corruption
 * caught, and corrupt in one wrapper only when frames pass through two
 * (back-to-back adapters): two single-bit flips can cancel just the same.
 *
 * Memory is fixed at creation: held frames live in pool_frames slots of
 * slot_bytes each per direction. When the pool is full, the oldest held
 * frame is released early and the new frame is not held (counted in
 * pool_full). Frames longer than slot_bytes are never held or duplicated.
 * No allocation per frame.
 */
typedef struct jktcp_fault_dir {
    /* probabilities, 0.0 .. 1.0 */
    double drop, duplicate, reorder, corrupt, truncate, delay;
    unsigned reorder_frames; /* release a reordered frame after N later frames (0 = 1) */
    unsigned reorder_max_us; /* ... or after this long (0 = at the end of the burst) */
    unsigned corrupt_bits;   /* flip 1..k bits (0 = 1) */
    unsigned delay_us;       /* how long a delayed frame is held */
    /* A router on the way whose next hop is smaller: frames longer than mtu
     * bytes (0 = no limit) are dropped before any other fault, and with
     * mtu_icmp the sender gets an ICMP "fragmentation needed" / ICMPv6
     * "packet too big" naming mtu, from the dropped frame's destination
     * address. Without mtu_icmp the path is a black hole. */
    unsigned mtu;
    int mtu_icmp;
} jktcp_fault_dir;

/*
 * A bottleneck link after the faults of one direction (link_in / link_out
 * in jktcp_fault_config; all 0 = none, the frames go on as they leave the
 * faults). A frame the faults let through (at once, or when a reordered,
 * delayed or duplicate copy is released) enters the link's FIFO queue: if
 * the bytes not yet serialized plus the frame exceed queue_bytes it is
 * dropped (tail drop, counted in queue_drops); otherwise it leaves the
 * queue at departure = max(arrival, previous departure) + len * 8 / rate_bps
 * and is handed on at departure + delay_us. So a sender faster than the
 * rate fills the queue and sees its RTT grow by up to queue_bytes * 8 /
 * rate_bps, then loses frames, as at a router's drop-tail queue. The MTU
 * limit and the faults come first; the blackout switch also drops frames
 * as they leave the link.
 *
 * rate_bps == 0 with delay_us set is a pure delay line (no serialization,
 * no queue): every frame arrives delay_us later, in order. It holds at most
 * about queue_bytes of frames (frames beyond are dropped and counted in
 * ring_full), so give a fast path without a rate a larger queue_bytes.
 *
 * The link keeps its frames in a byte ring per direction, allocated at
 * creation and sized from these settings (twice queue_bytes + rate x delay,
 * for the record headers and small frames); it does not use pool_frames'
 * slots. -EINVAL for delay_us over 10 s, rate_bps over 1 Tbit/s, or
 * queue_bytes, or queue_bytes + rate x delay, over 256 MiB. The release
 * is timed by the same timerfd as delayed frames: the adapter wakes when
 * the next frame arrives at the far end, and not otherwise.
 */
typedef struct jktcp_fault_link {
    uint64_t rate_bps;    /* bottleneck rate in bits/s (0 = no bottleneck) */
    unsigned delay_us;    /* one-way propagation delay added to every frame (<= 10 s) */
    unsigned queue_bytes; /* the bottleneck's queue in bytes, tail drop (0 = 256 KiB) */
} jktcp_fault_link;

typedef struct jktcp_fault_config {
    jktcp_fault_dir in;   /* frames received: inner transport -> adapter */
    jktcp_fault_dir out;  /* frames sent: adapter -> inner transport */
    uint64_t seed;        /* PRNG seed (0 is a valid seed too) */
    unsigned pool_frames; /* held-frame slots per direction (0 = 32) */
    unsigned slot_bytes;  /* bytes per slot (0 = 65575, the largest frame) */
    /* Appended (a caller built against an older header passes a smaller
     * cfg_size and gets no link): the bottleneck after each direction's
     * faults, see jktcp_fault_link. */
    jktcp_fault_link link_in, link_out;
} jktcp_fault_config;

typedef struct jktcp_fault_dir_stats {
    uint64_t frames;     /* frames that entered the wrapper in this direction */
    uint64_t passed;     /* frames (and copies) handed on: to the adapter / inner transport */
    uint64_t dropped;    /* dropped by the drop probability */
    uint64_t blackout;   /* dropped by the blackout switch (also held frames) */
    uint64_t duplicated, reordered, corrupted, truncated, delayed;
    uint64_t pool_full;  /* a frame could not be held (pool full or frame too long) */
    uint64_t too_big;    /* dropped as longer than mtu (an ICMP went back if mtu_icmp) */
} jktcp_fault_dir_stats;

/* A direction's bottleneck link (all 0 without one). */
typedef struct jktcp_fault_link_stats {
    uint64_t frames;          /* frames that entered the link (not dropped at its queue) */
    uint64_t queue_drops;     /* tail drops: the queue was full */
    uint64_t ring_full;       /* dropped: no room in the link's memory (see jktcp_fault_link) */
    uint64_t max_queue_bytes; /* the queue's high-water mark, the arriving frame included */
    uint64_t queue_us_total;  /* sum over the frames of queueing + serialization time:
                                 / frames = the mean time a frame spent in the queue */
} jktcp_fault_link_stats;

typedef struct jktcp_fault_stats {
    jktcp_fault_dir_stats in, out;
    jktcp_fault_link_stats link_in, link_out; /* appended: a smaller size omits them */
} jktcp_fault_stats;

/*
 * Wrap inner in a fault-injecting transport. Takes ownership of inner (it
 * is freed with the wrapper, and on failure). cfg is copied (cfg_size =
 * sizeof *cfg; fields beyond it read as 0); NULL means no faults. The wrapper has inner's framing; jktcp_transport_set_flags on it
 * is passed on to inner. Returns 0, -EINVAL (probability outside 0..1,
 * slot_bytes too small, a link setting out of range), -ENOMEM, or -errno
 * from epoll/timerfd setup.
 * The wrapper pointer stays usable for the two calls below until the
 * adapter that owns it is freed.
 */
JKTCP_API int jktcp_transport_faulty(jktcp_transport *inner, const jktcp_fault_config *cfg,
                                     size_t cfg_size, jktcp_transport **out);

/* Drop every frame both ways (including held frames as they fall due)
 * while on != 0. Callable from any thread at any time. 0 or -EINVAL (not a
 * faulty transport). */
JKTCP_API int jktcp_transport_fault_blackout(jktcp_transport *t, int on);

/* Counters so far (size = sizeof *out). Callable from any thread; each
 * counter is read atomically (the set is not a snapshot). 0 or -EINVAL. */
JKTCP_API int jktcp_transport_fault_stats(jktcp_transport *t, jktcp_fault_stats *out,
                                          size_t size);

/* ------------------------------------------------------------------------ */
/* Adapter                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Create an adapter. local_ip and peer_ip are text, both IPv4
 * ("198.18.0.2") or both IPv6 ("fd00::2"). The adapter takes ownership of
 * the transport (also on failure). Returns 0, -ENOMEM, or -EINVAL for: text
 * that is not an address, mixed families, local == peer, and any address
 * that cannot be one end of a unicast TCP connection (unspecified 0.0.0.0
 * / ::, multicast, IPv4 broadcast 255.255.255.255, IPv4-mapped IPv6
 * ::ffff:a.b.c.d: use the IPv4 form).
 */
JKTCP_API int jktcp_adapter_new(jktcp_transport *transport, const char *local_ip,
                                const char *peer_ip, jktcp_adapter **out);

/* Abort every connection (RST), free everything, including the transport. */
JKTCP_API void jktcp_adapter_free(jktcp_adapter *a);

/* Largest IP frame jktcp sends (default 1500; 576..65535 for IPv4,
 * 1280..65535 for IPv6). Segments are sized to fit it; set it to a USB
 * forwarder's limit (e.g. 8192) to cap frames. Applies to new connections. */
JKTCP_API int jktcp_adapter_set_mtu(jktcp_adapter *a, unsigned mtu);

/* Cap on the MSS advertised and used (0 = derived from the MTU only). */
JKTCP_API int jktcp_adapter_set_mss(jktcp_adapter *a, unsigned mss);

/* Adapter options (jktcp_adapter_set_option); apply to connections created
 * afterwards unless noted. */
typedef enum jktcp_option {
    JKTCP_OPT_SNDBUF = 1,         /* send buffer bytes, default 4 MiB */
    JKTCP_OPT_RCVBUF = 2,             /* receive buffer = max window, default 4 MiB */
    JKTCP_OPT_NODELAY = 3,            /* 1 = Nagle off (default 1) */
    JKTCP_OPT_DELACK_US = 4,          /* delayed-ACK limit in us, default 1000; 0 = ACK at once */
    JKTCP_OPT_CONGESTION = 5,         /* congestion controller, a jktcp_cc value (default
                                         JKTCP_CC_BBR; earlier versions took any non-zero
                                         value as NewReno, now only 1; outside 0..3 -EINVAL) */
    JKTCP_OPT_TIMEWAIT_MS = 6,        /* TIME_WAIT length, default 1000 */
    JKTCP_OPT_KEEPALIVE_MS = 7,       /* idle time before keepalive probes, 0 = off (default) */
    JKTCP_OPT_RTO_MIN_MS = 8,         /* default 200 */
    JKTCP_OPT_RTO_MAX_MS = 9,         /* default 60000 */
    JKTCP_OPT_RTO_INIT_MS = 10,        /* initial RTO (SYN), default 1000 */
    JKTCP_OPT_MAX_RETRIES = 11,        /* retransmissions before -ETIMEDOUT, default 10 */
    JKTCP_OPT_SACK = 12,               /* 1 = offer/use SACK (default) */
    JKTCP_OPT_TIMESTAMPS = 13,         /* 1 = offer/use timestamps (default) */
    JKTCP_OPT_MAX_CONNS = 14,          /* connections per adapter, default 4096 */
    JKTCP_OPT_OOO_RANGES = 15,         /* out-of-order ranges kept, default 64 (max 128) */
    JKTCP_OPT_TAIL_PROBE = 16,         /* 1 = RACK-TLP time-based loss detection (RFC 8985):
                                     tail-loss probes and the reordering timer, default 1 */
    JKTCP_OPT_PMTU_PROBE = 17,         /* path MTU probing (RFC 4821 / 8899) for paths that
                                     drop ICMP: 0 = off (default; ICMP "packet too big"
                                     still works), 1 = after a black hole (two timeouts in
                                     a row: fall to 1200 / 1280 bytes, then probe up),
                                     2 = always (start there, probe up to the MTU) */
    JKTCP_OPT_BUSY_POLL_US = 18,       /* threaded handle: after frames moved, its I/O thread
                                     polls the transport and its command queue for up to
                                     this many microseconds before it sleeps (default 50;
                                     0 = off; at most 1000). The spin adapts: it grows
                                     while answers come within the limit and shrinks when
                                     they do not, so it costs about as long as the answers
                                     take. Trades CPU for latency, as Linux's SO_BUSY_POLL:
                                     64-byte ping-pong p50 61-90 -> 26-41 us here; never
                                     spins while idle. A blocking jktcp_handle_connect
                                     also polls for the handshake up to twice this long
                                     before it sleeps */
} jktcp_option;

/* Congestion controllers (JKTCP_OPT_CONGESTION; docs/design.md, "Congestion
 * control"). A connection starts with its adapter's; jktcp_conn_set_congestion
 * and jktcp_stream_set_congestion switch it. */
typedef enum jktcp_cc {
    JKTCP_CC_OFF = 0,     /* no window but the peer's (a reliable pipe, tests) */
    JKTCP_CC_NEWRENO = 1, /* RFC 5681 / 6582 with SACK recovery (RFC 6675) */
    JKTCP_CC_CUBIC = 2,   /* RFC 9438, the Linux default */
    JKTCP_CC_BBR = 3,     /* model-based (BBRv1-style): delivery rate and min RTT,
                             loss-tolerant */
} jktcp_cc;

JKTCP_API int jktcp_adapter_set_option(jktcp_adapter *a, jktcp_option opt, long value);
JKTCP_API int jktcp_adapter_get_option(jktcp_adapter *a, jktcp_option opt, long *value);

/*
 * Replace the clock (microseconds, monotonic) — for simulations and tests.
 * With a custom clock the adapter never sleeps: poll processes what is
 * ready and returns.
 */
JKTCP_API int jktcp_adapter_set_clock(jktcp_adapter *a, uint64_t (*now_us)(void *ctx), void *ctx);

/* Write every frame in and out to a pcap file (LINKTYPE_RAW, Wireshark
 * opens it). NULL stops capturing. May be called at any time. */
JKTCP_API int jktcp_adapter_pcap(jktcp_adapter *a, const char *path);

/*
 * Drive the adapter once: wait up to timeout_ms for input or the next timer,
 * then process all ready input, due timers and pending output.
 * Returns 0, or a negative errno once the transport has failed
 * (-EPIPE at end of stream, -EPROTO if a stream transport lost framing,
 * or the transport's own error).
 */
JKTCP_API int jktcp_adapter_poll(jktcp_adapter *a, int timeout_ms);

/* Drive the adapter until every closed connection has delivered its data
 * and finished closing (or timeout_ms runs out: -EAGAIN). */
JKTCP_API int jktcp_adapter_flush(jktcp_adapter *a, int timeout_ms);

/* The fd the adapter waits on (poll it readable, then call
 * jktcp_adapter_poll(a, 0)) and the time until its next timer, in ms
 * (-1 = none). For embedding in an event loop. */
JKTCP_API int jktcp_adapter_fd(jktcp_adapter *a);
JKTCP_API int jktcp_adapter_timeout(jktcp_adapter *a);

/* Adapter counters. Grows at the end only (see the size rule above). */
typedef struct jktcp_stats {
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out;
    uint64_t drop_short;      /* truncated headers */
    uint64_t drop_version;    /* not IPv4/IPv6, or the other family */
    uint64_t drop_length;     /* lengths inconsistent with the frame */
    uint64_t drop_checksum;   /* IPv4 header or TCP checksum wrong */
    uint64_t drop_fragment;   /* IP fragments thrown away: malformed, overlapping (RFC 5722),
                                 or of datagrams evicted or not complete within 30 s
                                 (IPv4) / 60 s (IPv6); see frags_reassembled */
    uint64_t drop_options;    /* a bad TCP data offset, a source-routed packet, an
                                 unknown IPv6 option that says discard (RFC 8200
                                 §4.2); malformed TCP options are skipped, not dropped */
    uint64_t drop_address;    /* not from our peer or not to us */
    uint64_t ignored_proto;   /* valid frames that are not TCP (UDP, ICMP that is no
                                 error about TCP) */
    uint64_t drop_no_conn;    /* TCP for no connection (answered with RST) */
    uint64_t drop_invalid;    /* out-of-window / unacceptable segments */
    uint64_t rst_sent;
    uint64_t retransmits;
    uint64_t conns_active;
    uint64_t conns_opened;
    uint64_t io_wakeups;      /* threaded handle: I/O thread loop iterations */
    uint64_t acks_limited;    /* ACKs not sent: a bare segment (no data, no FIN) out of
                                 window, failing PAWS or challenged (RST/SYN in window,
                                 an impossible ACK) is answered at most once per 500 ms
                                 per connection (RFC 5961 §7; stops ACK loops) */
    uint64_t icmp_in;         /* ICMP errors acted on (unreachable, packet too big) */
    uint64_t icmp_ignored;    /* ICMP errors about no connection of ours, or quoting a
                                 sequence number outside what is in flight (RFC 5927) */
    uint64_t pmtu_probes;     /* path MTU probes sent (JKTCP_OPT_PMTU_PROBE) */
    uint64_t pmtu_probe_fails; /* ... and lost (the path does not carry that size) */
    uint64_t pmtu_blackholes; /* falls to the base MTU after timeouts in a row */
    uint64_t frags_reassembled; /* IP datagrams put together from fragments (at most 4
                                   at once, 64 KiB each; the oldest gives way) */
    uint64_t io_sleeps;       /* threaded handle: times the I/O thread called poll(2) to
                                 sleep (it returns at once when work is already
                                 waiting); a busy poll that found work is not one */
    uint64_t io_caller_wakes; /* threaded handle: wake-ups (futex calls) the I/O thread
                                 made for callers blocked on a stream, for its events
                                 (data, space, state; not failures or handle close):
                                 at most two per stream per step of the loop */
} jktcp_stats;

/* Copy the counters (size = sizeof *out). */
JKTCP_API int jktcp_adapter_stats(jktcp_adapter *a, jktcp_stats *out, size_t size);

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

typedef enum jktcp_state {
    JKTCP_CLOSED = 0,
    JKTCP_LISTEN = 1,
    JKTCP_SYN_SENT = 2,
    JKTCP_SYN_RCVD = 3,
    JKTCP_ESTABLISHED = 4,
    JKTCP_FIN_WAIT_1 = 5,
    JKTCP_FIN_WAIT_2 = 6,
    JKTCP_CLOSING = 7,
    JKTCP_TIME_WAIT = 8,
    JKTCP_CLOSE_WAIT = 9,
    JKTCP_LAST_ACK = 10,
} jktcp_state;

JKTCP_API const char *jktcp_state_name(int state);

/*
 * The single-threaded API below (jktcp_conn_*, jktcp_adapter_listen/accept)
 * is pointer-based: it runs on the one thread that drives the adapter, so
 * a connection pointer is valid from connect/accept until its
 * jktcp_conn_close / jktcp_conn_abort, and using it afterwards is
 * undefined (like a freed FILE *). Its error codes are those of the
 * threaded API: -EINVAL for bad arguments (port outside 1..65535), -ENETDOWN
 * once the transport failed, -ECONNRESET / -ETIMEDOUT / -ECONNREFUSED from
 * TCP, -EAGAIN when a timeout ran out.
 */

/*
 * Open a connection to the peer's port (1..65535) from a random free
 * ephemeral port. Blocks (driving the adapter) until established, refused,
 * or timeout_ms. With timeout_ms == 0 returns -EINPROGRESS at once with *out
 * set; poll the adapter and check jktcp_conn_info() state /
 * jktcp_conn_error(). Returns 0, -ECONNREFUSED (RST), -ETIMEDOUT (no answer
 * within timeout_ms or the SYN retries; the connection is then freed),
 * -EINVAL, -EMFILE, -ENETDOWN (the transport failed).
 */
JKTCP_API int jktcp_adapter_connect(jktcp_adapter *a, int port, int timeout_ms, jktcp_conn **out);
/* The same call under its first name (kept for existing callers). */
JKTCP_API int jktcp_conn_connect(jktcp_adapter *a, int port, int timeout_ms, jktcp_conn **out);

/*
 * Read up to len bytes. Returns bytes read (> 0), 0 once the peer closed
 * and every byte was read, -EAGAIN when nothing arrived within timeout_ms,
 * -ECONNRESET (peer reset), -ETIMEDOUT (retransmissions exhausted),
 * -ENOTCONN (closed without an error), -ENETDOWN (the transport failed:
 * jktcp_adapter_poll returns the transport's own error). While the
 * connection is still being set up a read waits like any other (-EAGAIN
 * with timeout 0), as on a connecting Linux socket.
 */
JKTCP_API ssize_t jktcp_conn_read(jktcp_conn *c, void *buf, size_t len, int timeout_ms);

/*
 * Queue bytes for sending. Blocks until all of buf is queued or timeout_ms
 * runs out; returns the bytes queued (> 0) or -EAGAIN if none could be.
 * -EPIPE after shutdown/close of the write side, -ECONNRESET, -ETIMEDOUT,
 * -ENETDOWN.
 */
JKTCP_API ssize_t jktcp_conn_write(jktcp_conn *c, const void *buf, size_t len, int timeout_ms);

/* Send FIN after every queued byte; reading goes on (half-close). */
JKTCP_API int jktcp_conn_shutdown(jktcp_conn *c);

/* Graceful close: queued data is still delivered, then FIN; the handle is
 * released at once and the adapter finishes the close on later polls
 * (see jktcp_adapter_flush). Unread received data is discarded; if any was
 * pending the peer gets a RST, as from a kernel socket. */
JKTCP_API int jktcp_conn_close(jktcp_conn *c);

/* Send RST, drop everything, release the handle. */
JKTCP_API int jktcp_conn_abort(jktcp_conn *c);

/* The connection's pending error (0 if none), e.g. -ECONNREFUSED. */
JKTCP_API int jktcp_conn_error(jktcp_conn *c);

/* One connection's state and counters. Grows at the end only. */
typedef struct jktcp_info {
    int state;                 /* jktcp_state */
    uint16_t local_port, remote_port;
    uint64_t bytes_sent;       /* payload bytes acknowledged by the peer */
    uint64_t bytes_received;   /* payload bytes delivered in order */
    uint64_t bytes_queued;     /* in the send buffer, not yet acknowledged */
    uint64_t bytes_readable;   /* in the receive buffer, not yet read */
    uint32_t srtt_us, rttvar_us, rto_us;
    uint32_t retransmits;      /* segments sent again, for any reason */
    uint32_t timeouts;         /* retransmission timeouts (RTO) that fired */
    uint32_t tail_probes;      /* tail-loss probes sent */
    uint32_t recoveries;       /* fast recoveries entered (SACK/dupACK loss detection) */
    uint32_t mss;              /* effective send MSS */
    uint32_t cwnd, ssthresh;   /* bytes */
    uint32_t snd_wnd, rcv_wnd; /* bytes, after scaling */
    uint8_t snd_wscale, rcv_wscale;
    uint8_t sack, timestamps;  /* negotiated */
    uint32_t pmtu;             /* path MTU in use: the adapter's MTU, lowered by ICMP
                                  "packet too big" (never below 552 / 1280) */
    int32_t soft_error;        /* the last ICMP error (e.g. -EHOSTUNREACH) while
                                  connected: retries go on; 0 = none. If they run
                                  out, this is the connection's error, not -ETIMEDOUT */
    uint32_t congestion;       /* jktcp_cc: the controller this connection uses */
    uint32_t dsacks;           /* D-SACKs from the peer: data that arrived twice (a
                                  needless resend, or a copy the network made) */
    uint64_t delivery_rate;    /* bytes/s: JKTCP_CC_BBR's bottleneck estimate (0 otherwise) */
    uint64_t pacing_rate;      /* bytes/s the controller paces at (0 = not paced) */
    uint32_t spurious;         /* resent segments a D-SACK showed needless */
    uint32_t undos;            /* window cuts undone: every resend of the episode was
                                  needless (D-SACK), or a timeout was (timestamps) */
    uint32_t spurious_rtos;    /* timeouts found needless: the ACK after one echoed a
                                  timestamp from before it (RFC 3522) */
} jktcp_info;

/* Copy the connection's info (size = sizeof *out). */
JKTCP_API int jktcp_conn_info(jktcp_conn *c, jktcp_info *out, size_t size);

/* This connection's congestion controller (a jktcp_cc), at any time: the
 * new one takes over the window in use. 0, -EINVAL (not a jktcp_cc, or c
 * NULL), -EBUSY (a handle owns the adapter: use jktcp_stream_set_congestion),
 * -ENOTCONN (closed). */
JKTCP_API int jktcp_conn_set_congestion(jktcp_conn *c, int cc);

/* ------------------------------------------------------------------------ */
/* Listening                                                                */
/* ------------------------------------------------------------------------ */

/* Accept connections the peer opens to local port (1..65535). backlog
 * bounds both the half-open and the not-yet-accepted queue (<= 0: 128);
 * SYNs beyond it are answered with RST. -EADDRINUSE if the port already
 * listens, -ENETDOWN once the transport failed. */
JKTCP_API int jktcp_adapter_listen(jktcp_adapter *a, int port, int backlog,
                                   jktcp_conn_listener **out);

/* Wait (driving the adapter) for an established connection. -EAGAIN on timeout. */
JKTCP_API int jktcp_conn_listener_accept(jktcp_conn_listener *l, int timeout_ms, jktcp_conn **out);

/* Stop listening; connections not yet accepted are reset. */
JKTCP_API void jktcp_conn_listener_close(jktcp_conn_listener *l);

/* The same two calls under their first names (kept for existing callers;
 * the names above say what the first argument is, as everywhere else). */
JKTCP_API int jktcp_adapter_accept(jktcp_conn_listener *l, int timeout_ms, jktcp_conn **out);
JKTCP_API void jktcp_adapter_unlisten(jktcp_conn_listener *l);

/* ------------------------------------------------------------------------ */
/* Threaded handle                                                          */
/* ------------------------------------------------------------------------ */
/*
 * jktcp_handle_start moves an adapter onto a new background I/O thread.
 * From then on the adapter is driven only by that thread (the adapter and
 * conn functions above return -EBUSY for it) and callers use handles,
 * streams and listeners, from any number of threads at once:
 *
 *   caller --write--> stream send ring --> I/O thread --> segments --> transport
 *   caller <--read--- stream recv ring <-- I/O thread <-- segments <-- transport
 *   caller --commands (connect, listen, close, ...)--> wait-free queue --> I/O thread
 *
 * Data never passes through a lock shared with the I/O thread: each stream
 * has a single-producer/single-consumer send ring and receive ring. The
 * receive ring's free space is the advertised window and the send ring's
 * size is the send buffer, so a slow reader closes the window and a slow
 * peer blocks writers: memory stays bounded.
 *
 * Lifetime rules (docs/api.md and docs/design.md give the same list):
 *
 *  1. Handles, streams and listeners are 64-bit ids, like file descriptors
 *     that are never reused: an id names one object for the life of the
 *     process and id 0 names none. An id is plain data: copy it, pass it
 *     to other threads, store it; no reference counting.
 *  2. Every call resolves its id first. An id that was closed, never
 *     existed, or names an object of another kind gives -EBADF; the call
 *     touches no memory of any other object, so a stale or forged id is
 *     harmless.
 *  3. Close each id once. The first jktcp_stream_close / _abort /
 *     jktcp_listener_close / jktcp_handle_close returns 0 and ends the
 *     id; every later call with it, close included, returns -EBADF. Close
 *     may run on any thread while other threads are inside calls on the
 *     same id: those calls return -EBADF at once (a blocked one wakes
 *     within milliseconds), and the object's memory is freed only after
 *     the last of them has left (RCU, liburcu-bp).
 *  4. A handle may be shared by any number of threads without locking; one
 *     of them (the binding's owner object) closes it once. jktcp_handle_close
 *     is safe twice (-EBADF) and concurrently with any other call: calls on
 *     the handle then return -EBADF or -ESHUTDOWN.
 *  5. Streams and listeners outlive their handle's I/O thread: after
 *     jktcp_handle_close their calls return -ESHUTDOWN until they are
 *     closed (which returns 0 and frees the small record that remains).
 *  6. When the transport fails (end of stream, read/write error) every
 *     stream fails with -ENETDOWN, a code no TCP event produces, and
 *     connect/listen return -ENETDOWN; jktcp_handle_error gives the
 *     transport's own error. A peer's RST stays -ECONNRESET, exhausted
 *     retransmissions -ETIMEDOUT.
 *  7. Readiness fds (jktcp_stream_poll_fd, jktcp_listener_poll_fd) belong
 *     to the object: created on first request, signalled (readable) from
 *     the object's close or the handle's stop onward, and closed when its
 *     memory is freed, soon after close. Remove them from your poll set
 *     before closing the object; never close them yourself.
 *  8. Blocking calls can be interrupted: when a signal handler runs in the
 *     waiting thread the call returns -EINTR (or the bytes already moved),
 *     as recv(2) does; with an infinite timeout a handler installed with
 *     SA_RESTART resumes the wait instead. Bindings run their signal
 *     handlers and call again with the remaining timeout (PEP 475). A
 *     call sleeps in several waits (it wakes for news, re-checks, sleeps
 *     again); a signal landing between two of them runs its handler but
 *     does not end the call, as a signal between two system calls would
 *     not: the next one does. A blocking connect's first spin for the
 *     handshake (up to twice JKTCP_OPT_BUSY_POLL_US) is such a gap too.
 *  9. The single-threaded adapter API stays pointer-based (see above).
 */

/* Start the I/O thread. The handle owns the adapter from now on (it is
 * freed by jktcp_handle_close). Returns 0, -EINVAL, -ENOMEM, -EBUSY (the
 * adapter already has a handle). */
JKTCP_API int jktcp_handle_start(jktcp_adapter *a, jktcp_handle *out);

/*
 * Stop the I/O thread and free the adapter. Queued data of closed streams
 * is given up to linger_ms to be delivered (< 0: default 1000 ms, 0: none);
 * then every connection is reset, every blocked call returns -ESHUTDOWN,
 * and later calls on the handle's streams and listeners return -ESHUTDOWN
 * until they are closed. Returns 0, or -EBADF if the handle was already
 * closed (or is being closed by another thread) or never existed.
 */
JKTCP_API int jktcp_handle_close(jktcp_handle h, int linger_ms);

/* The transport's own error once it failed (-EPIPE: end of stream,
 * -EPROTO: a stream transport lost framing, or the errno of the failed
 * read/write), 0 while it works, -EBADF for a closed or unknown handle. */
JKTCP_API int jktcp_handle_error(jktcp_handle h);

/*
 * Open a stream to the peer's port (1..65535).
 *  - timeout_ms > 0: wait up to that long; < 0: until the SYN retries
 *    decide. Returns 0 with *out set, or -ECONNREFUSED, -ETIMEDOUT (the
 *    attempt is abandoned), -EINTR (a signal handler ran: the attempt is
 *    abandoned, call again), -ENETDOWN, -EMFILE, -EADDRNOTAVAIL,
 *    -ESHUTDOWN (the handle is stopping), -EBADF (handle closed or
 *    unknown), -EINVAL. On failure *out is {0} and there is nothing to
 *    close. The calling thread spins for up to twice
 *    JKTCP_OPT_BUSY_POLL_US (100 us by default) before it sleeps: a near
 *    peer's handshake ends within it (one thread per handle at a time;
 *    others sleep at once).
 *  - timeout_ms == 0 (non-blocking): returns -EINPROGRESS with *out set to
 *    a stream that is connecting, without waiting for the network (only
 *    for the I/O thread to send the SYN: errors found there, -EMFILE,
 *    -EADDRNOTAVAIL, -ENETDOWN, -ESHUTDOWN, come back from this call).
 *    Its JKTCP_POLL_WRITE fd becomes readable when the handshake completes
 *    or fails; jktcp_stream_error then says which (like SO_ERROR), and
 *    read and write return that error (-ECONNREFUSED, -ETIMEDOUT). Close
 *    it like any stream.
 */
JKTCP_API int jktcp_handle_connect(jktcp_handle h, int port, int timeout_ms, jktcp_stream *out);

/* Listen on a local port (1..65535); backlog as jktcp_adapter_listen.
 * 0, -EADDRINUSE, -ENETDOWN, -ESHUTDOWN, -EBADF, -EINVAL, -ENOMEM. */
JKTCP_API int jktcp_handle_listen(jktcp_handle h, int port, int backlog, jktcp_listener *out);

/* Write every frame in and out to a pcap file (NULL stops). */
JKTCP_API int jktcp_handle_pcap(jktcp_handle h, const char *path);

/* Adapter counters, plus io_wakeups: I/O thread loop iterations
 * (size = sizeof *out). -EBADF, -ESHUTDOWN. */
JKTCP_API int jktcp_handle_stats(jktcp_handle h, jktcp_stats *out, size_t size);

/* Wait for an accepted stream: 0 with *out set, -EAGAIN (nothing within
 * timeout_ms), -EINTR, -EBADF (closed, also while waiting), -ESHUTDOWN. */
JKTCP_API int jktcp_listener_accept(jktcp_listener l, int timeout_ms, jktcp_stream *out);

/* Stop listening: blocked accepts return -EBADF, connections not yet
 * accepted are reset. 0, or -EBADF if already closed / unknown. */
JKTCP_API int jktcp_listener_close(jktcp_listener l);

/* An fd that polls readable (POLLIN) while jktcp_listener_accept would not
 * block: a connection is waiting, or the listener or its handle is gone.
 * Owned by the listener (rule 7). -EBADF, -ESHUTDOWN, or -errno. */
JKTCP_API int jktcp_listener_poll_fd(jktcp_listener l);

/* Read: bytes (> 0), 0 at end of stream, -EAGAIN (nothing within
 * timeout_ms), -EINTR, -ECONNRESET, -ETIMEDOUT, -ECONNREFUSED (a
 * non-blocking connect failed), -ENETDOWN, -EBADF (stream closed),
 * -ESHUTDOWN (handle closed). Data that arrived before an error is read
 * first. Concurrent readers are serialised (and each keeps its own
 * timeout while it waits for its turn). */
JKTCP_API ssize_t jktcp_stream_read(jktcp_stream s, void *buf, size_t len, int timeout_ms);

/* Write: bytes accepted into the send buffer (> 0; fewer than len only if
 * timeout_ms ran out or a signal handler ran), -EAGAIN, -EINTR, -EPIPE
 * (after shutdown), -ECONNRESET, -ETIMEDOUT, -ECONNREFUSED (a
 * non-blocking connect failed), -ENETDOWN, -EBADF, -ESHUTDOWN. With len 0:
 * 0, or the code a write would fail with. On a stream still connecting the bytes wait for the
 * handshake (timeout 0: -EAGAIN). Concurrent writers are serialised: one
 * call's bytes are never interleaved with another's unless it returns
 * short. */
JKTCP_API ssize_t jktcp_stream_write(jktcp_stream s, const void *buf, size_t len, int timeout_ms);

/* Write all of buf, waiting as needed (timeout applies to the whole call).
 * Returns len, or a negative errno as jktcp_stream_write (some bytes may
 * have been queued). */
JKTCP_API ssize_t jktcp_stream_write_all(jktcp_stream s, const void *buf, size_t len,
                                         int timeout_ms);

/* FIN after all queued data (it waits for writers inside a call to finish);
 * reading goes on. 0, -ENOTCONN, -EINTR, -EBADF, -ESHUTDOWN. */
JKTCP_API int jktcp_stream_shutdown(jktcp_stream s);

/* Graceful close: queued data is still delivered, then FIN (RST if unread
 * data was pending, as a kernel socket does). Ends the id (rule 3): 0 the
 * first time, -EBADF after. Threads blocked on the stream return -EBADF. */
JKTCP_API int jktcp_stream_close(jktcp_stream s);

/* Reset the connection and end the id (as jktcp_stream_close). */
JKTCP_API int jktcp_stream_abort(jktcp_stream s);

/* The stream's error, like SO_ERROR without clearing it: 0 while it is
 * connected and healthy (end of stream is not an error), -EINPROGRESS
 * while a non-blocking connect is still under way, otherwise the error
 * its calls would return (-ECONNREFUSED, -ECONNRESET, -ETIMEDOUT,
 * -ENETDOWN, -ESHUTDOWN). -EBADF for a closed or unknown stream. */
JKTCP_API int jktcp_stream_error(jktcp_stream s);

/* Connection info (size = sizeof *out). -ENOTCONN if it has none yet. */
JKTCP_API int jktcp_stream_info(jktcp_stream s, jktcp_info *out, size_t size);

/* This stream's congestion controller (a jktcp_cc), from any thread at any
 * time (jktcp_conn_set_congestion). 0, -EINVAL (not a jktcp_cc), -EBADF,
 * -ENOTCONN (no connection yet, or closed), or the stream's error once it
 * failed or its handle is stopping (-ESHUTDOWN, ...), as jktcp_stream_info. */
JKTCP_API int jktcp_stream_set_congestion(jktcp_stream s, int cc);

/* Readiness, for event loops (poll, epoll, libuv, asyncio). */
enum jktcp_poll_event {
    /* read would not block: data, end of stream, an error, or closed */
    JKTCP_POLL_READ = 1,
    /* write would not block: connected with at least min(64 KiB, SNDBUF/4)
     * free in the send buffer, or shut down for writing, an error, or
     * closed. A non-blocking connect's result shows up here. */
    JKTCP_POLL_WRITE = 2,
};

/*
 * An fd that polls readable (POLLIN / EPOLLIN, level-triggered) while the
 * JKTCP_POLL_READ or JKTCP_POLL_WRITE condition holds. One fd per
 * condition: wait for POLLIN on both to wait for either. The same fd is
 * returned on every call. Owned by the stream (rule 7). Returns the fd,
 * -EINVAL (events not exactly one of the two), -EBADF, -ESHUTDOWN, -errno.
 */
JKTCP_API int jktcp_stream_poll_fd(jktcp_stream s, int events);

#ifdef __cplusplus
}
#endif
#endif /* JKTCP_H */
