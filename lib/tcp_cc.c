/* SPDX-License-Identifier: MIT */
/*
 * Congestion control: how the window grows (RFC 5681).
 */
#include "tcp_int.h"

#include <errno.h>
#include <string.h>

void jk_tcp_grow_cwnd(struct jktcp_conn *c, uint32_t acked)
{
    if (!c->cfg.congestion)
        return;
    if (c->cwnd < c->ssthresh) {
        c->cwnd += acked; /* slow start, byte counting (our ACKs may stretch) */
    } else {
        c->cwnd_acc += acked;
        if (c->cwnd_acc >= c->cwnd) {
            c->cwnd_acc -= c->cwnd;
            c->cwnd += c->smss;
        }
    }
    uint32_t cap = c->max_snd_wnd + 16u * c->smss;
    if (c->cwnd > cap && cap > c->max_snd_wnd)
        c->cwnd = cap; /* no point growing far past what the peer allows */
}
