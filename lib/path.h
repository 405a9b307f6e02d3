/* SPDX-License-Identifier: MIT */
/*
 * The path to the peer: its MTU. One adapter has one peer, so one path;
 * every connection's segment size follows it.
 *  - ICMP "packet too big" lowers it (RFC 1191, RFC 8201).
 *  - Packetization-layer probing (RFC 4821, in the manner of RFC 8899 and
 *    Linux's tcp_mtu_probing) finds it where ICMP is dropped, when
 *    JKTCP_OPT_PMTU_PROBE asks: 1 = after a black hole is detected (two
 *    timeouts in a row: fall to the base MTU, then search up), 2 = always
 *    (start at the base, search up). Off by default: a reliable pipe of a
 *    known MTU gains nothing from it.
 * A probe is one segment of the size under test, sent with data behind it
 * so that its loss shows in SACKs at once; acknowledged, the path carries
 * that size; lost, it does not, and its loss costs no window cut.
 */
#ifndef JK_PATH_H
#define JK_PATH_H

#include "icmp.h"

#include <stdbool.h>
#include <stdint.h>

struct jk_tcp;
struct jk_tcp_env;

/* The MTU in use is the environment's pmtu; this is the search around it. */
struct jk_path {
    uint32_t lo, hi;    /* search: lo carries, hi does not (or is one above the max) */
    uint8_t mode;       /* JKTCP_OPT_PMTU_PROBE */
    bool searching;
    struct jk_tcp *probe_c; /* the connection carrying the probe, or NULL */
    uint32_t probe_mtu;
    uint64_t next_us;   /* earliest next probe (one RTT apart; 10 min after a search) */
};

/* The adapter's MTU or probing mode changed (before connections). */
void jk_path_reset(struct jk_tcp_env *e);
/* Lower the path MTU from an ICMP report (already validated). False if
 * the report is bogus (an IPv6 MTU below 1280). */
bool jk_path_too_big(struct jk_tcp *c, const struct jk_icmp *ic);
/* send_data: the MTU to probe with now, or 0. avail: bytes queued beyond
 * snd_nxt; usable: what the windows allow. */
uint32_t jk_path_probe_size(struct jk_tcp *c, uint32_t avail, uint32_t usable);
void jk_path_probe_sent(struct jk_tcp *c, uint32_t seq, uint32_t len);
/* An ACK or SACK arrived: the probe may have made it. */
void jk_path_acked(struct jk_tcp *c);
/* Loss detected with snd_una at the head: true if the loss is the probe
 * (recorded as a failed probe: no congestion). */
bool jk_path_probe_lost(struct jk_tcp *c);
/* A retransmission timeout fired (c->retries counts them in a row). */
void jk_path_timeout(struct jk_tcp *c);
/* c is going away. */
void jk_path_conn_gone(struct jk_tcp *c);

#endif
