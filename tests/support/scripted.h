/* SPDX-License-Identifier: MIT */
/*
 * Scripted-peer harness: packet-by-packet tests in the manner of
 * packetdrill / smoltcp. One adapter talks through a jktcp_port to a peer
 * that the test plays by hand: it pushes exact segments and pulls, parses
 * and checks every segment the adapter emits. Time is a fake microsecond
 * clock that only the test advances.
 *
 * Sequence numbers are relative, as tcpdump prints them:
 *   - segments from the adapter: seq relative to the adapter's ISS
 *     (its SYN has seq 0, its first data byte seq 1), ack relative to the
 *     peer's ISS;
 *   - segments the peer sends (sp_send): seq relative to the peer's ISS,
 *     ack relative to the adapter's ISS.
 * With no connection (iss = irs = 0, the state after sp_setup) relative
 * numbers are raw numbers.
 *
 * Every pulled segment is checked against invariants that must hold for
 * any segment (addresses and ports of the flow, RFC 7323 §3.2 timestamps
 * on every non-RST segment once negotiated and never otherwise, window
 * scale only on SYNs, SACK blocks only when negotiated, RFC 6691 payload +
 * options <= peer MSS, TSval monotonic).
 *
 * SP_TRACE=1 in the environment prints every segment in both directions
 * (tcpdump-like, relative numbers) to stderr:
 *   SP_TRACE=1 build/tests/jktcp_tests --filter 'scripted/hs_simultaneous_open'
 */
#ifndef JKTCP_TESTS_SCRIPTED_H
#define JKTCP_TESTS_SCRIPTED_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jktcp.h"
#include "packet.h"

/* Don't-care value for sp_expect fields. */
#define SP_ANY UINT64_MAX
/* sp_send window argument: use the flow's default peer window (sp.f.wnd). */
#define SP_WND (-1L)

/* Options on a segment the peer sends. Zero-initialised = nothing special:
 * no SYN options; timestamps added automatically once negotiated. */
typedef struct sp_opts {
    uint16_t mss;           /* SYN: MSS option value, 0 = none */
    bool mss_zero;          /* SYN: an MSS option whose value is 0 (means none) */
    bool ws;                /* SYN: include window scale */
    uint8_t wscale;
    bool sack_ok;           /* SYN: include SACK-permitted */
    bool ts;                /* SYN: include timestamps (auto values) */
    bool no_ts;             /* non-SYN: suppress the automatic TS option */
    bool ts_set;            /* use tsval/tsecr below instead of auto values */
    uint32_t tsval, tsecr;
    uint8_t nsack;          /* SACK blocks, relative to the adapter's ISS */
    struct { uint32_t left, right; } sack[JK_MAX_SACK];
    bool raw_wnd;           /* wnd argument is the raw 16-bit header field */
} sp_opts;

/* Handshake parameters of the peer (sp_connect / sp_accept). */
typedef struct sp_hs {
    int mss;        /* MSS option, < 0 = none */
    int wscale;     /* window-scale shift, < 0 = none */
    bool sack;      /* SACK-permitted */
    bool ts;        /* timestamps */
    uint32_t wnd;   /* peer window in bytes; in a SYN it is sent unscaled
                       (capped at 65535) */
    uint32_t rtt_ms;/* clock advance between our SYN and the peer's reply */
    uint16_t port;  /* active open: port to connect to; passive: the
                       listening port (default 80) */
} sp_hs;

#define SP_HS_DEFAULT                                                       \
    ((sp_hs){ .mss = 1460, .wscale = 7, .sack = true, .ts = true,           \
              .wnd = 65535, .rtt_ms = 0, .port = 80 })
#define SP_HS_NONE                                                          \
    ((sp_hs){ .mss = -1, .wscale = -1, .sack = false, .ts = false,          \
              .wnd = 65535, .rtt_ms = 0, .port = 80 })

/* One segment pulled from the adapter. */
typedef struct sp_seg {
    struct jk_seg s;        /* parsed; s.payload points into frame */
    uint32_t seq, ack;      /* relative (see above) */
    uint32_t wnd;           /* advertised window in bytes (scaled unless SYN) */
    uint32_t opt_len;       /* TCP option bytes */
    size_t flen;
    uint8_t frame[JK_MAX_FRAME];
} sp_seg;

/* A short record of a segment (for sp_drain). */
typedef struct sp_brief {
    uint8_t flags;
    uint32_t seq, ack, len, wnd;
    uint8_t nsack;
    uint64_t t_ms;          /* clock (ms since setup) when pulled */
} sp_brief;

/* The flow the harness is talking about. */
struct sp_flow {
    uint16_t lport;         /* the adapter's port */
    uint16_t rport;         /* the peer's port */
    uint32_t iss;           /* adapter's ISS */
    uint32_t irs;           /* peer's ISS */
    bool ts, sack;          /* negotiated */
    uint8_t peer_ws;        /* shift of windows the peer sends */
    uint8_t our_ws;         /* shift of windows the adapter sends */
    uint16_t peer_mss;      /* the MSS the peer announced (0: none -> 536) */
    uint32_t wnd;           /* default peer window in bytes (SP_WND) */
    uint32_t ts_recent;     /* last TSval seen from the adapter */
    uint32_t peer_tsval;    /* last TSval the peer sent */
    uint32_t peer_ts_max;   /* highest TSval the peer sent (auto values never go below) */
    uint32_t syn_wnd;       /* window in the adapter's SYN / SYN-ACK */
    bool ts_seen;
    bool synced;            /* handshake done: apply the TS/SACK/MSS invariants */
};

struct sp_state {
    jktcp_adapter *a;
    jktcp_port *port;
    uint64_t now_us, start_us;
    int family;
    struct jk_addr local, peer;   /* adapter's address, peer's address */
    struct sp_flow f;
    jktcp_conn *c;
    jktcp_conn_listener *l;
    bool check_invariants;
    bool lenient_ports;           /* don't check ports (several flows) */
    unsigned slot;
    sp_seg slots[6];
};
extern struct sp_state sp;
/* The peer's ISS for the next handshake helper (default 3000000000). */
extern uint32_t sp_irs_next;

/* Criterion .init/.fini: IPv4 198.18.0.2 (adapter) <-> 198.18.0.1 (peer),
 * or IPv6 fd00::2 <-> fd00::1. DELACK_US is set to 0. */
void sp_setup4(void);
void sp_setup6(void);
void sp_teardown(void);

/* Set an adapter option (asserts success). */
void sp_option(jktcp_option opt, long value);

/* Clock. */
uint64_t sp_now_ms(void);          /* ms since setup */
void sp_poll(void);                /* jktcp_adapter_poll(a, 0) */
void sp_advance_us(uint64_t us);   /* advance, then poll */
void sp_advance_ms(uint64_t ms);

/* Peer -> adapter. */
void sp_send(uint8_t flags, uint32_t seq, uint32_t ack, long wnd,
             const void *payload, size_t len, const sp_opts *o);
void sp_push_raw(const void *frame, size_t len);   /* push + poll */
/* Build (not push) a frame from the peer on the current flow. */
size_t sp_build(uint8_t *buf, size_t cap, uint8_t flags, uint32_t seq, uint32_t ack,
                long wnd, const void *payload, size_t len, const sp_opts *o);

/* Adapter -> peer. */
const sp_seg *sp_next(void);       /* next emitted segment or NULL (polls once if empty) */
#define sp_expect(flags, seq, ack, len) \
    sp_expect_at(__FILE__, __LINE__, (flags), (seq), (ack), (len))
#define sp_expect_none() sp_expect_none_at(__FILE__, __LINE__)
#define sp_expect_any() sp_expect_any_at(__FILE__, __LINE__)
const sp_seg *sp_expect_at(const char *file, int line, unsigned flags,
                           uint64_t seq, uint64_t ack, uint64_t len);
const sp_seg *sp_expect_any_at(const char *file, int line);
void sp_expect_none_at(const char *file, int line);
/* Advance the clock 1 ms at a time (polling) until a segment is emitted;
 * returns it and stores the elapsed ms, or NULL after max_ms. */
const sp_seg *sp_wait(uint32_t max_ms, uint32_t *elapsed_ms);
/* Pull everything emitted now (no clock advance). Returns the count. */
size_t sp_drain(sp_brief *out, size_t max);

/* Internet checksum over data with a partial sum `init`, and a fixer that
 * recomputes the IPv4 header and TCP/UDP/ICMP checksums of a frame after
 * a test edited it (no IPv6 extension headers). */
uint16_t sp_csum(const void *data, size_t len, uint32_t init);
void sp_fix_checksums(uint8_t *frame, size_t len);

/* Human-readable segment (tcpdump-like). */
void sp_format(const sp_seg *g, char *out, size_t cap);
const char *sp_str(const sp_seg *g);   /* static buffer */

/* Deterministic stream content: byte i of a stream is sp_pat(i)[0]. */
const uint8_t *sp_pat(size_t off);     /* valid for 65536 bytes */
#define sp_assert_payload(g, off) sp_assert_payload_at(__FILE__, __LINE__, (g), (off))
void sp_assert_payload_at(const char *file, int line, const sp_seg *g, size_t off);

/* Handshakes. Both leave sp.c set, the flow filled in and the connection
 * ESTABLISHED (asserted). Relative numbers afterwards: the adapter's next
 * seq is 1 and the peer's next seq is 1. */
jktcp_conn *sp_connect(const sp_hs *hs);
jktcp_conn *sp_accept(const sp_hs *hs);
/* Passive open up to (not including) the peer's final ACK: listener on
 * hs->port (created if sp.l is NULL), SYN pushed, SYN-ACK checked. */
const sp_seg *sp_accept_syn(const sp_hs *hs, uint16_t peer_port);

/* Connection helpers. */
jktcp_info sp_info(jktcp_conn *c);
int sp_state_of(jktcp_conn *c);
jktcp_stats sp_stats(void);
/* Read whatever is readable now (timeout 0) into buf; returns bytes read,
 * or the first negative/zero return if nothing was read. */
ssize_t sp_read_now(jktcp_conn *c, void *buf, size_t cap);

/* Helpers shared by the packet-level suites. */
/* A peer without any option but (optionally) MSS: no wscale, SACK or TS. */
sp_hs sp_plain(int mss, uint32_t wnd);
/* Queue n bytes of the pattern starting at stream offset off (no waiting). */
void sp_write_pat(jktcp_conn *c, size_t off, size_t n);
/* Peer data: the peer's byte at relative seq s is sp_pat(s - 1)[0]. */
void sp_peer_data(uint32_t seq, uint32_t ack, size_t len);
void sp_peer_ack(uint32_t seq, uint32_t ack);
void sp_peer_ackw(uint32_t seq, uint32_t ack, long wnd);
/* Read exactly n bytes now, compare them to the peer's stream from offset
 * off; then nothing more is readable. */
void sp_read_expect(jktcp_conn *c, size_t off, size_t n);

#endif
