/* SPDX-License-Identifier: MIT */
/* The engine's internals, shared by its files (tcp_conn.c, tcp_in.c,
 * tcp_out.c, tcp_recovery.c, tcp_rack.c, tcp_prr.c, tcp_cc*.c, tcp_timer.c) and by nothing else:
 * the rest of the library sees tcp.h. */
#ifndef JK_TCP_INT_H
#define JK_TCP_INT_H

#include "tcp.h"
#include "tcp_cc.h"

#include <stdbool.h>
#include <stdint.h>

#define NOW(c) ((c)->env->now)

static inline uint32_t min_u32(uint32_t x, uint32_t y) { return x < y ? x : y; }

static inline uint32_t max_u32(uint32_t x, uint32_t y) { return x > y ? x : y; }

static inline bool synchronized(int state)
{
    return state >= JKTCP_ESTABLISHED;
}

static inline uint32_t snd_data_end(struct jk_tcp *c)
{
    return c->snd_buf_seq + jk_ring_used(&c->snd);
}

static inline uint32_t ip_header_len(const struct jk_tcp_env *e)
{
    return e->local.family == 4 ? 20 : 40;
}

static inline void jk_tcp_event(struct jk_tcp *c, enum jk_tcp_event ev)
{
    c->env->ops->event(c->env, c, ev);
}

/* Output may be due, or the application has news (the owner's output
 * pass sends it and tells the application). */
static inline void jk_tcp_changed(struct jk_tcp *c)
{
    jk_tcp_event(c, JK_TCP_CHANGED);
}

/* The first multiple of JK_TRIM_GRAIN_US at or after t: connections that
 * went quiet about together are trimmed in the same wake-up. */
static inline uint64_t jk_tcp_trim_slot(uint64_t t)
{
    return ((t - 1) | (JK_TRIM_GRAIN_US - 1)) + 1;
}

/* Data entered the receive ring or left the send ring: the buffers are
 * busy, so their pages stay until JK_TRIM_IDLE_US pass without this. */
static inline void jk_tcp_data_moved(struct jk_tcp *c)
{
    c->data_us = NOW(c);
    if (!c->timer[JK_T_TRIM])
        c->timer[JK_T_TRIM] = jk_tcp_trim_slot(c->data_us + JK_TRIM_IDLE_US);
}

/* Answer segment s, which c does not take, with a reset. */
static inline void jk_tcp_reset_for(struct jk_tcp *c, const struct jk_seg *s)
{
    struct jk_rst r;
    if (jk_tcp_rst_for(s, &r))
        c->env->ops->rst(c->env, &r);
}

/* Recovery has holes to work on: SACK shows them, or a timeout made every
 * unSACKed byte one. */
static inline bool holes_known(struct jk_tcp *c)
{
    return c->rec.in_recovery && (c->rec.nsack || c->rec.rto_recovery);
}

static inline uint32_t seg_space(const struct jk_seg *s)
{
    return s->len + ((s->flags & JK_SYN) ? 1 : 0) + ((s->flags & JK_FIN) ? 1 : 0);
}

static inline uint32_t flight_size(struct jk_tcp *c)
{
    return c->snd_max - c->snd_una;
}

static inline bool our_fin_acked(struct jk_tcp *c)
{
    return c->fin_sent && seq_gt(c->snd_una, c->fin_snd_seq);
}

static inline bool receiving(int state)
{
    return state == JKTCP_ESTABLISHED || state == JKTCP_FIN_WAIT_1 || state == JKTCP_FIN_WAIT_2;
}

/* tcp_conn.c */
void jk_tcp_to_closed(struct jk_tcp *c, int err);
void jk_tcp_to_time_wait(struct jk_tcp *c);
void jk_tcp_reset_conn(struct jk_tcp *c, bool send_rst, bool ts);
void jk_tcp_take_syn_options(struct jk_tcp *c, const struct jk_seg *s, bool we_offered_all);
void jk_tcp_became_established(struct jk_tcp *c);

/* tcp_out.c */
uint32_t jk_tcp_ts_now(const struct jk_tcp *c);
/* One segment sized for the path (emit_sized in tcp_out.c). */
int jk_tcp_emit(struct jk_tcp *c, uint8_t flags, uint32_t seq, uint32_t len, bool *fin);
uint32_t jk_tcp_acceptable_seq(struct jk_tcp *c);
void jk_tcp_sent_range(struct jk_tcp *c, uint32_t seq, uint32_t len, bool synfin);
void jk_tcp_send_ack_alone(struct jk_tcp *c);
void jk_tcp_send_probe(struct jk_tcp *c);

/* tcp_recovery.c */
void jk_tcp_arm_tlp(struct jk_tcp *c);
int jk_tcp_pass_resend(struct jk_tcp *c, uint32_t seq);
uint32_t jk_tcp_sacked_in(struct jk_tcp *c, uint32_t from, uint32_t to);
uint32_t jk_tcp_pipe(struct jk_tcp *c);
uint32_t jk_tcp_cwnd_room(struct jk_tcp *c);
uint32_t jk_tcp_highest_delivered(struct jk_tcp *c);
int jk_tcp_send_hole(struct jk_tcp *c);
uint32_t jk_tcp_take_peer_sack(struct jk_tcp *c, const struct jk_seg *s, uint32_t below,
                               uint32_t *low);
void jk_tcp_prune_peer_sack(struct jk_tcp *c);
void jk_tcp_on_rack(struct jk_tcp *c);
uint32_t jk_tcp_sacked_bytes(struct jk_tcp *c);
void jk_tcp_on_dupack(struct jk_tcp *c);
void jk_tcp_rack_recovery_done(struct jk_tcp *c);
void jk_tcp_rack_rearm(struct jk_tcp *c);
void jk_tcp_undo_begin(struct jk_tcp *c);
void jk_tcp_undo_resent(struct jk_tcp *c, uint32_t seq, uint32_t end);
void jk_tcp_on_tlp(struct jk_tcp *c);
uint64_t jk_tcp_reo_wnd_us(struct jk_tcp *c);
void jk_tcp_eifel_arm(struct jk_tcp *c);
void jk_tcp_eifel_check(struct jk_tcp *c, const struct jk_seg *s);

/* tcp_prr.c */
void jk_prr_begin(struct jk_tcp *c, bool cut);
void jk_prr_sent(struct jk_tcp *c, uint32_t len);
void jk_prr_on_ack(struct jk_tcp *c, uint32_t delivered);

/* tcp_rack.c */
void jk_rack_reset(struct jk_tcp *c);
void jk_rack_resent(struct jk_tcp *c, uint32_t seq, uint32_t end);
bool jk_rack_detect(struct jk_tcp *c);
bool jk_rack_next_lost(struct jk_tcp *c, uint32_t *seq);
uint32_t jk_rack_lost_bytes(struct jk_tcp *c);
void jk_rack_sent_new(struct jk_tcp *c, uint32_t seq, uint32_t end);
void jk_rack_sent_forget(struct jk_tcp *c);
bool jk_rack_sent_at(struct jk_tcp *c, uint32_t seq, bool latest, uint64_t *at_us);

/* tcp_timer.c */
void jk_tcp_arm_rto(struct jk_tcp *c);
void jk_tcp_arm_persist(struct jk_tcp *c);
void jk_tcp_rto_from_estimate(struct jk_tcp *c);
void jk_tcp_update_rtt(struct jk_tcp *c, uint32_t sample);

#endif
