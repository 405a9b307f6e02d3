/* SPDX-License-Identifier: MIT */
/* Helpers of the data-path scenarios (scen_data.c, scen_sack.c). */
#ifndef JKT_SCEN_DATA_H
#define JKT_SCEN_DATA_H

#include "diff.h"

/* The peer's stream: the bytes at offset off (a repeating pattern). */
const uint8_t *dd_bytes(uint32_t off);
/* Send len bytes of the peer's stream at seq (ACK 1, PSH). */
void dd_data(struct dx *x, uint32_t seq, uint32_t len, const struct dx_opt *o);
/* The first segment within timeout_ms that ACKs at least upto (earlier
 * ones are passed over: one system may ACK each segment, the other two at
 * once), or NULL. */
const struct dx_seg *dd_ack_upto(struct dx *x, uint32_t upto, int timeout_ms);
void dd_note_ack_upto(struct dx *x, const char *key, uint32_t upto, int timeout_ms);
/* Pass over segments until none came for quiet_ms. */
void dd_drain(struct dx *x, int quiet_ms);
/* Read until want bytes came or timeout_ms passed: the total, or the
 * error if nothing came. */
long dd_read_total(struct dx *x, long want, int timeout_ms);
void dd_note_read_total(struct dx *x, const char *key, long want, int timeout_ms);
/* Passive open; our ACK of the SYN-ACK goes rtt_ms later (the SUT's first
 * RTT sample, so its RTO, tail-loss probe and reordering window are
 * known), with options ack (our window). Returns the SYN-ACK's TSval. */
uint32_t dd_open(struct dx *x, const struct dx_opt *syn, int rtt_ms, const struct dx_opt *ack);
/* The application queues n bytes (fails the run if it cannot). */
void dd_write(struct dx *x, long n);

/* Data segments the SUT sent. */
#define DD_MAX_FLIGHT 64
struct dd_flight {
    int n;
    long bytes;
    uint32_t end; /* relative seq after the last */
    uint32_t seq[DD_MAX_FLIGHT], len[DD_MAX_FLIGHT];
};
/* Data segments until bytes of payload came or timeout_ms passed. */
int dd_flight(struct dx *x, struct dd_flight *f, long bytes, int timeout_ms);
/* key: "N segments, B bytes: 1448x9 1040" */
void dd_note_flight(struct dx *x, const char *key, const struct dd_flight *f);
/* The payload of a full segment for an MSS option mss (timestamps on). */
uint32_t dd_smss(struct dx *x, int mss);

#endif
