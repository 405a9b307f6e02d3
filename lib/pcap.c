/* SPDX-License-Identifier: MIT */
/* pcap capture writer: classic format, microsecond timestamps, LINKTYPE_RAW.
 * Fields are in host byte order; readers tell it from the magic. */
#include "pcap.h"

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
