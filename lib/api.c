/* SPDX-License-Identifier: MIT */
/* Public adapter API: creation, options, polling, stats, listeners,
 * plus jktcp_version / jktcp_strerror. */
#include "adapter.h"
#include "pcap.h"
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x)

JKTCP_API const char *jktcp_version(void)
{
    return "jktcp " STR(JKTCP_VERSION_MAJOR) "." STR(JKTCP_VERSION_MINOR) "." STR(
        JKTCP_VERSION_PATCH);
}

JKTCP_API unsigned jktcp_version_number(void)
{
    return JKTCP_VERSION_NUMBER;
}

JKTCP_API const char *jktcp_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error";
    if (err < 0)
        err = -err;
    switch (err) {
    case 0: return "success";
    case EINVAL: return "invalid argument";
    case ENOMEM: return "out of memory";
    case EAGAIN: return "would block / wait timed out";
    case ETIMEDOUT: return "connection timed out";
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset by peer";
    case EPIPE: return "broken pipe (write side shut down, or transport at end of stream)";
    case ENOTCONN: return "not connected";
    case EINPROGRESS: return "connection in progress";
    case EMFILE: return "too many connections";
    case EADDRINUSE: return "port already in use";
    case EADDRNOTAVAIL: return "no free ephemeral port";
    case EPROTO: return "transport lost framing";
    case EMSGSIZE: return "frame too large";
    case EBADF: return "closed or unknown id";
    case EBUSY: return "busy";
    case ENOBUFS: return "no buffer space";
    case EIO: return "I/O error";
    case ESHUTDOWN: return "handle stopped";
    case ENETDOWN: return "transport failed (see jktcp_handle_error)";
    case EINTR: return "interrupted by a signal handler";
    case ECANCELED: return "cancelled";
    default: return strerror(err);
    }
}

JKTCP_API const char *jktcp_state_name(int state)
{
    static const char *const names[] = {
        "CLOSED",   "LISTEN",     "SYN_SENT", "SYN_RCVD",  "ESTABLISHED", "FIN_WAIT_1",
        "FIN_WAIT_2", "CLOSING", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK",
    };
    if (state < 0 || state >= (int)(sizeof names / sizeof names[0]))
        return "UNKNOWN";
    return names[state];
}

JKTCP_API int jktcp_adapter_new(jktcp_transport *t, const char *local_ip, const char *peer_ip,
                                jktcp_adapter **out)
{
    if (!t)
        return -EINVAL;
    if (!out) {
        jktcp_transport_free(t);
        return -EINVAL;
    }
    int r = jk_adapter_create(t, local_ip, peer_ip, out);
    if (r < 0)
        jktcp_transport_free(t);
    return r;
}

JKTCP_API void jktcp_adapter_free(jktcp_adapter *a)
{
    if (a)
        jk_adapter_destroy(a);
}

JKTCP_API int jktcp_adapter_set_mtu(jktcp_adapter *a, unsigned mtu)
{
    CHECK_ADAPTER(a);
    unsigned lo = a->env.local.family == 4 ? 576 : 1280;
    if (mtu < lo || mtu > 65535)
        return -EINVAL;
    a->env.mtu = mtu;
    jk_path_reset(&a->env);
    return 0;
}

JKTCP_API int jktcp_adapter_set_mss(jktcp_adapter *a, unsigned mss)
{
    CHECK_ADAPTER(a);
    if (mss && (mss < 64 || mss > 65535))
        return -EINVAL;
    a->env.mss_cap = mss;
    return 0;
}

static int check_range(long v, long lo, long hi)
{
    return v < lo || v > hi ? -EINVAL : 0;
}

JKTCP_API int jktcp_adapter_set_option(jktcp_adapter *a, jktcp_option opt, long v)
{
    CHECK_ADAPTER(a);
    struct jk_cfg *c = &a->env.cfg;
    switch (opt) {
    case JKTCP_OPT_SNDBUF:
        if (check_range(v, 4096, 1L << 30))
            return -EINVAL;
        c->sndbuf = (uint32_t)v;
        return 0;
    case JKTCP_OPT_RCVBUF:
        if (check_range(v, 4096, 1L << 30))
            return -EINVAL;
        c->rcvbuf = (uint32_t)v;
        return 0;
    case JKTCP_OPT_NODELAY: c->nodelay = v != 0; return 0;
    case JKTCP_OPT_CONGESTION:
        if (check_range(v, JKTCP_CC_OFF, JKTCP_CC_BBR))
            return -EINVAL;
        c->congestion = (uint8_t)v;
        return 0;
    case JKTCP_OPT_SACK: c->sack = v != 0; return 0;
    case JKTCP_OPT_TIMESTAMPS: c->timestamps = v != 0; return 0;
    case JKTCP_OPT_TAIL_PROBE: c->tlp = v != 0; return 0;
    case JKTCP_OPT_DELACK_US:
        if (check_range(v, 0, 500000))
            return -EINVAL;
        c->delack_us = (uint32_t)v;
        return 0;
    case JKTCP_OPT_TIMEWAIT_MS:
        if (check_range(v, 0, 240000))
            return -EINVAL;
        c->timewait_us = (uint32_t)v * 1000;
        return 0;
    case JKTCP_OPT_KEEPALIVE_MS:
        if (check_range(v, 0, 7200000))
            return -EINVAL;
        c->keepalive_us = (uint32_t)v * 1000;
        return 0;
    case JKTCP_OPT_RTO_MIN_MS:
        if (check_range(v, 1, 60000))
            return -EINVAL;
        c->rto_min_us = (uint32_t)v * 1000;
        return 0;
    case JKTCP_OPT_RTO_MAX_MS:
        if (check_range(v, 1, 600000))
            return -EINVAL;
        c->rto_max_us = (uint32_t)v * 1000;
        return 0;
    case JKTCP_OPT_RTO_INIT_MS:
        if (check_range(v, 1, 60000))
            return -EINVAL;
        c->rto_init_us = (uint32_t)v * 1000;
        return 0;
    case JKTCP_OPT_MAX_RETRIES:
        if (check_range(v, 1, 100))
            return -EINVAL;
        c->max_retries = (uint32_t)v;
        return 0;
    case JKTCP_OPT_MAX_CONNS:
        if (check_range(v, 1, 1L << 20))
            return -EINVAL;
        a->max_conns = (uint32_t)v;
        return 0;
    case JKTCP_OPT_OOO_RANGES:
        if (check_range(v, 1, JK_MAX_OOO))
            return -EINVAL;
        c->max_ooo = (uint32_t)v;
        return 0;
    case JKTCP_OPT_PMTU_PROBE:
        if (check_range(v, 0, 2))
            return -EINVAL;
        a->env.path.mode = (uint8_t)v;
        jk_path_reset(&a->env);
        return 0;
    case JKTCP_OPT_BUSY_POLL_US:
        if (check_range(v, 0, 1000))
            return -EINVAL;
        a->busy_poll_us = (uint32_t)v;
        return 0;
    }
    return -EINVAL;
}

JKTCP_API int jktcp_adapter_get_option(jktcp_adapter *a, jktcp_option opt, long *v)
{
    CHECK_ADAPTER(a);
    if (!v)
        return -EINVAL;
    const struct jk_cfg *c = &a->env.cfg;
    switch (opt) {
    case JKTCP_OPT_SNDBUF: *v = c->sndbuf; return 0;
    case JKTCP_OPT_RCVBUF: *v = c->rcvbuf; return 0;
    case JKTCP_OPT_NODELAY: *v = c->nodelay; return 0;
    case JKTCP_OPT_CONGESTION: *v = c->congestion; return 0;
    case JKTCP_OPT_SACK: *v = c->sack; return 0;
    case JKTCP_OPT_TIMESTAMPS: *v = c->timestamps; return 0;
    case JKTCP_OPT_TAIL_PROBE: *v = c->tlp; return 0;
    case JKTCP_OPT_DELACK_US: *v = c->delack_us; return 0;
    case JKTCP_OPT_TIMEWAIT_MS: *v = c->timewait_us / 1000; return 0;
    case JKTCP_OPT_KEEPALIVE_MS: *v = c->keepalive_us / 1000; return 0;
    case JKTCP_OPT_RTO_MIN_MS: *v = c->rto_min_us / 1000; return 0;
    case JKTCP_OPT_RTO_MAX_MS: *v = c->rto_max_us / 1000; return 0;
    case JKTCP_OPT_RTO_INIT_MS: *v = c->rto_init_us / 1000; return 0;
    case JKTCP_OPT_MAX_RETRIES: *v = c->max_retries; return 0;
    case JKTCP_OPT_MAX_CONNS: *v = a->max_conns; return 0;
    case JKTCP_OPT_OOO_RANGES: *v = c->max_ooo; return 0;
    case JKTCP_OPT_PMTU_PROBE: *v = a->env.path.mode; return 0;
    case JKTCP_OPT_BUSY_POLL_US: *v = a->busy_poll_us; return 0;
    }
    return -EINVAL;
}

JKTCP_API int jktcp_adapter_set_clock(jktcp_adapter *a, uint64_t (*now_us)(void *), void *ctx)
{
    CHECK_ADAPTER(a);
    if (!now_us)
        return -EINVAL;
    a->clock = now_us;
    a->clock_ctx = ctx;
    a->custom_clock = true;
    a->env.now = 0;
    jk_now(a);
    return 0;
}

JKTCP_API int jktcp_adapter_pcap(jktcp_adapter *a, const char *path)
{
    CHECK_ADAPTER(a);
    return jk_pcap_capture(&a->t, path); /* wraps the adapter's transport (pcap.c) */
}

JKTCP_API int jktcp_adapter_poll(jktcp_adapter *a, int timeout_ms)
{
    CHECK_ADAPTER(a);
    int n = jk_adapter_step(a);
    if (n != 0)
        return n < 0 ? n : 0;
    if (timeout_ms != 0) {
        int r = jk_adapter_wait(a, timeout_ms);
        if (r < 0 && r != -EINTR)
            return r;
        n = jk_adapter_step(a);
    }
    return n < 0 ? n : 0;
}

static bool all_flushed(void *arg)
{
    jktcp_adapter *a = arg;
    struct jktcp_conn *c;
    jk_list_each_entry(c, &a->all, struct jktcp_conn, all_link)
        if (!jk_tcp_flushed(&c->tcp))
            return false;
    return a->nrst == 0;
}

JKTCP_API int jktcp_adapter_flush(jktcp_adapter *a, int timeout_ms)
{
    CHECK_ADAPTER(a);
    return jk_adapter_drive(a, all_flushed, a, timeout_ms);
}

JKTCP_API int jktcp_adapter_fd(jktcp_adapter *a)
{
    CHECK_ADAPTER(a);
    return jk_transport_poll_fd(a->t);
}

JKTCP_API int jktcp_adapter_timeout(jktcp_adapter *a)
{
    CHECK_ADAPTER(a);
    return jk_adapter_next_timeout(a);
}

JKTCP_API int jktcp_adapter_stats(jktcp_adapter *a, jktcp_stats *out, size_t size)
{
    CHECK_ADAPTER(a);
    return jk_copy_out(out, size, &a->st, sizeof a->st);
}
