/* SPDX-License-Identifier: MIT */
/*
 * The differential suite: one script, two systems. A scenario plays the
 * peer of a TCP connection with exact IPv4/IPv6 segments and drives the
 * other end's application through a small socket-like API; the same
 * scenario runs against the Linux kernel (its TCP behind a TUN device in a
 * private namespace) and against jktcp (a handle over a packet-framed
 * socketpair). Each run writes normalised outcome lines "key: value" (what
 * came back, what the application saw), never raw sequence numbers, ISNs,
 * window values or timer values; the runner compares the two lists:
 *   agree                 identical;
 *   differ (by design)    only keys the scenario lists in may_differ, for
 *                         the reason it gives (docs/design.md lists each);
 *   differ                anything else: a bug, or an undocumented choice.
 * Every segment either system sends is checked against invariants that
 * hold for any TCP (tests/diff/diff_peer.c): checksums and lengths, options
 * only where negotiated, never beyond the peer's MSS or window.
 *
 * Addresses: the system under test is 198.18.0.1 / fd00::1, the peer (the
 * scenario) 198.18.0.2 / fd00::2 — inside the suite's own namespace.
 */
#ifndef JKT_DIFF_H
#define JKT_DIFF_H

#include "jktcp.h"
#include "packet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dx;
typedef void (*dx_fn)(struct dx *x);

struct dx_scenario {
    const char *group, *name;
    dx_fn fn;
    const char *tags;       /* features it depends on ("sack", "ts"): turning one off
                               in jktcp must make the scenario differ */
    const char *may_differ; /* outcome keys allowed to differ (comma separated) */
    const char *why;        /* and why (by design) */
};

void dx_register(const struct dx_scenario *s);

/* Define a scenario: DX(group, name, tags, may_differ, why) { ... } */
#define DX(group_, name_, tags_, may_, why_)                                                     \
    static void dx_fn_##group_##__##name_(struct dx *x);                                         \
    __attribute__((constructor)) static void dx_reg_##group_##__##name_(void)                    \
    {                                                                                            \
        static const struct dx_scenario s = {#group_, #name_, dx_fn_##group_##__##name_, tags_,  \
                                             may_, why_};                                        \
        dx_register(&s);                                                                         \
    }                                                                                            \
    static void dx_fn_##group_##__##name_(struct dx *x)

/* ---------------------------------------------------------------------- */
/* The application of the system under test (socket-like)                  */
/* ---------------------------------------------------------------------- */

/* Options, set before dx_listen / dx_connect. */
enum dx_option {
    DX_O_RCVBUF = 1,    /* bytes of receive buffer (the kernel: SO_RCVBUF, which it doubles) */
    DX_O_KEEPALIVE = 2, /* idle seconds before keepalive probes (kernel: KEEPIDLE=INTVL) */
    DX_O_NAGLE = 3,     /* 1: Nagle on (default off, jktcp's default) */
    DX_O_RETRIES = 4,   /* data retransmissions before giving up (kernel: TCP_USER_TIMEOUT
                           from the same back-off) */
    DX_O_SYN_RETRIES = 5,
    DX_O_LINGER0 = 6,   /* close() sends RST (SO_LINGER 0 / abort) */
};
void dx_option(struct dx *x, int opt, long value);

void dx_listen(struct dx *x, int backlog);          /* on x->sut_port */
int dx_accept(struct dx *x, int timeout_ms);        /* 0, -EAGAIN, -errno */
void dx_connect(struct dx *x);                      /* to the peer's port, non-blocking */
int dx_connect_result(struct dx *x, int timeout_ms); /* 0, -EINPROGRESS (timeout), -errno */
long dx_write(struct dx *x, const void *buf, size_t len); /* queued bytes or -errno */
/* Bytes, 0 at end of stream, -EAGAIN when nothing came within timeout_ms,
 * or the connection's error (-ECONNRESET, -ETIMEDOUT, ...). */
long dx_read(struct dx *x, void *buf, size_t len, int timeout_ms);
int dx_shutdown(struct dx *x);
int dx_close(struct dx *x);

/* ---------------------------------------------------------------------- */
/* The peer (the scenario's own segments)                                  */
/* ---------------------------------------------------------------------- */

/* Options of a segment the peer sends. Zero = nothing special: a non-SYN
 * segment carries a timestamp once negotiated, and the peer's window. */
struct dx_opt {
    int mss;        /* SYN: MSS option (0 = none) */
    int ws;         /* SYN: window scale shift, -1 = none (0 = shift 0 offered) */
    bool sack_perm; /* SYN: SACK permitted */
    bool ts;        /* SYN: timestamps */
    bool no_ts;     /* leave the timestamp out although negotiated */
    bool ts_set;    /* use tsval / tsecr as given */
    uint32_t tsval, tsecr;
    int nsack;      /* SACK blocks, sequence numbers relative to the SUT's ISS */
    uint32_t sack[4][2];
    bool raw_wnd;   /* wnd is the raw header field */
    long wnd;       /* window in bytes (or raw); 0 with raw_wnd = a zero window;
                       default (wnd 0, !raw_wnd): 65535 << our shift, capped */
    uint16_t urp;   /* urgent pointer field (set JK_URG in flags to mean it) */
    bool mss_zero;  /* SYN: an MSS option with the value 0 (mss must be 0) */
};

/* The usual SYN offer: MSS 1460 (1440 for IPv6), ws 7, SACK, timestamps. */
struct dx_opt dx_syn_opts(struct dx *x);

/* Send a segment: seq relative to the peer's ISS (its SYN is 0), ack
 * relative to the SUT's ISS (its SYN is 0). */
void dx_send(struct dx *x, uint8_t flags, uint32_t seq, uint32_t ack, const void *data,
             size_t len, const struct dx_opt *o);
/* Send raw bytes as a frame (hostile input). */
void dx_send_raw(struct dx *x, const void *frame, size_t len);
/* Build (do not send) a segment of the flow into buf: its length. */
size_t dx_build(struct dx *x, uint8_t *buf, size_t cap, uint8_t flags, uint32_t seq,
                uint32_t ack, const void *data, size_t len, const struct dx_opt *o);

/* One segment the SUT sent on this flow (parsed, invariants checked). */
struct dx_seg {
    struct jk_seg s;
    uint32_t seq, ack;   /* relative: seq to the SUT's ISS, ack to the peer's */
    uint8_t frame[2048]; /* the first bytes of the frame */
    size_t flen;
    double t_ms;         /* since the run began */
};

/* The next segment of the flow within timeout_ms, or NULL. */
const struct dx_seg *dx_next(struct dx *x, int timeout_ms);
/* The window a segment of the SUT offers, in bytes (its scale applied). */
uint32_t dx_sut_window(const struct dx *x, const struct dx_seg *g);
/* Normalised text of a segment: "SA 0:0(0) ack 1 <mss 1460,sack,ts,ws>",
 * flags (PSH ignored), relative numbers, payload length, which options
 * (SACK blocks relative), "win 0" only for a zero window. */
const char *dx_str(const struct dx_seg *g);

/* The next frame the SUT sends to dst, any protocol (a third address the
 * scenario spoke for), copied into buf, within timeout_ms: its length, 0
 * if none. Frames to other destinations are passed over unchecked. */
size_t dx_next_frame_to(struct dx *x, const struct jk_addr *dst, uint8_t *buf, size_t cap,
                        int timeout_ms);

/* Handshakes. Afterwards: the peer's next seq is 1, the SUT's next seq 1,
 * the SUT's application holds the connection. o: the peer's SYN options
 * (NULL: dx_syn_opts). */
void dx_open_passive(struct dx *x, const struct dx_opt *o); /* SUT listens, peer connects */
void dx_open_active(struct dx *x, const struct dx_opt *o);  /* SUT connects, peer accepts */

/* ---------------------------------------------------------------------- */
/* Outcomes                                                                */
/* ---------------------------------------------------------------------- */

void dx_out(struct dx *x, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* key: the next segment (dx_str) or "none" within timeout_ms. */
const struct dx_seg *dx_note(struct dx *x, const char *key, int timeout_ms);
/* key: every segment within window_ms, joined by " | ". */
void dx_note_all(struct dx *x, const char *key, int window_ms);
/* key: what a read returns within timeout_ms ("data N", "eof", "-ECONNRESET"...). */
void dx_note_read(struct dx *x, const char *key, int timeout_ms);
/* key: what an accept returns within timeout_ms ("ok", "EAGAIN", ...);
 * returns it (0 or -errno). */
int dx_note_accept(struct dx *x, const char *key, int timeout_ms);
/* Give up on the run: the harness itself went wrong. */
void dx_fail(struct dx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Errno name ("ECONNRESET"), for outcomes. */
const char *dx_errname(long e);

/* Milliseconds since the run began. */
double dx_ms(struct dx *x);
void dx_sleep_ms(int ms);

/* The run's family (4 or 6) and which system it is ("kernel" / "jktcp"). */
int dx_family(const struct dx *x);
const char *dx_system(const struct dx *x);

#endif
