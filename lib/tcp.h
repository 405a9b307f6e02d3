/* SPDX-License-Identifier: MIT */
/*
 * The TCP engine (RFC 9293): one connection's state machine, in
 * tcp_conn.c (open, close), tcp_in.c (arrival), tcp_out.c (output),
 * tcp_recovery.c (loss recovery), tcp_cc.c (congestion control) and
 * tcp_timer.c (timers), with path.c for the path MTU.
 *
 * The engine does no I/O and knows nothing of its owner: it reaches the
 * world only through the environment (struct jk_tcp_env) its owner — the
 * adapter — passes in: the clock, addresses and MTU, a frame buffer and a
 * frame output, a random source, counters, and an event callback through
 * which it reports what happened (output due or news for the
 * application, a deadline moved, a passive open completed, closed).
 */
#ifndef JK_TCP_H
#define JK_TCP_H

#include "heap.h"
#include "icmp.h"
#include "jktcp.h"
#include "list.h"
#include "packet.h"
#include "path.h"
#include "rangeset.h"
#include "ring.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define JK_MAX_OOO 128      /* out-of-order ranges a connection may keep */
#define JK_OOW_ACK_US 500000 /* one ACK per this to bare bad segments (challenge_ack) */
#define JK_PAWS_IDLE_US (24ull * 24 * 3600 * 1000000) /* TS.Recent expires (RFC 7323 §5.5) */
#define JK_SYN_QUICK_US 2000 /* SYN resent this soon after a stale ACK answered it */
#define JK_PAWS_WINDOW 1u /* TSval this far below TS.Recent still passes PAWS (as Linux) */
#define JK_MAX_PEER_SACK 32 /* peer SACK ranges remembered (scoreboard) */
#define JK_UNDO_RANGES 16 /* resent ranges an undo can check D-SACKs against */
#define JK_KEEPALIVE_PROBES 9
#define JK_QUICKACKS 16   /* segments ACKed at once after a hole fills */
#define JK_FIN_WAIT2_US (30u * 1000000u) /* orphaned FIN_WAIT_2 lifetime */
#define JK_BBR_BW_ROUNDS 10 /* BBR's bandwidth filter: max of this many rounds */
#define JK_PACE_BURST_US 2000u /* pacing's bucket: this much of the rate may go at once */
#define JK_MIN_SND_MSS 48 /* a peer's MSS below this is raised to it (Linux tcp_min_snd_mss) */
#define JK_TRIM_IDLE_US 1000000u /* buffers idle this long give their pages back (JK_T_TRIM) */
#define JK_TRIM_GRAIN_US 262144u /* trims fall on multiples of this: one wake-up serves many */

/* Per-connection settings, copied from the adapter when it is created. */
struct jk_cfg {
    uint32_t sndbuf, rcvbuf;
    uint32_t delack_us, timewait_us, keepalive_us;
    uint32_t rto_min_us, rto_max_us, rto_init_us;
    uint32_t max_retries, max_ooo;
    bool nodelay, sack, timestamps, tlp;
    uint8_t congestion; /* JKTCP_CC_*: 0 = off */
};

/* The connection's timers (jk_tcp_deadline: the earliest armed one). */
enum jk_tcp_timer {
    JK_T_RTO,       /* retransmission timeout (RFC 6298); SYN retries; connect deadline */
    JK_T_DELACK,    /* delayed ACK (RFC 1122 §4.2.3.2) */
    JK_T_PERSIST,   /* zero-window probe, sender SWS override */
    JK_T_KEEPALIVE, /* RFC 1122 §4.2.3.6 */
    JK_T_CLOSE,     /* TIME-WAIT end, orphaned FIN-WAIT-2 end, connect deadline */
    JK_T_TLP,       /* tail-loss probe (RFC 8985 §7) */
    JK_T_RACK,      /* RACK reorder window (RFC 8985 §6.2) */
    JK_T_TRIM,      /* no data moved for JK_TRIM_IDLE_US: give buffer pages back */
    JK_T_PACE,      /* the pacing rate lets the next segment go (tcp_out.c) */
    JK_T_COUNT
};

/* RTT estimation (RFC 6298) and the one segment being timed (Karn). */
struct jk_rtt {
    uint32_t srtt_us, rttvar_us, rto_us, min_rtt_us;
    bool timing;    /* a segment is being timed ... */
    uint32_t seq;   /* ... the one holding this byte ... */
    uint64_t start; /* ... sent then */
};

/* A reset to send: for a segment no connection takes, or for an abort. */
struct jk_rst {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    bool ts;                /* carry a timestamp (a connection negotiated it) */
    uint32_t tsval, tsecr;
};

/* What the engine tells its owner (jk_tcp_env_ops.event). */
enum jk_tcp_event {
    JK_TCP_CHANGED,     /* output may be due, or news for the application */
    JK_TCP_TIMER,       /* only the deadline moved (jk_tcp_deadline) */
    JK_TCP_ESTABLISHED, /* a passive open completed */
    JK_TCP_CLOSED,      /* reached CLOSED */
    JK_TCP_IDLE,        /* no data moved for a while: the receive ring gave its
                           free pages back; the owner may trim the send ring
                           (jk_ring_trim) once no writer can be in it */
};

struct jk_tcp_env;
struct jk_tcp_env_ops {
    uint32_t (*random)(struct jk_tcp_env *e);
    /* One frame built in e->txbuf: 0, -EAGAIN (busy: nothing sent) or
     * the transport's error. */
    int (*send)(struct jk_tcp_env *e, const uint8_t *frame, size_t len);
    /* A reset for the next output pass. */
    void (*rst)(struct jk_tcp_env *e, const struct jk_rst *r);
    void (*event)(struct jk_tcp_env *e, struct jk_tcp *c, enum jk_tcp_event ev);
    /* The path MTU changed (path.c): set e->pmtu, tell every connection. */
    void (*set_pmtu)(struct jk_tcp_env *e, uint32_t mtu);
};

/* The adapter's shared path model (tcp_cc_share.c): sums over the flows that joined. */
struct jk_cc_share {
    uint32_t n;
    uint64_t bw_sum, rtt_sum;
};

/* The engine's world, owned by the adapter (one per adapter: one peer). */
struct jk_tcp_env {
    const struct jk_tcp_env_ops *ops;
    uint64_t now; /* microseconds; the owner keeps it current */
    struct jk_addr local, peer;
    uint32_t mtu, mss_cap; /* the link's MTU; an MSS cap (0: none) */
    uint32_t pmtu; /* path MTU in use: mtu, lowered by ICMP or probing */
    struct jk_path path;
    struct jk_cfg cfg;  /* settings for new connections */
    bool tx_blocked;    /* the transport refused a frame this pass */
    uint8_t *txbuf;     /* one frame, reused for every segment */
    jktcp_stats *st;    /* counters the engine adds to */
    struct jk_cc_share cc_share; /* the model-based flows' shared path model */
};

struct jk_cc_ops;
/* CUBIC's state (tcp_cc_cubic.c, RFC 9438). */
struct jk_cubic {
    uint64_t epoch_us;    /* start of this congestion-avoidance epoch, 0 = none */
    uint32_t w_max;       /* window before the last reduction, bytes */
    uint32_t k_us;        /* time the cubic takes to climb back to w_max */
    uint32_t w_est;       /* the Reno-friendly estimate, bytes (§4.3) */
    uint32_t est_acc;     /* bytes acked toward w_est's next step */
    uint32_t prior_w_max; /* before the last cut (an undo puts it back) */
};

/* The BBR-style controller's model (tcp_cc_bbr.c). */
struct jk_bbr {
    uint8_t mode;         /* JK_BBR_STARTUP, _DRAIN, _PROBE_BW, _PROBE_RTT */
    uint8_t cycle;        /* PROBE_BW gain phase, 0..7 */
    uint8_t full_bw_rounds; /* rounds without 25% growth in STARTUP */
    bool full_bw;         /* STARTUP found the pipe full */
    bool conserving;      /* first round of a recovery: packet conservation */
    bool app_limited;     /* this round began with nothing more to send */
    bool held_round;      /* this round the window held back: restarting after a
                             timeout, or PROBE_RTT's floor */
    uint8_t bw_slot;      /* next slot of bw[] to write */
    uint32_t round;       /* round trips counted */
    uint32_t round_end;   /* a round ends once the peer holds this byte */
    uint32_t conserve_round;
    uint64_t round_delivered, round_us; /* delivered and time at round start */
    uint64_t bw[JK_BBR_BW_ROUNDS];      /* delivery rate of recent rounds, bytes/s */
    uint32_t bw_round[JK_BBR_BW_ROUNDS]; /* `sampled` when each was measured */
    uint32_t sampled;     /* rounds that gave the filter a sample: its clock, so
                             limited rounds (idle, PROBE_RTT) do not age it */
    uint64_t full_bw_seen;              /* STARTUP's best rate so far */
    uint32_t min_rtt_us;
    uint64_t min_rtt_at, probe_rtt_end, cycle_at;
    uint32_t prior_cwnd;  /* before a recovery or timeout, restored after */
    /* ACK aggregation (Linux's bbr_update_ack_aggregation): how far
     * deliveries ran ahead of the modelled rate, max over 10 rounds */
    uint64_t ack_epoch_us, ack_epoch_bytes;
    uint32_t extra_acked[2];
    uint32_t extra_round; /* round at which extra_acked[] last rotated */
};

/* What one flow added to its adapter's shared path model (tcp_cc_share.c). */
struct jk_cc_member {
    bool joined;
    uint32_t min_rtt_us;
    uint64_t bw; /* bytes/s */
};

/* Congestion control state (tcp_cc.c; the algorithm behind ops). */
struct jk_cc {
    const struct jk_cc_ops *ops;
    uint32_t cwnd, ssthresh;
    uint32_t cwnd_acc; /* bytes acked toward the next segment of growth */
    uint64_t delivered; /* bytes acked or SACKed, ever (delivery-rate sampling) */
    uint64_t pacing_bps; /* the controller's pacing rate, bytes/s (0 = none) */
    uint64_t pace_next_us; /* pacing: the next segment may leave at this time */
    bool pace_held;        /* pacing stopped the flow: it resumes a chunk later */
    struct jk_cc_member share; /* in the adapter's shared model (tcp_cc_share.c) */
    bool limited_elsewhere; /* an output pass stopped for want of data or of the
                               peer's window, not for cwnd or pacing (reset by the
                               controller at each round) */
    union {
        struct jk_cubic cubic;
        struct jk_bbr bbr;
    } u;
};

/* Loss recovery (tcp_recovery.c): the peer's SACK scoreboard, repair
 * passes, tail-loss probes. */
/* A resend whose fate RACK follows (tcp_rack.c): its range, when it went,
 * and snd_max then — data above that was first sent after it. */
struct jk_resend {
    uint32_t seq, end;
    uint32_t hi;
    bool lost; /* RACK found it lost: it goes again before the pass moves on */
    uint64_t sent_us;
};

#define JK_RACK_LOG 32 /* resends followed at once; the pass covers the rest */

/* The sent list (tcp_rack.c): new data in flight by when it first went,
 * oldest first — bytes below `end` (and above the entry before) went
 * between `first` and `last` (µs, low 32 bits; a run spans at most a
 * granule of min_rtt/16 unless the list is full). */
struct jk_sent {
    uint32_t end, first, last;
};

#define JK_SENT_LOG 32 /* entries; when full the newest one grows */

struct jk_recovery {
    bool in_recovery;
    bool rto_recovery; /* recovery after a timeout: every unSACKed byte is lost */
    uint32_t recover;  /* snd_max when recovery began (RFC 6582) */
    uint32_t dupacks, rexmit_hi;
    uint64_t rexmit_last_us; /* the latest hole resent in this pass */
    uint64_t delivered_us;   /* the latest ACK that acked or SACKed new data */
    uint64_t head_rexmit_us; /* last resend of the segment at snd_una, 0 = none */
    bool tlp_sent;     /* one tail-loss probe per ACK advance */
    uint32_t tail_seq; /* start of the last segment of new data (the probe resends it) */
    /* RACK's reordering window adapts to D-SACK (RFC 8985 §6.2 step 4) */
    uint8_t reo_mult;     /* reo_wnd = min_rtt / 4 · this (0 reads as 1) */
    uint8_t reo_persist;  /* recoveries left before reo_mult falls back to 1 */
    bool dsack_round_set;
    uint32_t dsack_round; /* one increase per round trip: until snd_una passes this */
    uint32_t dsacks;      /* D-SACK blocks received (data that arrived twice) */
    /* Undo of a needless window cut (tcp_recovery.c, jk_tcp_undo_*): the
     * episode's resends, and the window before its cut */
    bool undo_armed;
    uint32_t undo_retrans; /* resends of the episode not yet reported needless */
    uint32_t undo_cwnd, undo_ssthresh;
    struct jk_range resent[JK_UNDO_RANGES];
    int nresent;
    uint32_t spurious, undos; /* resends D-SACK showed needless; cuts undone */
    /* Spurious-timeout detection by timestamps (RFC 3522, jk_tcp_eifel_*) */
    bool eifel_armed;
    uint32_t eifel_tsval;               /* TSval of the timeout's first resend */
    uint32_t eifel_recover;             /* the recovery point before it */
    uint32_t spurious_rtos;
    /* SACKed bytes forgotten with the scoreboard (full, or dropped on a
     * second timeout in a row), all below forgot_end: counted delivered
     * once already, not again when acked or SACKed anew there */
    uint32_t forgot, forgot_end;
    /* Proportional Rate Reduction (RFC 6937, tcp_prr.c) */
    bool prr_on;
    uint32_t prr_delivered, prr_out, recover_fs;
    /* RACK per resend (RFC 8985 §6.2), oldest first */
    struct jk_resend rlog[JK_RACK_LOG];
    struct jk_sent sent[JK_SENT_LOG]; /* a ring: sent_head is the oldest (tcp_rack.c) */
    uint32_t sent_start;              /* the first byte the list covers */
    uint8_t sent_head, nsent;
    int nrlog;
    uint64_t rack_sent_us; /* the latest send time among resends delivered ... */
    uint32_t rack_end;     /* ... and that resend's end (the RFC's tie-break) */
    uint32_t rack_lost;    /* resends RACK found lost (statistics) */
    struct jk_range sack[JK_MAX_PEER_SACK]; /* what the peer holds above snd_una */
    int nsack;
};

/* Out-of-order data held in the receive ring beyond rcv_nxt. */
struct jk_ooo {
    struct jk_range r[JK_MAX_OOO]; /* most recent first */
    int n;
};

/* One connection's engine state. Its owner embeds it (adapter.h: struct
 * jktcp_conn) and keeps its own fields there: the engine sees only this. */
struct jk_tcp {
    struct jk_tcp_env *env;
    bool passive;       /* opened by jk_tcp_accept_syn (a listener's child) */
    bool user_released; /* the application let go (jk_tcp_orphan) */

    struct jk_cfg cfg;
    int state;
    int err;        /* sticky error reported to the user */
    uint16_t lport, rport;

    /* send side: the ring holds [snd_buf_seq, snd_buf_seq + used) */
    struct jk_ring snd;
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_buf_seq;
    uint32_t snd_wnd, snd_wl1, snd_wl2, max_snd_wnd;
    uint16_t peer_mss;  /* from the peer's MSS option */
    uint16_t local_mss; /* what we advertise */
    uint16_t smss;      /* payload bytes per segment (options excluded) */
    uint8_t snd_wscale, rcv_wscale;
    bool ws_ok, sack_ok, ts_ok;
    bool fin_queued, fin_sent;
    uint32_t fin_snd_seq;
    struct jk_cc cc;
    struct jk_recovery rec;

    /* receive side: ring tail is rcv_nxt's data position */
    struct jk_ring rcv;
    uint32_t irs, rcv_nxt, rcv_adv, last_ack_sent;
    struct jk_ooo ooo;
    bool fin_rcvd, fin_pending; /* pending: FIN seen out of order */
    uint32_t fin_rcv_seq;
    uint32_t ts_recent, ts_offset;
    uint64_t ts_recent_us; /* when ts_recent was set (ts_recent_stale) */
    uint32_t ts_echo;  /* TSecr for the next ACK instead of ts_recent ... */
    bool ts_echo_once; /* ... while set (see ack_duplicate) */
    struct jk_range dsack; /* duplicate data the next ACK reports first ... */
    bool dsack_pending;    /* ... once (RFC 2883; see note_duplicate) */

    /* ACK state */
    bool ack_now;
    bool ack_alone; /* this ACK must not be merged with the next segment's */
    uint8_t quickacks; /* in-order segments left to ACK at once */
    uint32_t segs_unacked;

    uint64_t timer[JK_T_COUNT]; /* absolute microseconds, 0 = off */
    bool sws_override; /* the persist timer lets a small window's segment go */
    struct jk_rtt rtt;
    uint32_t retries, persist_backoff, ka_probes;
    uint64_t last_rx_us;
    uint64_t data_us; /* data last entered the receive ring or left the send ring */
    uint64_t oow_ack_next; /* earliest time for the next limited ACK (challenge_ack) */

    /* statistics */
    uint64_t bytes_acked, bytes_delivered;
    uint32_t retransmits, timeouts, tail_probes, recoveries;
    int soft_err; /* the last ICMP error while synchronized (not fatal) */
    uint32_t probe_seq, probe_end; /* a path MTU probe in flight (path.h) */
};

/* The engine's entry points (the owner calls them with env->now current). */
int jk_tcp_init_conn(struct jk_tcp *c, struct jk_tcp_env *env, uint16_t lport,
                     uint16_t rport);
void jk_tcp_free_buffers(struct jk_tcp *c);
void jk_tcp_connect(struct jk_tcp *c);
void jk_tcp_accept_syn(struct jk_tcp *c, const struct jk_seg *syn);
void jk_tcp_input(struct jk_tcp *c, const struct jk_seg *seg);
/* Emit what is due. Returns 0, or -EAGAIN when the transport is busy. */
int jk_tcp_output(struct jk_tcp *c);
void jk_tcp_timers(struct jk_tcp *c);
void jk_tcp_shutdown(struct jk_tcp *c);
/* The application closes: FIN, or RST (abort, unread data), or nothing
 * (still opening). */
void jk_tcp_close(struct jk_tcp *c, bool abort);
/* Nobody holds it any more. True when it is closed and may be freed. */
bool jk_tcp_orphan(struct jk_tcp *c);
void jk_tcp_abort(struct jk_tcp *c, bool send_rst);
/* The transport died: closed with err (kept if one is already set). */
void jk_tcp_fail(struct jk_tcp *c, int err);
void jk_tcp_app_read(struct jk_tcp *c); /* the app consumed receive data */
uint32_t jk_tcp_rcv_window(struct jk_tcp *c);
uint64_t jk_tcp_deadline(const struct jk_tcp *c);
/* Released and finished closing, or (held) nothing left to deliver. */
bool jk_tcp_flushed(struct jk_tcp *c);
/* Every queued byte and our FIN (if any) acknowledged: whether or not the
 * peer closed too (FIN_WAIT_2 counts). */
bool jk_tcp_delivered(struct jk_tcp *c);
/* An ICMP error quoting one of our segments (already matched to c by
 * addresses and ports). False when it fails validation (ignored). */
bool jk_tcp_icmp(struct jk_tcp *c, const struct jk_icmp *ic);
/* The path MTU changed: recompute the segment size. */
void jk_tcp_pmtu_changed(struct jk_tcp *c);
/* Resend everything in flight now, without a window cut (the path shrank). */
void jk_tcp_resend_all(struct jk_tcp *c);
/* The reset that answers a segment no connection takes (RFC 9293
 * §3.10.7.1); false for a segment that must not be answered (a RST). */
bool jk_tcp_rst_for(const struct jk_seg *s, struct jk_rst *r);

#endif
