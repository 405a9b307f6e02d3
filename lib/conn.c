/* SPDX-License-Identifier: MIT */
/* Public connection API for the single-threaded adapter. Every blocking
 * call drives the adapter (jk_adapter_step / jk_adapter_wait) until its
 * condition holds or its timeout runs out. */
#include "conn.h"

#include "adapter.h"
#include "tcp_cc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IO (1u << 30) /* larger requests are served in parts */

typedef bool (*cond_fn)(void *conn);

static int drive_until(struct jktcp_conn *c, cond_fn cond, int timeout_ms)
{
    return jk_adapter_drive(c->a, cond, c, timeout_ms);
}

static bool connect_done(void *arg)
{
    struct jktcp_conn *c = arg;
    return c->tcp.state != JKTCP_SYN_SENT && c->tcp.state != JKTCP_SYN_RCVD;
}

JKTCP_API int jktcp_adapter_connect(jktcp_adapter *a, int port, int timeout_ms, jktcp_conn **out)
{
    int err = 0;
    if (out)
        *out = NULL;
    if (!a || !out || port < 1 || port > 65535)
        return -EINVAL;
    if (a->owner)
        return -EBUSY;
    *out = NULL;
    if (a->err)
        return -ENETDOWN;
    jk_now(a);
    struct jktcp_conn *c = jk_adapter_new_conn(a, 0, (uint16_t)port, true, &err);
    if (!c)
        return err;
    jk_tcp_connect(&c->tcp);
    jk_adapter_output(a);
    if (timeout_ms == 0) {
        *out = c;
        return -EINPROGRESS;
    }
    int r = drive_until(c, connect_done, timeout_ms);
    if (r == 0 && c->tcp.state != JKTCP_CLOSED) {
        *out = c;
        return 0;
    }
    if (r == 0 || r == -EAGAIN)
        r = c->tcp.err ? c->tcp.err : -ETIMEDOUT;
    jk_tcp_abort(&c->tcp, false);
    jk_adapter_release(c);
    return r;
}

JKTCP_API int jktcp_conn_connect(jktcp_adapter *a, int port, int timeout_ms, jktcp_conn **out)
{
    return jktcp_adapter_connect(a, port, timeout_ms, out);
}

static bool readable(void *arg)
{
    struct jktcp_conn *c = arg;
    return (c->tcp.rcv.buf && jk_ring_used(&c->tcp.rcv) > 0) || c->tcp.fin_rcvd || c->tcp.err ||
           c->tcp.state == JKTCP_CLOSED;
}

JKTCP_API ssize_t jktcp_conn_read(jktcp_conn *c, void *buf, size_t len, int timeout_ms)
{
    if (!c || (!buf && len))
        return -EINVAL;
    if (c->a->owner)
        return -EBUSY;
    if (len == 0)
        return 0;
    if (len > MAX_IO)
        len = MAX_IO;
    int r = drive_until(c, readable, timeout_ms);
    if (c->tcp.rcv.buf && jk_ring_used(&c->tcp.rcv) > 0) {
        uint32_t n = jk_ring_read(&c->tcp.rcv, buf, (uint32_t)len);
        jk_tcp_app_read(&c->tcp);
        jk_adapter_output(c->a);
        return n;
    }
    if (c->tcp.fin_rcvd)
        return 0;
    if (c->tcp.err)
        return c->tcp.err;
    if (c->tcp.state == JKTCP_CLOSED)
        return -ENOTCONN;
    return r;
}

static bool writable(void *arg)
{
    struct jktcp_conn *c = arg;
    return c->tcp.err || c->tcp.state == JKTCP_CLOSED || c->tcp.fin_queued ||
           (c->tcp.snd.buf && jk_ring_free_space(&c->tcp.snd) > 0);
}

static int write_error(struct jktcp_conn *c)
{
    if (c->tcp.err)
        return c->tcp.err;
    if (c->tcp.fin_queued)
        return -EPIPE;
    if (c->tcp.state == JKTCP_CLOSED)
        return -ENOTCONN;
    return 0;
}

JKTCP_API ssize_t jktcp_conn_write(jktcp_conn *c, const void *buf, size_t len, int timeout_ms)
{
    if (!c || (!buf && len))
        return -EINVAL;
    if (c->a->owner)
        return -EBUSY;
    int e = write_error(c);
    if (e)
        return e;
    if (len == 0)
        return 0;
    if (len > MAX_IO)
        len = MAX_IO;
    size_t done = 0;
    uint64_t deadline = jk_now(c->a) + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000;
    for (;;) {
        uint32_t n = jk_ring_write(&c->tcp.snd, (const uint8_t *)buf + done, (uint32_t)(len - done));
        if (n) {
            done += n;
            jk_adapter_mark_dirty(c);
            jk_adapter_output(c->a);
        }
        if (done == len)
            return (ssize_t)done;
        int left = -1;
        if (timeout_ms >= 0) {
            uint64_t now = jk_now(c->a);
            left = now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);
        }
        int r = left == 0 ? -EAGAIN : drive_until(c, writable, left);
        if ((e = write_error(c)))
            return done ? (ssize_t)done : e;
        if (r < 0)
            return done ? (ssize_t)done : r;
    }
}

JKTCP_API int jktcp_conn_shutdown(jktcp_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->a->owner)
        return -EBUSY;
    if (c->tcp.state == JKTCP_CLOSED)
        return c->tcp.err ? c->tcp.err : -ENOTCONN;
    jk_tcp_shutdown(&c->tcp);
    jk_adapter_output(c->a);
    return 0;
}

JKTCP_API int jktcp_conn_close(jktcp_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->a->owner)
        return -EBUSY;
    struct jktcp_adapter *a = c->a;
    jk_tcp_close(&c->tcp, false);
    jk_adapter_mark_dirty(c); /* re-arm its timers */
    jk_adapter_release(c);
    jk_adapter_output(a);
    return 0;
}

JKTCP_API int jktcp_conn_abort(jktcp_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->a->owner)
        return -EBUSY;
    struct jktcp_adapter *a = c->a;
    jk_tcp_abort(&c->tcp, true);
    jk_adapter_release(c);
    jk_adapter_output(a);
    return 0;
}

JKTCP_API int jktcp_conn_error(jktcp_conn *c)
{
    if (!c)
        return -EINVAL;
    return c->a->owner ? -EBUSY : c->tcp.err;
}

JKTCP_API int jktcp_conn_info(jktcp_conn *c, jktcp_info *o, size_t size)
{
    if (!c || !o || !size)
        return -EINVAL;
    if (c->a->owner)
        return -EBUSY;
    jktcp_info info;
    jk_conn_info_internal(c, &info);
    return jk_copy_out(o, size, &info, sizeof info);
}

JKTCP_API int jktcp_conn_set_congestion(jktcp_conn *c, int cc)
{
    if (!c)
        return -EINVAL;
    if (c->a->owner)
        return -EBUSY;
    return jk_conn_set_congestion_internal(c, cc);
}

int jk_conn_set_congestion_internal(struct jktcp_conn *c, int cc)
{
    if (c->tcp.state == JKTCP_CLOSED)
        return -ENOTCONN;
    return jk_cc_select(&c->tcp, cc);
}

int jk_conn_info_internal(struct jktcp_conn *c, jktcp_info *o)
{
    memset(o, 0, sizeof *o);
    o->state = c->tcp.state;
    o->local_port = c->tcp.lport;
    o->remote_port = c->tcp.rport;
    o->bytes_sent = c->tcp.bytes_acked;
    o->bytes_received = c->tcp.bytes_delivered;
    o->bytes_queued = c->tcp.snd.buf ? jk_ring_used(&c->tcp.snd) : 0;
    o->bytes_readable = c->tcp.rcv.buf ? jk_ring_used(&c->tcp.rcv) : 0;
    o->srtt_us = c->tcp.rtt.srtt_us;
    o->rttvar_us = c->tcp.rtt.rttvar_us;
    o->rto_us = c->tcp.rtt.rto_us;
    o->retransmits = c->tcp.retransmits;
    o->timeouts = c->tcp.timeouts;
    o->tail_probes = c->tcp.tail_probes;
    o->recoveries = c->tcp.recoveries;
    o->mss = c->tcp.smss;
    o->cwnd = c->tcp.cc.cwnd;
    o->ssthresh = c->tcp.cc.ssthresh;
    o->snd_wnd = c->tcp.snd_wnd;
    o->rcv_wnd = c->tcp.rcv_adv - c->tcp.rcv_nxt;
    o->snd_wscale = c->tcp.snd_wscale;
    o->rcv_wscale = c->tcp.rcv_wscale;
    o->sack = c->tcp.sack_ok;
    o->timestamps = c->tcp.ts_ok;
    o->pmtu = c->a->env.pmtu;
    o->soft_error = c->tcp.soft_err;
    o->congestion = c->tcp.cfg.congestion;
    o->dsacks = c->tcp.rec.dsacks;
    o->delivery_rate = jk_cc_delivery_rate(&c->tcp);
    o->pacing_rate = c->tcp.cc.pacing_bps;
    o->spurious = c->tcp.rec.spurious;
    o->undos = c->tcp.rec.undos;
    o->spurious_rtos = c->tcp.rec.spurious_rtos;
    return 0;
}
