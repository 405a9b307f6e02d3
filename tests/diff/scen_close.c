/* SPDX-License-Identifier: MIT */
/*
 * Differential scenarios, group `close`: closing a connection. A FIN in
 * every state the SUT can be in (RFC 9293 §3.6, §3.10.7.4 eighth),
 * half-close (§3.6.1) and the application's view (EOF, errors), close with
 * unread data and abort (§3.10.4-5, RFC 1122 §4.2.2.13), RSTs and SYNs in
 * the synchronized states (RFC 5961 §3-4) and TIME-WAIT (RFC 1122
 * §4.2.2.13).
 *
 * Unless said otherwise the SUT is the passive side: the peer's next
 * sequence number is 1, the SUT's 1.
 */
#include "diff.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* dx_str, except for RSTs: in a synchronized state only a RST's sequence
 * number matters (RFC 9293 §3.10.7.4, RFC 5961 §3.2: it must be the
 * receiver's RCV.NXT), its ACK field does not, so a RST reads "R seq N",
 * with "<ts>" if it carries a timestamp (RFC 7323 §3.2: SHOULD). A RST
 * answering a segment without ACK has the absolute sequence number 0
 * (§3.10.7.1) and must acknowledge that segment: "R. seq 0 ack N". */
static const char *seg_text(const struct dx_seg *g)
{
    static __thread char b[600];
    if (!(g->s.flags & JK_RST))
        return dx_str(g);
    if (g->s.seq == 0 && g->seq != 0)
        snprintf(b, sizeof b, "R. seq 0 ack %u", g->ack);
    else
        snprintf(b, sizeof b, "R seq %u%s", g->seq, g->s.opt.has_ts ? " <ts>" : "");
    return b;
}

/* key: the next segment within ms, or "none", passing over resent data
 * or FIN that starts below old (relative to the SUT's ISS; 0: none): in
 * states where the SUT has data or a FIN outstanding, its retransmission
 * timer or tail-loss probe may fire in between, which is not what the
 * scenario is about. */
static const struct dx_seg *note_skip(struct dx *x, const char *key, int ms, uint32_t old)
{
    double end = dx_ms(x) + ms;
    const struct dx_seg *g;
    while ((g = dx_next(x, (int)(end - dx_ms(x)) + 1)) != NULL) {
        bool resent = !(g->s.flags & JK_RST) && (g->s.len || (g->s.flags & JK_FIN)) &&
                      (int32_t)(g->seq - old) < 0;
        if (!resent)
            break;
    }
    dx_out(x, key, "%s", g ? seg_text(g) : "none");
    return g;
}

/* key: the next segment within ms, or "none". */
static const struct dx_seg *note(struct dx *x, const char *key, int ms)
{
    return note_skip(x, key, ms, 0);
}

static void out_rc(struct dx *x, const char *key, long r)
{
    dx_out(x, key, "%s", r < 0 ? dx_errname(r) : r == 0 ? "ok" : "bytes");
}

/* A bare ACK from the peer at (seq, ack): what comes back. A connection
 * that is gone answers with a RST (via the listener, §3.10.7.2, or the
 * closed port); a live one in TIME-WAIT or FIN-WAIT-2 stays silent. */
static void probe(struct dx *x, const char *key, uint32_t seq, uint32_t ack)
{
    dx_send(x, JK_ACK, seq, ack, NULL, 0, NULL);
    note(x, key, 200);
}

/* The SUT's application closes first; the peer acknowledges the FIN:
 * FIN-WAIT-2. */
static void to_fin_wait_2(struct dx *x)
{
    dx_open_passive(x, NULL);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_ACK, 1, 2, NULL, 0, NULL);
}

/* ... and then the peer's FIN: TIME-WAIT, the application gone. */
static void to_time_wait(struct dx *x)
{
    to_fin_wait_2(x);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note(x, "ack", 1000);
}

/* The peer closes first, the SUT acknowledges: CLOSE-WAIT. */
static void to_close_wait(struct dx *x)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_FIN | JK_ACK, 1, 1, NULL, 0, NULL);
    note(x, "ack", 1000);
}

/* ---------------------------------------------------------------------- */
/* FIN in each state                                                       */
/* ---------------------------------------------------------------------- */

/* The peer closes first (RFC 9293 §3.6 case 2): the FIN is acknowledged,
 * the application reads end of stream (CLOSE-WAIT); its close sends a FIN
 * (LAST-ACK); the peer's ACK ends the connection: a later ACK finds none
 * and gets a RST. */
DX(close, passive_close, NULL, NULL, NULL)
{
    to_close_wait(x);
    dx_note_read(x, "app", 1000);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_ACK, 2, 2, NULL, 0, NULL);
    note(x, "after_last_ack", 200);
    probe(x, "probe", 2, 2);
}

/* In CLOSE-WAIT the SUT still sends: the application writes after reading
 * end of stream, then closes; the FIN follows the data. */
DX(close, close_wait_send, NULL, NULL, NULL)
{
    to_close_wait(x);
    dx_note_read(x, "app", 1000);
    out_rc(x, "write", dx_write(x, "0123456789", 10));
    note(x, "data", 1000);
    dx_send(x, JK_ACK, 2, 11, NULL, 0, NULL);
    dx_close(x);
    note(x, "fin", 1000);
}

/* A FIN the peer resends in CLOSE-WAIT (our ACK was lost) is acknowledged
 * again (RFC 9293 §3.10.7.4: an unacceptable segment gets an ACK). */
DX(close, dup_fin_close_wait, "sack", NULL, NULL)
{
    to_close_wait(x);
    dx_send(x, JK_FIN | JK_ACK, 1, 1, NULL, 0, NULL);
    note(x, "dup_fin", 1000);
}

/* The SUT closes first (§3.6 case 1): FIN-WAIT-1, the ACK
 * of the FIN (FIN-WAIT-2, nothing sent), the peer's FIN acknowledged
 * (TIME-WAIT), and the FIN resent into TIME-WAIT acknowledged again
 * (§3.10.7.4 eighth, TIME-WAIT: "restart the 2 MSL time-wait timeout"). */
DX(close, active_close, NULL, NULL, NULL)
{
    to_fin_wait_2(x);
    note(x, "fin_wait_2", 200);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note(x, "ack", 1000);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note(x, "dup_fin", 1000);
}

/* The peer's FIN comes with the ACK of the SUT's FIN (FIN-WAIT-1 straight
 * to TIME-WAIT, §3.10.7.4 eighth). */
DX(close, fin_ack_in_fin_wait_1, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note_skip(x, "ack", 1000, 2);
    probe(x, "time_wait", 2, 2);
}

/* Simultaneous close (§3.6 case 3, Figure 13): the FINs cross; the SUT
 * acknowledges the peer's FIN (CLOSING); the ACK of its own FIN takes it
 * to TIME-WAIT, where a resent FIN is acknowledged again. */
DX(close, simultaneous_close, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_FIN | JK_ACK, 1, 1, NULL, 0, NULL);
    note_skip(x, "ack", 1000, 2);
    dx_send(x, JK_ACK, 2, 2, NULL, 0, NULL);
    note(x, "closing_acked", 200);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note(x, "dup_fin", 1000);
}

/* An unacknowledged FIN in LAST-ACK is retransmitted (RFC 9293 §3.8.1,
 * RFC 6298; RFC 8985 §7 may send it as a tail-loss probe): within 2 s.
 * Then the ACK ends the connection. */
DX(close, last_ack_fin_resend, NULL, NULL, NULL)
{
    to_close_wait(x);
    dx_note_read(x, "app", 1000);
    double t0 = dx_ms(x);
    dx_close(x);
    note(x, "fin", 1000);
    const struct dx_seg *g = note(x, "fin_again", 2500);
    if (g) /* a tail-loss probe or the RTO: how soon is another matter */
        dx_out(x, "resent", "%s", g->t_ms - t0 < 2000 ? "within 2 s" : "later");
    dx_send(x, JK_ACK, 2, 2, NULL, 0, NULL);
    probe(x, "probe", 2, 2);
}

/* ---------------------------------------------------------------------- */
/* FIN with data, out of order, data after FIN                             */
/* ---------------------------------------------------------------------- */

/* Data and FIN in one segment: one ACK covers both; the application reads
 * the data, then end of stream. */
DX(close, fin_with_data, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_FIN | JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    note(x, "ack", 1000);
    dx_note_read(x, "app", 1000);
    dx_note_read(x, "app_then", 1000);
}

/* A FIN beyond a hole waits for the hole (RFC 9293 §3.10.7.4: segments
 * are processed in sequence): the duplicate ACK SACKs what arrived (RFC
 * 2018); the missing data then takes the FIN in with it. */
DX(close, fin_out_of_order, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_FIN | JK_ACK | JK_PSH, 6, 1, "world", 5, NULL);
    note(x, "dupack", 1000);
    dx_note_read(x, "app_hole", 100);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    note(x, "ack", 1000);
    dx_note_read(x, "app", 1000);
    dx_note_read(x, "app_then", 1000);
}

/* Data beyond the peer's FIN (CLOSE-WAIT): RFC 9293 §3.10.7.4 seventh,
 * CLOSE-WAIT: "This should not occur ... Ignore the segment text." */
DX(close, data_after_fin, NULL, NULL, NULL)
{
    to_close_wait(x);
    dx_send(x, JK_ACK | JK_PSH, 2, 1, "late!", 5, NULL);
    note(x, "reply", 200);
    dx_note_read(x, "app", 1000);
}

/* Data the peer sends where its FIN was (the segment starts below
 * RCV.NXT and goes beyond it): the old part is trimmed, the new part
 * comes after the FIN. RFC 9293 says ignore it (§3.10.7.4 seventh). */
DX(close, data_over_fin, NULL, "reply,app",
   "jktcp ignores data after the peer's FIN (RFC 9293 §3.10.7.4, CLOSE-WAIT: \"ignore the segment text\"), acknowledging the repeated part; the kernel resets the connection")
{
    to_close_wait(x);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "xlate", 5, NULL);
    note(x, "reply", 200);
    dx_note_read(x, "app", 1000);
}

/* ---------------------------------------------------------------------- */
/* Half-close, close with unread data, abort                               */
/* ---------------------------------------------------------------------- */

/* shutdown(SHUT_WR): a FIN, writing fails, but receiving goes on (RFC
 * 9293 §3.6: a half-closed connection); the peer's data is delivered and
 * acknowledged, its FIN then ends the stream (TIME-WAIT). */
DX(close, half_close, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    out_rc(x, "shutdown", dx_shutdown(x));
    note(x, "fin", 1000);
    out_rc(x, "write", dx_write(x, "x", 1));
    dx_send(x, JK_ACK, 1, 2, NULL, 0, NULL);
    dx_send(x, JK_ACK | JK_PSH, 1, 2, "hello", 5, NULL);
    note(x, "ack", 1000);
    dx_note_read(x, "app", 1000);
    dx_send(x, JK_FIN | JK_ACK, 6, 2, NULL, 0, NULL);
    note(x, "ack_fin", 1000);
    dx_note_read(x, "app_then", 1000);
}

/* close() with received data the application never read: a RST instead
 * of a FIN "to show that data was lost" (RFC 1122 §4.2.2.13 SHOULD, RFC
 * 2525 §2.17). */
DX(close, close_unread_data, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    note(x, "ack", 1000);
    dx_close(x);
    note(x, "close", 1000);
    probe(x, "probe", 6, 1);
}

/* Abort (SO_LINGER 0; RFC 9293 §3.10.5 ABORT): a RST at once, with the
 * sequence number after the data sent (unacknowledged data dropped). */
DX(close, abort, NULL, NULL, NULL)
{
    dx_option(x, DX_O_LINGER0, 1);
    dx_open_passive(x, NULL);
    dx_write(x, "0123456789", 10);
    note(x, "data", 1000);
    dx_close(x);
    note_skip(x, "abort", 1000, 11);
    probe(x, "probe", 1, 11);
}

/* New data after the application closed (FIN-WAIT-2, nobody to read it):
 * a RST (RFC 1122 §4.2.2.13 SHOULD). */
DX(close, data_after_close, NULL, NULL, NULL)
{
    to_fin_wait_2(x);
    dx_send(x, JK_ACK | JK_PSH, 1, 2, "hello", 5, NULL);
    note(x, "reply", 1000);
    probe(x, "probe", 6, 2);
}

/* ---------------------------------------------------------------------- */
/* RST in the synchronized states (RFC 5961 §3.2)                          */
/* ---------------------------------------------------------------------- */

/* ESTABLISHED, RST at exactly RCV.NXT: the connection is reset, the
 * application's read reports it; later segments get a RST. */
DX(close, rst_exact, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_RST, 1, 0, NULL, 0, NULL);
    note(x, "reply", 200);
    dx_note_read(x, "app", 1000);
    probe(x, "probe", 1, 1);
}

/* ESTABLISHED, RST inside the window but not at RCV.NXT: a challenge ACK,
 * the connection stays (RFC 5961 §3.2). */
DX(close, rst_in_window, "ts", NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note(x, "reply", 1000);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    dx_note_read(x, "app", 1000);
}

/* ESTABLISHED, RST outside the window: dropped silently (RFC 5961 §3.2,
 * RFC 9293 §3.10.7.4 first: "If the RST bit is set, ... drop"). */
DX(close, rst_out_of_window, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_RST, 0x40000000u, 0, NULL, 0, NULL);
    note(x, "reply", 200);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    dx_note_read(x, "app", 1000);
}

/* CLOSE-WAIT: an in-window RST gets a challenge ACK, the exact one resets
 * the connection (RFC 5961 §3.2); the application, which has not read the
 * end of stream yet, still reads it first. */
DX(close, rst_close_wait, NULL, NULL, NULL)
{
    to_close_wait(x);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note(x, "rst_in_window", 1000);
    dx_send(x, JK_RST, 2, 0, NULL, 0, NULL);
    note(x, "rst_exact", 200);
    dx_note_read(x, "app", 1000);
    probe(x, "probe", 2, 1);
}

/* FIN-WAIT-1 (the application closed, its FIN unacknowledged): in-window
 * RST -> challenge ACK, exact RST -> gone. */
DX(close, rst_fin_wait_1, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note_skip(x, "rst_in_window", 1000, 2);
    dx_send(x, JK_RST, 1, 0, NULL, 0, NULL);
    note_skip(x, "rst_exact", 200, 2);
    probe(x, "probe", 1, 2);
}

/* FIN-WAIT-2 (the application closed, its FIN acknowledged): the same
 * RFC 5961 rules. */
DX(close, rst_fin_wait_2, NULL, "rst_in_window,probe_between,rst_exact,probe",
   "the kernel's orphaned FIN-WAIT-2 (a timewait socket) takes any RST in its window; jktcp keeps RFC 5961 §3.2 there too: a challenge ACK unless the RST is exact")
{
    to_fin_wait_2(x);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note(x, "rst_in_window", 1000);
    probe(x, "probe_between", 1, 2);
    dx_send(x, JK_RST, 1, 0, NULL, 0, NULL);
    note(x, "rst_exact", 200);
    probe(x, "probe", 1, 2);
}

/* LAST-ACK: the same. */
DX(close, rst_last_ack, NULL, NULL, NULL)
{
    to_close_wait(x);
    dx_note_read(x, "app", 1000);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note_skip(x, "rst_in_window", 1000, 2);
    dx_send(x, JK_RST, 2, 0, NULL, 0, NULL);
    note_skip(x, "rst_exact", 200, 2);
    probe(x, "probe", 2, 2);
}

/* CLOSING (FINs crossed): the same. */
DX(close, rst_closing, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_FIN | JK_ACK, 1, 1, NULL, 0, NULL);
    note_skip(x, "ack", 1000, 2);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note_skip(x, "rst_in_window", 1000, 2);
    dx_send(x, JK_RST, 2, 0, NULL, 0, NULL);
    note_skip(x, "rst_exact", 200, 2);
    probe(x, "probe", 2, 2);
}

/* TIME-WAIT (application gone): a RST at RCV.NXT ends TIME-WAIT early
 * (RFC 9293 §3.10.7.4 second: CLOSED; RFC 1337 "TIME-WAIT assassination"),
 * one elsewhere is dropped. The probe tells whether TIME-WAIT is still
 * there (silence) or gone (RST). */
DX(close, rst_time_wait, NULL, NULL, NULL)
{
    to_time_wait(x);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note(x, "rst_in_window", 200);
    probe(x, "probe_before", 2, 2);
    dx_send(x, JK_RST, 2, 0, NULL, 0, NULL);
    note(x, "rst_exact", 200);
    probe(x, "probe", 2, 2);
}

/* TIME-WAIT reached by shutdown() with the application still holding the
 * connection: the same RSTs. */
DX(close, rst_time_wait_held, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_shutdown(x);
    note(x, "fin", 1000);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note(x, "ack", 1000);
    dx_note_read(x, "app", 1000);
    dx_send(x, JK_RST, 100, 0, NULL, 0, NULL);
    note(x, "rst_in_window", 200);
    probe(x, "probe_before", 2, 2);
    dx_send(x, JK_RST, 2, 0, NULL, 0, NULL);
    note(x, "rst_exact", 200);
    probe(x, "probe", 2, 2);
}

/* ---------------------------------------------------------------------- */
/* SYN in the synchronized states, TIME-WAIT                               */
/* ---------------------------------------------------------------------- */

/* A SYN in ESTABLISHED (inside the window): a challenge ACK and the
 * connection stays (RFC 5961 §4.2, RFC 9293 §3.10.7.4 fourth). */
DX(close, syn_in_established, "ts", NULL, NULL)
{
    struct dx_opt o = dx_syn_opts(x);
    dx_open_passive(x, NULL);
    dx_send(x, JK_SYN, 1000, 0, NULL, 0, &o);
    note(x, "reply", 1000);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    dx_note_read(x, "app", 1000);
}

/* A new SYN (higher sequence number) in TIME-WAIT with a listener on the
 * port: the kernel opens the new connection (RFC 1122 §4.2.2.13 MAY);
 * jktcp answers with a challenge ACK (by design). */
DX(close, syn_in_time_wait, NULL, "reply",
   "jktcp answers a SYN in TIME-WAIT with a challenge ACK (RFC 5961 §4); it does not reopen "
   "the connection (its TIME-WAIT lasts 1 s)")
{
    struct dx_opt o = dx_syn_opts(x);
    to_time_wait(x);
    dx_send(x, JK_SYN, 100000, 0, NULL, 0, &o);
    note(x, "reply", 1000);
}

/* The same without a listener (the SUT opened actively): the kernel too
 * only acknowledges (tcp_timewait_state_process: no listener -> ACK). */
DX(close, syn_in_time_wait_active, NULL, NULL, NULL)
{
    struct dx_opt o = dx_syn_opts(x);
    dx_open_active(x, NULL);
    dx_close(x);
    note(x, "fin", 1000);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note(x, "ack", 1000);
    dx_send(x, JK_SYN, 100000, 0, NULL, 0, &o);
    note(x, "reply", 1000);
}

/* How long TIME-WAIT lasts: a FIN resent 1.5 s later is acknowledged
 * while the connection is in TIME-WAIT, else it gets a RST. */
DX(close, time_wait_length, NULL, "late_fin",
   "jktcp's TIME-WAIT lasts 1 s (kernel 60 s): the late FIN finds no connection")
{
    to_time_wait(x);
    dx_sleep_ms(1500);
    dx_send(x, JK_FIN | JK_ACK, 1, 2, NULL, 0, NULL);
    note(x, "late_fin", 1000);
}
