/* SPDX-License-Identifier: MIT */
/* Internal types shared by the TCP state machine (tcp.c), the adapter
 * (adapter.c: demux, timers, I/O loop) and the public conn API (conn.c). */
#ifndef JK_TCP_H
#define JK_TCP_H

#include "heap.h"
#include "icmp.h"
#include "jktcp.h"
#include "packet.h"
#include "path.h"
#include "reasm.h"
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
#define JK_HASH_BUCKETS 4096
#define JK_RST_QUEUE 32     /* resets owed to segments for no connection */
#define JK_KEEPALIVE_PROBES 9
#define JK_QUICKACKS 16   /* segments ACKed at once after a hole fills */
#define JK_FIN_WAIT2_US (30u * 1000000u) /* orphaned FIN_WAIT_2 lifetime */
#define JK_MIN_SND_MSS 48 /* a peer's MSS below this is raised to it (Linux tcp_min_snd_mss) */

/* Per-connection settings, copied from the adapter when it is created. */
struct jk_cfg {
    uint32_t sndbuf, rcvbuf;
    uint32_t delack_us, timewait_us, keepalive_us;
    uint32_t rto_min_us, rto_max_us, rto_init_us;
    uint32_t max_retries, max_ooo;
    bool nodelay, congestion, sack, timestamps, tlp;
};

struct jk_range {
    uint32_t start, end; /* [start, end) in sequence space */
};

struct jktcp_conn {
    struct jktcp_adapter *a;
    struct jktcp_conn *hnext;            /* hash chain (by ports) */
    struct jktcp_conn *all_next, *all_prev;
    struct jktcp_conn *dirty_next;       /* adapter's output list */
    struct jktcp_conn_listener *listener;     /* passive, until accepted */
    struct jktcp_conn *acc_next;         /* listener's accept queue */
    struct jk_heap_node timer;           /* in a->timers, key: earliest armed timer */
    bool dirty, hashed, user_released, queued, ephemeral;
    void *user; /* threaded handle's stream */

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
    uint32_t cwnd, ssthresh, recover;
    uint32_t dupacks, cwnd_acc, rexmit_hi;
    uint64_t rexmit_last_us; /* the latest hole resent in this pass */
    uint64_t delivered_us;   /* the latest ACK that acked or SACKed new data */
    uint64_t head_rexmit_us; /* last resend of the segment at snd_una, 0 = none */
    bool in_recovery;
    bool rto_recovery; /* recovery after a timeout: every unSACKed byte is lost */
    struct jk_range peer_sack[JK_MAX_PEER_SACK];
    int npeer_sack;

    /* receive side: ring tail is rcv_nxt's data position */
    struct jk_ring rcv;
    uint32_t irs, rcv_nxt, rcv_adv, last_ack_sent;
    struct jk_range ooo[JK_MAX_OOO]; /* most recent first */
    int nooo;
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

    /* timers, absolute microseconds, 0 = off */
    uint64_t t_rto, t_delack, t_persist, t_keepalive, t_close, t_tlp, t_rack;
    bool tlp_sent; /* one tail-loss probe per ACK advance */
    uint32_t tail_seq; /* start of the last segment of new data (the probe resends it) */
    bool sws_override; /* the persist timer lets a small window's segment go */
    uint32_t srtt_us, rttvar_us, rto_us, min_rtt_us;
    uint32_t retries, persist_backoff, ka_probes;
    bool rtt_timing;
    uint32_t rtt_seq;
    uint64_t rtt_start, last_rx_us;
    uint64_t oow_ack_next; /* earliest time for the next limited ACK (challenge_ack) */

    /* statistics */
    uint64_t bytes_acked, bytes_delivered;
    uint32_t retransmits, timeouts, tail_probes, recoveries;
    int soft_err; /* the last ICMP error while synchronized (not fatal) */
    uint32_t probe_seq, probe_end; /* a path MTU probe in flight (path.h) */
};

struct jktcp_conn_listener {
    struct jktcp_adapter *a;
    struct jktcp_conn_listener *next;
    uint16_t port;
    int backlog, pending; /* pending = half-open + not accepted */
    struct jktcp_conn *acc_head, *acc_tail;
    void *owner;          /* threaded handle's listener */
    _Atomic int *handed;  /* the handle's count of streams not yet accepted */
};

struct jk_rst {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    bool ts;                /* carry a timestamp (a connection negotiated it) */
    uint32_t tsval, tsecr;
};

struct jktcp_adapter {
    jktcp_transport *t;
    struct jk_addr local, peer;
    uint32_t mtu, mss_cap, max_conns;
    uint32_t pmtu; /* path MTU in use (== path.mtu): mtu, lowered by ICMP or probing */
    struct jk_path path;
    struct jk_cfg cfg;
    uint64_t (*clock)(void *);
    void *clock_ctx;
    bool custom_clock;
    uint64_t now;
    struct jk_pcap *pcap;
    struct jk_reasm reasm; /* IP fragments being put together */
    int err; /* transport failure, sticky */
    bool tx_blocked;
    bool input_more; /* the last step stopped with input still ready */

    struct jktcp_conn *buckets[JK_HASH_BUCKETS];
    struct jktcp_conn *all;
    struct jktcp_conn *dirty_head, *dirty_tail;
    struct jk_heap timers; /* connections with an armed timer, by deadline */
    struct jktcp_conn_listener *listeners;
    uint32_t nconns;

    struct jk_rst rstq[JK_RST_QUEUE];
    int nrst;

    jktcp_stats st;
    uint32_t rng;
    uint8_t *txbuf; /* one frame, reused for every segment we build */
    uint64_t eph_used[16384 / 64]; /* ephemeral ports taken */
    /* optional hook: a connection changed state (the threaded handle
     * uses it to wake waiters) */
    void (*on_conn_event)(struct jktcp_adapter *, struct jktcp_conn *);
    void *owner;
};

/* tcp.c: the state machine */
int jk_tcp_init_conn(struct jktcp_conn *c, struct jktcp_adapter *a, uint16_t lport,
                     uint16_t rport);
void jk_tcp_free_buffers(struct jktcp_conn *c);
void jk_tcp_connect(struct jktcp_conn *c);
void jk_tcp_accept_syn(struct jktcp_conn *c, const struct jk_seg *syn);
void jk_tcp_input(struct jktcp_conn *c, const struct jk_seg *seg);
/* Emit what is due. Returns 0, or -EAGAIN when the transport is busy. */
int jk_tcp_output(struct jktcp_conn *c);
void jk_tcp_timers(struct jktcp_conn *c);
void jk_tcp_shutdown(struct jktcp_conn *c);
void jk_tcp_abort(struct jktcp_conn *c, bool send_rst);
/* The transport died: closed with err (kept if one is already set). */
void jk_tcp_fail(struct jktcp_conn *c, int err);
void jk_tcp_app_read(struct jktcp_conn *c); /* the app consumed receive data */
uint32_t jk_tcp_rcv_window(struct jktcp_conn *c);
uint64_t jk_tcp_deadline(const struct jktcp_conn *c);
/* Released and finished closing, or (held) nothing left to deliver. */
bool jk_tcp_flushed(struct jktcp_conn *c);
/* Every queued byte and our FIN (if any) acknowledged: whether or not the
 * peer closed too (FIN_WAIT_2 counts). */
bool jk_tcp_delivered(struct jktcp_conn *c);
/* An ICMP error quoting one of our segments (already matched to c by
 * addresses and ports). False when it fails validation (ignored). */
bool jk_tcp_icmp(struct jktcp_conn *c, const struct jk_icmp *ic);
/* The path MTU changed: recompute the segment size. */
void jk_tcp_pmtu_changed(struct jktcp_conn *c);
/* Resend everything in flight now, without a window cut (the path shrank). */
void jk_tcp_resend_all(struct jktcp_conn *c);

/* adapter.c services used by tcp.c */
uint32_t jk_random(struct jktcp_adapter *a);
/* Send one built frame: pcap, stats, transport. 0 or -EAGAIN / error. */
int jk_adapter_send_frame(struct jktcp_adapter *a, const uint8_t *frame, size_t len);
void jk_adapter_mark_dirty(struct jktcp_conn *c);
void jk_adapter_conn_closed(struct jktcp_conn *c); /* reached CLOSED */
void jk_adapter_established(struct jktcp_conn *c); /* passive open done */
/* Answer a segment for no connection with a RST (RFC 9293 §3.10.7.1). */
void jk_adapter_reset_for(struct jktcp_adapter *a, const struct jk_seg *seg);
void jk_adapter_queue_rst(struct jktcp_adapter *a, const struct jk_rst *r);
void jk_adapter_update_timer(struct jktcp_conn *c);
void jk_adapter_release(struct jktcp_conn *c); /* free if closed and released */
/* Lower the path MTU and tell every connection. */
void jk_adapter_set_pmtu(struct jktcp_adapter *a, uint32_t mtu);

#endif
