/* SPDX-License-Identifier: MIT */
/*
 * Proportional Rate Reduction (RFC 6937): the window during SACK
 * recovery, for the controllers that cut to an ssthresh (NewReno, CUBIC).
 *
 * Without it the window drops to ssthresh at once: the sender is silent
 * until the pipe has drained below it (half a round trip after a halving)
 * and then sends one segment per ACK. PRR spreads the cut over the round
 * trip instead — while the pipe is above ssthresh it sends ssthresh /
 * RecoverFS of what each ACK reports delivered (one segment per two ACKs
 * after a halving), so the ACK clock never stops; below ssthresh it slow
 * starts back up to it, but sends at most what was delivered plus one
 * segment per ACK (the slow-start reduction bound, PRR-SSRB).
 *
 * The engine's sending is limited by cwnd - pipe, so PRR sets cwnd to
 * pipe + sndcnt on every ACK of the recovery (as Linux does). It works in
 * bytes and lets whole segments go: the credit left over carries to the
 * next ACK. Not after a timeout (slow start rules there) and not without
 * SACK (NewReno's window inflation stands in for the pipe there).
 */
#include "tcp_int.h"

/* A recovery begins; `cut`: the controller lowered ssthresh (not a lost
 * path-MTU probe), so there is a reduction to spread. */
void jk_prr_begin(struct jk_tcp *c, bool cut)
{
    c->rec.prr_on = cut && c->sack_ok && c->cc.ops->prr;
    c->rec.prr_delivered = 0;
    c->rec.prr_out = 0;
    c->rec.recover_fs = max_u32(c->snd_nxt - c->snd_una, 1); /* RFC 6937 §3: RecoverFS */
}

static bool prr_active(struct jk_tcp *c)
{
    return c->rec.prr_on && c->rec.in_recovery && !c->rec.rto_recovery && c->cfg.congestion &&
           c->cc.ops->prr;
}

/* len bytes (new or resent) went out. */
void jk_prr_sent(struct jk_tcp *c, uint32_t len)
{
    if (prr_active(c))
        c->rec.prr_out += len;
}

/* An ACK of the recovery reported `delivered` bytes newly acked or SACKed
 * (RFC 6937's DeliveredData). */
void jk_prr_on_ack(struct jk_tcp *c, uint32_t delivered)
{
    if (!prr_active(c) || !delivered)
        return; /* a window update or the peer's data: no ACK clock (as Linux) */
    c->rec.prr_delivered += delivered;
    uint32_t pipe = jk_tcp_pipe(c);
    uint32_t ssthresh = c->cc.ssthresh;
    uint64_t sndcnt;
    if (pipe > ssthresh) { /* proportional part */
        uint64_t allowed =
            ((uint64_t)c->rec.prr_delivered * ssthresh + c->rec.recover_fs - 1) / c->rec.recover_fs;
        sndcnt = allowed > c->rec.prr_out ? allowed - c->rec.prr_out : 0;
    } else { /* PRR-SSRB */
        uint32_t owed = c->rec.prr_delivered > c->rec.prr_out ? c->rec.prr_delivered - c->rec.prr_out : 0;
        uint64_t limit = (uint64_t)max_u32(owed, delivered) + c->smss;
        sndcnt = ssthresh - pipe < limit ? ssthresh - pipe : limit;
    }
    sndcnt -= sndcnt % c->smss;
    c->cc.cwnd = pipe + (uint32_t)sndcnt;
}
