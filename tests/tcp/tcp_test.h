/* SPDX-License-Identifier: MIT */
/*
 * What the scripted TCP tests in tests/tcp/ share: one macro per Criterion
 * suite (a test keeps its suite wherever it lives, so `--filter
 * 'suite/name'` still selects it), and the helpers used by more than one
 * topic file (tcp_test.c). A helper one file uses stays static there.
 *
 *   T(name)  / T6(name)   suite `scripted`  IPv4 / IPv6, 60 s
 *   H(name)  / H6(name)   suite `hostile`   IPv4 / IPv6, 120 s
 *   L(name)  / L6(name)   suite `listen`    IPv4 / IPv6, 30 s
 *   M(name)  / M6(name)   suite `mss`       IPv4 / IPv6, 120 s
 *
 * Every test runs on a fresh scripted peer (sp_setup4 / sp_setup6, see
 * tests/support/scripted.h).
 */
#ifndef JKT_TCP_TEST_H
#define JKT_TCP_TEST_H

#include "scripted.h"

#define T(name) Test(scripted, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 60)
#define T6(name) Test(scripted, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 60)
#define H(name) Test(hostile, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 120)
#define H6(name) Test(hostile, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 120)
#define L(name) Test(listen, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 30)
#define L6(name) Test(listen, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 30)
#define M(name) Test(mss, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 120)
#define M6(name) Test(mss, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 120)

/* Active open up to the SYN: returns the connection in SYN_SENT with the
 * flow set up (iss known, irs = sp_irs_next). */
jktcp_conn *syn_sent(void);

/* The options of a peer's SYN that offers everything: MSS 1460, window
 * scale 7, SACK-permitted, timestamps. */
sp_opts full_syn_opts(void);

/* One RTT sample (RFC 6298 §2): 100 bytes from seq *nxt, ACKed rtt_ms
 * later; *nxt moves past them. */
void rtt_round(jktcp_conn *c, uint32_t *nxt, uint32_t rtt_ms);

/* Advance the fake clock timer by timer (jktcp_adapter_timeout) until the
 * adapter emits a segment, at most max_ms. Much faster than sp_wait for
 * waits of minutes. */
const sp_seg *wait_seg(uint64_t max_ms, uint64_t *elapsed_ms);

/* Adapter -> peer transfer of n bytes starting at relative seq *nxt; the
 * peer ACKs every segment as it arrives (slow start grows cwnd). */
void transfer_acked(jktcp_conn *c, uint32_t *nxt, size_t n);

/* An ACK of ack carrying the SACK blocks blk[0..n). */
void sp_sack_ack(uint32_t ack, const uint32_t (*blk)[2], int n);

/* A SACK peer (MSS 1000, window scale 7) after 20,000 bytes of slow start:
 * cwnd 30,000; *S is the next sequence number. */
jktcp_conn *sack_peer_warmed(uint32_t *S);

/* A SACK peer (MSS 1000, no timestamps) on a 40 ms path: min RTT and SRTT
 * 40 ms; *S is the next sequence number. */
jktcp_conn *sack_peer_40ms(uint32_t *S);

/* A byte pattern different from sp_pat at every offset (for conflicting
 * retransmissions). */
const uint8_t *alt_pat(size_t off);

/* Find the timestamp option (kind 8) in a built IPv4 frame. */
size_t find_ts_opt(const uint8_t *f);

#endif
