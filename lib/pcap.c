/* SPDX-License-Identifier: MIT */
/* pcap capture: the writer (classic format, microsecond timestamps,
 * LINKTYPE_RAW; fields in host byte order, readers tell it from the magic)
 * and the transport wrapper that feeds it every frame the adapter
 * receives or hands on. */
#include "pcap.h"
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PCAP_SNAPLEN 262144u
#define LINKTYPE_RAW 101u
/* Captures are written per frame on the hot path: batch them. */
#define PCAP_BUF (1u << 20)

struct jk_pcap {
    FILE *f;
    char *buf;
};

struct pcap_global {
    uint32_t magic;
    uint16_t major, minor;
    int32_t thiszone;
    uint32_t sigfigs, snaplen, network;
};

struct pcap_record {
    uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

_Static_assert(sizeof(struct pcap_global) == 24, "pcap global header is 24 bytes");
_Static_assert(sizeof(struct pcap_record) == 16, "pcap record header is 16 bytes");

static void pcap_free(struct jk_pcap *p)
{
    if (p->f)
        fclose(p->f);
    free(p->buf);
    free(p);
}

int jk_pcap_open(const char *path, struct jk_pcap **out)
{
    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    struct jk_pcap *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->buf = malloc(PCAP_BUF);
    p->f = fopen(path, "wbe");
    int err = p->f ? 0 : errno;
    if (!err && (!p->buf || setvbuf(p->f, p->buf, _IOFBF, PCAP_BUF)))
        err = ENOMEM;
    struct pcap_global g = {PCAP_MAGIC_USEC, 2, 4, 0, 0, PCAP_SNAPLEN, LINKTYPE_RAW};
    if (!err && fwrite(&g, sizeof g, 1, p->f) != 1)
        err = errno ? errno : EIO;
    if (err) {
        pcap_free(p);
        return -err;
    }
    *out = p;
    return 0;
}

void jk_pcap_write(struct jk_pcap *p, const uint8_t *frame, size_t len)
{
    if (!p || !frame)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t incl = len < PCAP_SNAPLEN ? len : PCAP_SNAPLEN;
    struct pcap_record r = {(uint32_t)ts.tv_sec, (uint32_t)(ts.tv_nsec / 1000), (uint32_t)incl,
                            (uint32_t)len};
    /* A failed capture write must not disturb the connection: ignore it. */
    if (fwrite(&r, sizeof r, 1, p->f) == 1)
        (void)!fwrite(frame, 1, incl, p->f);
}

void jk_pcap_close(struct jk_pcap *p)
{
    if (p)
        pcap_free(p);
}

/* ---- the capturing transport -------------------------------------------- */

/* Wraps the adapter's transport while a capture runs. Records what the
 * adapter sees: frames as received from the inner transport (after any
 * fault wrapper below), and frames the inner transport accepted (before
 * it), each when it passes. */
struct pcap_transport {
    jktcp_transport base;
    jktcp_transport *inner; /* owned */
    struct jk_pcap *cap;
};

static int pc_recv(jktcp_transport *base, const uint8_t **frame, size_t *len)
{
    struct pcap_transport *t = (struct pcap_transport *)base;
    int r = jk_transport_recv(t->inner, frame, len);
    if (r == 1) {
        jk_pcap_write(t->cap, *frame, *len);
        base->rx_csum_ours = jk_transport_rx_csum_ours(t->inner); /* the same bytes */
    }
    return r;
}

static int pc_send(jktcp_transport *base, const uint8_t *frame, size_t len)
{
    struct pcap_transport *t = (struct pcap_transport *)base;
    int r = jk_transport_send(t->inner, frame, len);
    if (r == 0) /* taken (a refused frame comes again and is recorded then) */
        jk_pcap_write(t->cap, frame, len);
    return r;
}

static int pc_flush(jktcp_transport *base)
{
    return jk_transport_flush(((struct pcap_transport *)base)->inner);
}

static bool pc_pending(const jktcp_transport *base)
{
    return jk_transport_pending(((const struct pcap_transport *)base)->inner);
}

static int pc_poll_fd(const jktcp_transport *base)
{
    return jk_transport_poll_fd(((const struct pcap_transport *)base)->inner);
}

static short pc_poll_events(const jktcp_transport *base)
{
    return jk_transport_poll_events(((const struct pcap_transport *)base)->inner);
}

static int pc_set_flags(jktcp_transport *base, unsigned flags)
{
    return jktcp_transport_set_flags(((struct pcap_transport *)base)->inner, flags);
}

static void pc_destroy(jktcp_transport *base)
{
    struct pcap_transport *t = (struct pcap_transport *)base;
    jk_pcap_close(t->cap);
    jktcp_transport_free(t->inner);
    free(t);
}

static const struct jk_transport_ops pcap_ops = JK_TRANSPORT_OPS(pc);

/* Stop capturing: the wrapper goes, its inner transport takes its place. */
static void unwrap(jktcp_transport **tp)
{
    struct pcap_transport *w = (struct pcap_transport *)*tp;
    *tp = w->inner;
    jk_pcap_close(w->cap);
    free(w);
}

int jk_pcap_capture(jktcp_transport **tp, const char *path)
{
    struct pcap_transport *w = (*tp)->ops == &pcap_ops ? (struct pcap_transport *)*tp : NULL;
    struct jk_pcap *cap = NULL;
    if (path) {
        int r = jk_pcap_open(path, &cap);
        if (r < 0)
            return r; /* a running capture goes on */
    }
    if (w && !cap) {
        unwrap(tp);
    } else if (w) {
        jk_pcap_close(w->cap);
        w->cap = cap;
    } else if (cap) {
        w = calloc(1, sizeof *w);
        if (!w) {
            jk_pcap_close(cap);
            return -ENOMEM;
        }
        w->base = (jktcp_transport){.ops = &pcap_ops, .framing = jk_transport_framing(*tp)};
        w->inner = *tp;
        w->cap = cap;
        *tp = &w->base;
    }
    return 0;
}
