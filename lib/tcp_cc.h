/* SPDX-License-Identifier: MIT */
/*
 * Congestion control as a module (tcp_cc.c). The engine tells the
 * algorithm what happened — data delivered, a loss found, a timeout,
 * recovery over — and the algorithm sets c->cc.cwnd and c->cc.ssthresh;
 * the engine only reads them (the pipe estimate and the output pass).
 * With JKTCP_OPT_CONGESTION off no hook runs and cwnd stays unlimited.
 * Three algorithms: NewReno (RFC 5681 / 6582 with RFC 6675's SACK
 * recovery, here), CUBIC (tcp_cc_cubic.c, RFC 9438) and a BBRv1-style
 * model-based controller (tcp_cc_bbr.c). Every hook but init may be NULL.
 */
#ifndef JK_TCP_CC_H
#define JK_TCP_CC_H

#include <stdbool.h>
#include <stdint.h>

struct jk_tcp;

struct jk_cc_ops {
    const char *name;
    /* In SACK recovery the engine sets cwnd by Proportional Rate
     * Reduction (RFC 6937, tcp_prr.c) from the ssthresh on_loss chose;
     * false for a controller that sets the window itself (BBR). */
    bool prr;
    /* The handshake fixed the segment size: the initial window. */
    void (*init)(struct jk_tcp *c);
    /* acked bytes newly delivered (not SACKed before), outside fast
     * recovery — including the slow start that follows a timeout. */
    void (*on_ack)(struct jk_tcp *c, uint32_t acked);
    /* Fast recovery begins (three duplicates, SACK or RACK showed a loss). */
    void (*on_loss)(struct jk_tcp *c);
    /* A duplicate ACK during fast recovery. */
    void (*on_dupack)(struct jk_tcp *c);
    /* An ACK inside recovery that leaves data below the recovery point
     * and shows nothing SACKed above (RFC 6582 partial ACK). */
    void (*on_partial_ack)(struct jk_tcp *c, uint32_t acked);
    /* The ACK covering the recovery point: recovery is over. */
    void (*on_recovery_exit)(struct jk_tcp *c);
    /* A retransmission timeout of a synchronized connection. */
    void (*on_rto)(struct jk_tcp *c);
    /* After every ACK that acked or SACKed new data, in any
     * state: `delivered` bytes newly delivered (c->cc.delivered already
     * counts them). */
    void (*on_delivered)(struct jk_tcp *c, uint32_t delivered);
    /* A round-trip time sample, microseconds. */
    void (*on_rtt)(struct jk_tcp *c, uint32_t rtt_us);
    /* The recovery that a timeout began is over. */
    void (*on_rto_recovery_exit)(struct jk_tcp *c);
    /* The last cut was needless (every resend of its episode arrived
     * twice): the engine has put cwnd and ssthresh back; restore any
     * state of the controller's own. */
    void (*on_undo)(struct jk_tcp *c);
};

extern const struct jk_cc_ops jk_cc_newreno, jk_cc_cubic, jk_cc_bbr;

/* NewReno's recovery mechanics, which CUBIC shares. */
void jk_cc_reno_on_dupack(struct jk_tcp *c);
void jk_cc_reno_on_partial_ack(struct jk_tcp *c, uint32_t acked);
void jk_cc_reno_on_recovery_exit(struct jk_tcp *c);

/* The hooks, each a no-op when congestion control is off. */
void jk_cc_init(struct jk_tcp *c);
/* Switch a connection to controller `algo` (a jktcp_cc): before the
 * handshake it only changes what jk_cc_init will pick; after it the new
 * controller starts from the window in use (as Linux's setsockopt
 * TCP_CONGESTION). 0 or -EINVAL. */
int jk_cc_select(struct jk_tcp *c, long algo);
void jk_cc_on_ack(struct jk_tcp *c, uint32_t acked);
void jk_cc_on_loss(struct jk_tcp *c);
void jk_cc_on_dupack(struct jk_tcp *c);
void jk_cc_on_partial_ack(struct jk_tcp *c, uint32_t acked);
void jk_cc_on_recovery_exit(struct jk_tcp *c);
void jk_cc_on_rto(struct jk_tcp *c);
void jk_cc_on_delivered(struct jk_tcp *c, uint32_t delivered);
void jk_cc_on_rtt(struct jk_tcp *c, uint32_t rtt_us);
void jk_cc_on_rto_recovery_exit(struct jk_tcp *c);
void jk_cc_on_undo(struct jk_tcp *c);
/* The controller's bottleneck-rate estimate, bytes/s (0: it has none). */
uint64_t jk_cc_delivery_rate(struct jk_tcp *c);
/* The adapter's shared path model (tcp_cc_share.c): join it or update
 * what this flow adds (its rate estimate, bytes/s, and min RTT); leave it
 * (a no-op if not in); the mean model, if c is in it with another flow. */
void jk_cc_share_set(struct jk_tcp *c, uint64_t bw, uint32_t min_rtt_us);
void jk_cc_share_leave(struct jk_tcp *c);
bool jk_cc_share_model(const struct jk_tcp *c, uint64_t *bw, uint32_t *min_rtt_us);
/* cwnd, held to the peer's largest window plus 16 segments: growing far
 * past what the peer allows only makes a later cut meaningless. */
uint32_t jk_cc_cap(struct jk_tcp *c, uint32_t cwnd);

#endif
