/* SPDX-License-Identifier: MIT */
/*
 * RACK (RFC 8985 §6.2): a lost retransmission found by time, not by
 * waiting for the pass to come round; and when each byte of new data in
 * flight went (the sent list), for the hole that starts a recovery.
 *
 * The repair pass (tcp_recovery.c) resends the holes in order. A resend
 * can be lost too; before this file only the one at snd_una was checked
 * on its own (head_lost_again), the others when the whole pass was over.
 * Here each resend of a recovery episode keeps its send time, in a log
 * ordered by that time; with the sent list at the end of this file (when
 * new data went, in runs: new data goes out in sequence order) it is RFC
 * 8985's time-ordered list of transmissions. A resend is lost once
 * something sent after it has been delivered — a later resend, or new
 * data above what had been sent when it went — and a round trip plus the
 * reordering window has passed since it went (RFC 8985 §6.2 step 5). It
 * then goes again ahead of the pass.
 *
 * The log holds JK_RACK_LOG resends; when it is full the oldest is
 * dropped and the pass's own rule covers it.
 */
#include "tcp_int.h"

#include <string.h>

void jk_rack_reset(struct jk_tcp *c)
{
    c->rec.nrlog = 0;
    c->rec.rack_sent_us = 0;
    c->rec.rack_end = c->snd_una;
}

static void log_remove(struct jk_tcp *c, int i)
{
    memmove(&c->rec.rlog[i], &c->rec.rlog[i + 1], (size_t)(c->rec.nrlog - i - 1) * sizeof c->rec.rlog[0]);
    c->rec.nrlog--;
}

/* [seq, end) went again now: it supersedes what the log held for those
 * bytes (an older resend keeps only the part not sent again). */
void jk_rack_resent(struct jk_tcp *c, uint32_t seq, uint32_t end)
{
    if (!c->rec.in_recovery || !c->sack_ok || !seq_lt(seq, end))
        return;
    uint32_t lo = seq, hi = end;
    for (int i = 0; i < c->rec.nrlog;) {
        struct jk_resend *r = &c->rec.rlog[i];
        if (!seq_lt(seq, r->end) || !seq_lt(r->seq, end)) { /* no overlap */
            i++;
            continue;
        }
        if (seq_gt(seq, r->seq) && seq_lt(end, r->end)) {
            /* sent again in its middle (the bytes before were SACKed
             * meanwhile): the new resend stands for all of it, or the
             * older one would stay lost and be picked again forever */
            lo = r->seq;
            hi = r->end;
            log_remove(c, i);
            continue;
        }
        if (seq_le(seq, r->seq) && seq_ge(end, r->end)) {
            log_remove(c, i);
            continue;
        }
        if (seq_le(seq, r->seq))
            r->seq = end;
        else
            r->end = seq;
        i++;
    }
    if (c->rec.nrlog == JK_RACK_LOG)
        log_remove(c, 0);
    c->rec.rlog[c->rec.nrlog++] = (struct jk_resend){
        .seq = lo, .end = hi, .hi = c->snd_max, .sent_us = NOW(c)};
}

static bool delivered(struct jk_tcp *c, const struct jk_resend *r)
{
    return seq_le(r->end, c->snd_una) ||
           jk_tcp_sacked_in(c, seq_max(r->seq, c->snd_una), r->end) == r->end - seq_max(r->seq, c->snd_una);
}

/* Sent before the latest delivered resend (RFC 8985 §6.2 step 5's
 * RACK_sent_after, with the end sequence as tie-break for one burst). */
static bool sent_before_delivered(struct jk_tcp *c, const struct jk_resend *r)
{
    if (!c->rec.rack_sent_us)
        return false;
    return r->sent_us < c->rec.rack_sent_us ||
           (r->sent_us == c->rec.rack_sent_us && seq_lt(r->end, c->rec.rack_end));
}

/* After an ACK or when the RACK timer fires, in recovery: note the
 * delivered resends, mark the lost ones, and arm the timer for those that
 * are overtaken but still inside their round trip and reordering window.
 * Whether any was newly found lost. */
bool jk_rack_detect(struct jk_tcp *c)
{
    if (!c->rec.nrlog)
        return false;
    for (int i = 0; i < c->rec.nrlog;) {
        struct jk_resend *r = &c->rec.rlog[i];
        if (!delivered(c, r)) {
            i++;
            continue;
        }
        bool original = NOW(c) - r->sent_us < c->rtt.min_rtt_us; /* §6.2 step 2 */
        if (!original && (r->sent_us > c->rec.rack_sent_us ||
                          (r->sent_us == c->rec.rack_sent_us && seq_gt(r->end, c->rec.rack_end)))) {
            c->rec.rack_sent_us = r->sent_us;
            c->rec.rack_end = r->end;
        }
        log_remove(c, i);
    }
    uint32_t top = jk_tcp_highest_delivered(c);
    uint64_t wait = (uint64_t)c->rtt.srtt_us + jk_tcp_reo_wnd_us(c);
    bool found = false;
    for (int i = 0; i < c->rec.nrlog; i++) {
        struct jk_resend *r = &c->rec.rlog[i];
        if (r->lost || !(sent_before_delivered(c, r) || seq_gt(top, r->hi)))
            continue;
        uint64_t due = r->sent_us + wait;
        if (NOW(c) >= due) {
            r->lost = true;
            c->rec.rack_lost++;
            found = true;
        } else if (!c->timer[JK_T_RACK] || c->timer[JK_T_RACK] > due) {
            c->timer[JK_T_RACK] = due;
        }
    }
    return found;
}

/* Part of lost resend r the pass has already passed (below rexmit_hi) and
 * the peer does not hold: [*from, *to). False if none. */
static bool lost_part(struct jk_tcp *c, const struct jk_resend *r, uint32_t *from, uint32_t *to)
{
    *from = seq_max(r->seq, c->snd_una);
    *to = seq_min(seq_min(r->end, c->rec.rexmit_hi), c->snd_nxt);
    return r->lost && seq_lt(*from, *to);
}

/* The first byte of the lowest lost resend still missing, which the pass
 * will not reach again by itself. */
bool jk_rack_next_lost(struct jk_tcp *c, uint32_t *seq)
{
    bool any = false;
    for (int i = 0; i < c->rec.nrlog; i++) {
        uint32_t from, to;
        if (!lost_part(c, &c->rec.rlog[i], &from, &to))
            continue;
        uint32_t s = jk_ranges_skip(c->rec.sack, c->rec.nsack, from);
        if (seq_lt(s, to) && (!any || seq_lt(s, *seq))) {
            *seq = s;
            any = true;
        }
    }
    return any;
}

/* Bytes of lost resends the pipe must not count (RFC 6675's pipe leaves
 * out what is deemed lost and not yet sent again). */
uint32_t jk_rack_lost_bytes(struct jk_tcp *c)
{
    uint32_t n = 0;
    for (int i = 0; i < c->rec.nrlog; i++) {
        uint32_t from, to;
        if (lost_part(c, &c->rec.rlog[i], &from, &to))
            n += (to - from) - jk_tcp_sacked_in(c, from, to);
    }
    return n;
}

/* ---- the sent list: when each byte of new data in flight went ----------
 * RFC 8985 keeps a transmit time per segment. New data leaves in sequence
 * order, so its times need no record per segment: the list holds runs of
 * bytes sent within a granule (min_rtt/16, well inside the reordering
 * window of min_rtt/4), oldest first; resends are in the log above. */

static struct jk_sent *sent_entry(struct jk_tcp *c, unsigned i)
{
    return &c->rec.sent[(c->rec.sent_head + i) % JK_SENT_LOG];
}

/* Drop the runs the peer has acknowledged. */
static void sent_trim(struct jk_tcp *c)
{
    while (c->rec.nsent && seq_le(sent_entry(c, 0)->end, c->snd_una)) {
        c->rec.sent_start = sent_entry(c, 0)->end;
        c->rec.sent_head = (uint8_t)((c->rec.sent_head + 1) % JK_SENT_LOG);
        c->rec.nsent--;
    }
}

void jk_rack_sent_forget(struct jk_tcp *c)
{
    c->rec.nsent = 0;
}

/* New data [seq, end) went for the first time now. */
void jk_rack_sent_new(struct jk_tcp *c, uint32_t seq, uint32_t end)
{
    uint32_t now = (uint32_t)NOW(c), granule = c->rtt.min_rtt_us / 16;
    sent_trim(c);
    struct jk_sent *last = c->rec.nsent ? sent_entry(c, c->rec.nsent - 1u) : NULL;
    if (last && last->end != seq) { /* not where the list ends: start over */
        c->rec.nsent = 0;
        last = NULL;
    }
    if (!last)
        c->rec.sent_start = seq;
    if (last && (now - last->first <= granule || c->rec.nsent == JK_SENT_LOG)) {
        last->end = end;
        last->last = now;
        return;
    }
    *sent_entry(c, c->rec.nsent++) = (struct jk_sent){.end = end, .first = now, .last = now};
}

/* When the byte at seq first went, if the list covers it: the earliest
 * or the latest time its run allows (a run spans a granule, or more when
 * the list was full) — each caller takes the bound that can only delay a
 * loss, never declare one early. */
bool jk_rack_sent_at(struct jk_tcp *c, uint32_t seq, bool latest, uint64_t *at_us)
{
    sent_trim(c);
    if (!c->rec.nsent || seq_lt(seq, c->rec.sent_start))
        return false;
    for (unsigned i = 0; i < c->rec.nsent; i++) {
        const struct jk_sent *e = sent_entry(c, i);
        if (seq_lt(seq, e->end)) {
            uint32_t at = latest ? e->last : e->first;
            *at_us = NOW(c) - (uint32_t)((uint32_t)NOW(c) - at);
            return true;
        }
    }
    return false;
}
