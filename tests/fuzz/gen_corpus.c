/* SPDX-License-Identifier: MIT */
/* Writes the seed corpora of the fuzz targets (make fuzz-corpus):
 *   gen_corpus <dir>  ->  <dir>/<target>/seed-<name>
 * Frames are built with jk_build_segment, so they are valid; the adapter
 * seeds are op scripts in the format the adapter targets decode (see the
 * comments at the top of fuzz_adapter_conn.c / fuzz_adapter_listen.c), the
 * fuzz_api_threads seeds op scripts for its threads. */
#include "fuzz_common.h"

#include "icmp.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/uio.h>

static const char *root;

static void put(const char *target, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(root, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/seed-%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- frames -------------------------------------------------------------- */

static struct jk_seg seg_of(int fam, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                            uint32_t ack)
{
    struct jk_seg s;
    memset(&s, 0, sizeof s);
    jk_addr_parse(fam == 4 ? "198.18.0.1" : "fd00::1", &s.src);
    jk_addr_parse(fam == 4 ? "198.18.0.2" : "fd00::2", &s.dst);
    s.sport = sport;
    s.dport = dport;
    s.flags = flags;
    s.seq = seq;
    s.ack = ack;
    s.wnd = 65535;
    return s;
}

static size_t build(uint8_t *buf, const struct jk_seg *s, size_t plen)
{
    uint8_t pay[4096];
    for (size_t i = 0; i < plen; i++)
        pay[i] = fz_peer_byte(s->seq + (uint32_t)i);
    struct iovec iov = {pay, plen};
    size_t n = jk_build_segment(buf, 70000, s, &iov, 1);
    if (!n) {
        fprintf(stderr, "build failed\n");
        exit(1);
    }
    return n;
}

static void syn_opts(struct jk_tcp_opts *o)
{
    o->has_mss = true;
    o->mss = 1460;
    o->has_wscale = true;
    o->wscale = 7;
    o->sack_ok = true;
    o->has_ts = true;
    o->tsval = 1000;
    o->tsecr = 0;
}

static void fix_ip4_csum(uint8_t *f)
{
    f[10] = f[11] = 0;
    uint16_t c = jk_csum_fold(jk_csum_add(0, f, (size_t)(f[0] & 15) * 4));
    f[10] = (uint8_t)(c >> 8);
    f[11] = (uint8_t)c;
}

static void parse_seeds(void)
{
    static uint8_t f[70000], g[70000];
    struct jk_seg s;
    size_t n;

    s = seg_of(4, 40000, 80, JK_SYN, 1000, 0);
    syn_opts(&s.opt);
    put("fuzz_parse", "syn4", f, build(f, &s, 0));
    s = seg_of(6, 40000, 80, JK_SYN | JK_ACK, 1000, 2000);
    syn_opts(&s.opt);
    put("fuzz_parse", "synack6", f, build(f, &s, 0));
    s = seg_of(4, 40000, 80, JK_ACK | JK_PSH, 1001, 2001);
    s.opt.has_ts = true;
    s.opt.tsval = 5;
    s.opt.tsecr = 6;
    put("fuzz_parse", "data4", f, build(f, &s, 100));
    s = seg_of(6, 40000, 80, JK_ACK | JK_FIN, 1001, 2001);
    put("fuzz_parse", "fin6", f, build(f, &s, 33));
    s = seg_of(4, 40000, 80, JK_ACK, 1001, 2001);
    s.opt.nsack = 3;
    for (int i = 0; i < 3; i++)
        s.opt.sack[i] = (struct jk_sack_block){3000u + 1000u * i, 3500u + 1000u * i};
    put("fuzz_parse", "sack4", f, build(f, &s, 0));
    s.opt.has_ts = true; /* ts + sack: two blocks fit */
    put("fuzz_parse", "sack-ts4", f, build(f, &s, 0));
    s = seg_of(6, 40000, 80, JK_ACK, 1001, 2001);
    s.opt.nsack = 4;
    for (int i = 0; i < 4; i++)
        s.opt.sack[i] = (struct jk_sack_block){3000u + 1000u * i, 3500u + 1000u * i};
    put("fuzz_parse", "sack6", f, build(f, &s, 10));
    s = seg_of(4, 1, 2, JK_RST, 7, 0);
    put("fuzz_parse", "rst4", f, build(f, &s, 0));
    /* ICMP errors quoting one of our segments (jk_parse_icmp) */
    for (int fam = 4; fam <= 6; fam += 2) {
        struct jk_addr rt;
        jk_addr_parse(fam == 4 ? "198.18.0.254" : "fd00::fe", &rt);
        s = seg_of(fam, 80, 40000, JK_ACK, 2001, 1001);
        s.src = s.dst; /* a segment we sent: from .2 to .1 */
        jk_addr_parse(fam == 4 ? "198.18.0.1" : "fd00::1", &s.dst);
        n = build(g, &s, 1400);
        n = jk_build_icmp(f, sizeof f, &rt, &s.src, fam == 4 ? 3 : 2, fam == 4 ? 4 : 0, 1280, g,
                          n);
        put("fuzz_parse", fam == 4 ? "icmp-too-big4" : "icmp-too-big6", f, n);
        n = jk_build_icmp(f, sizeof f, &rt, &s.src, fam == 4 ? 3 : 1, fam == 4 ? 3 : 4, 0, g, 48);
        put("fuzz_parse", fam == 4 ? "icmp-unreach4" : "icmp-unreach6", f, n);
    }

    /* IPv4 fragment: MF set, checksum fixed. */
    s = seg_of(4, 40000, 80, JK_ACK, 1001, 2001);
    n = build(f, &s, 64);
    f[6] = 0x20;
    fix_ip4_csum(f);
    put("fuzz_parse", "frag4", f, n);
    /* IPv4 with 4 bytes of IP options (NOPs + EOL). */
    n = build(g, &s, 64);
    f[0] = 0x46;
    memcpy(f + 1, g + 1, 19);
    memcpy(f + 20, (const uint8_t[]){1, 1, 1, 0}, 4);
    memcpy(f + 24, g + 20, n - 20);
    f[2] = (uint8_t)((n + 4) >> 8);
    f[3] = (uint8_t)(n + 4);
    fix_ip4_csum(f);
    put("fuzz_parse", "ipopts4", f, n + 4);
    /* IPv6 with a hop-by-hop header, and with a fragment header. */
    s = seg_of(6, 40000, 80, JK_ACK | JK_PSH, 1001, 2001);
    n = build(g, &s, 20);
    for (int frag = 0; frag < 2; frag++) {
        memcpy(f, g, 40);
        f[6] = frag ? 44 : 0;
        uint8_t ext[8] = {6, 0, frag ? 0 : 1, frag ? 0 : 4, 0, 0, 0, 0};
        memcpy(f + 40, ext, 8);
        memcpy(f + 48, g + 40, n - 40);
        uint16_t pl = (uint16_t)(n - 40 + 8);
        f[4] = (uint8_t)(pl >> 8);
        f[5] = (uint8_t)pl;
        put("fuzz_parse", frag ? "frag6" : "hbh6", f, n + 8);
    }
    /* UDP over IPv4 and IPv6. */
    uint8_t u4[28] = {0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
                      0x30, 0x39, 0, 53, 0, 8, 0, 0};
    fix_ip4_csum(u4);
    put("fuzz_parse", "udp4", u4, sizeof u4);
    uint8_t u6[48] = {0x60, 0, 0, 0, 0, 8, 17, 64};
    u6[8] = u6[24] = 0xfd;
    u6[23] = 1;
    u6[39] = 2;
    memcpy(u6 + 40, (const uint8_t[]){0x30, 0x39, 0, 53, 0, 8, 0, 0}, 8);
    put("fuzz_parse", "udp6", u6, sizeof u6);
    /* A large frame. */
    s = seg_of(4, 40000, 80, JK_ACK, 1001, 2001);
    put("fuzz_parse", "big4", f, build(f, &s, 4000));
}

/* ---- framer -------------------------------------------------------------- */

static void framer_seeds(void)
{
    static uint8_t b[200000], f[70000];
    struct jk_seg s;
    /* header: [flags][8 read codes][8 write codes] */
    static const uint8_t hdr[3][17] = {
        {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff},
        {1, 3, 0, 70, 129, 0, 200, 5, 64, 7, 0, 66, 1, 0xff, 0, 9, 130},
        {0, 1, 1, 2, 0, 63, 62, 0, 20, 0, 1, 2, 3, 0, 5, 0x41, 0x80},
    };
    for (int h = 0; h < 3; h++) {
        size_t n = 17;
        memcpy(b, hdr[h], 17);
        for (int i = 0; i < 6; i++) {
            s = seg_of(i & 1 ? 6 : 4, 40000, 80, JK_ACK | JK_PSH, 1000u + 300u * i, 1);
            n += build(b + n, &s, (size_t)(i * 60));
        }
        char name[32];
        snprintf(name, sizeof name, "frames-%d", h);
        put("fuzz_framer", name, b, n);
        /* then a truncated frame */
        s = seg_of(4, 1, 2, JK_ACK, 5, 6);
        size_t m = build(f, &s, 500);
        memcpy(b + n, f, m / 2);
        snprintf(name, sizeof name, "partial-%d", h);
        put("fuzz_framer", name, b, n + m / 2);
        /* then bytes that cannot start a frame */
        b[n] = 0x50;
        snprintf(name, sizeof name, "badver-%d", h);
        put("fuzz_framer", name, b, n + 8);
    }
    /* one maximal IPv6 frame */
    memcpy(b, hdr[1], 17);
    s = seg_of(6, 40000, 80, JK_ACK, 1, 1);
    size_t n = 17 + build(b + 17, &s, 4000);
    b[17 + 4] = 0xff; /* payload length 65535: only the framer cares */
    b[17 + 5] = 0xff;
    memset(b + n, 0x11, 65575 + 17 - n);
    put("fuzz_framer", "max6", b, 65575 + 17);
}

/* ---- adapter scripts ----------------------------------------------------- */

struct script {
    uint8_t b[4096];
    size_t n;
};

static void s8(struct script *s, unsigned v) { s->b[s->n++] = (uint8_t)v; }
static void s16(struct script *s, unsigned v)
{
    s8(s, v >> 8);
    s8(s, v);
}
static void s32(struct script *s, uint32_t v)
{
    s16(s, v >> 16);
    s16(s, v & 0xffff);
}

/* fz_structured args: flags^ACK, seq mode, ack mode, seq delta, [ack delta],
 * [wnd], len, opts */
static void seg_op(struct script *s, uint8_t flags, uint8_t sm, int16_t sd, uint8_t am, int8_t ad,
                   uint16_t len, uint8_t opts)
{
    s8(s, (flags | JK_ACK) ^ JK_ACK); /* the target XORs ACK back in */
    s8(s, sm);
    s8(s, am);
    s16(s, (uint16_t)sd);
    if ((sm & 3) == 3)
        s32(s, 12345);
    s8(s, (uint8_t)ad);
    if ((am & 3) == 3)
        s32(s, 777);
    if (sm & 4)
        s16(s, 65535);
    s16(s, len);
    s8(s, opts);
    if ((opts & 1) && (opts & 0x80))
        s32(s, 99);
    if (opts & 2)
        for (unsigned i = 0; i <= ((opts >> 2) & 3u); i++)
            s16(s, 1000 * (i + 1)), s16(s, 500);
    if (opts & 0x10)
        s16(s, 1460);
    if (opts & 0x20)
        s8(s, 7);
}

/* Conn target ops. */
enum { C_SEG = 0, C_RAW = 6, C_INORDER = 7, C_CLOCK = 8, C_POLL = 9, C_READ = 10, C_WRITE,
       C_SHUT, C_CLOSE, C_ABORT, C_INFO };

static void conn_head(struct script *s, uint8_t c0, uint8_t c1, uint8_t hs, uint8_t opts)
{
    s->n = 0;
    s8(s, c0);
    s8(s, c1);
    s8(s, hs);
    s32(s, 0x10000000);
    s16(s, 65535);
    s8(s, opts);
    if (opts & 0x10)
        s16(s, 1460);
    if (opts & 0x20)
        s8(s, 7);
    if (hs & 4)
        s8(s, 50);
}

static void conn_seeds(void)
{
    struct script s;
    /* v4, SACK+TS, SYN-ACK with mss/ws/sack_ok/ts; exchange data; both FIN. */
    conn_head(&s, 0x06, 0x05, 0, 0x71);
    s8(&s, C_INORDER), s8(&s, 0x1 | (10 << 3));
    s8(&s, C_READ), s16(&s, 5000);
    s8(&s, C_WRITE), s16(&s, 3000);
    s8(&s, C_INORDER), s8(&s, 0);
    s8(&s, C_CLOCK), s8(&s, 10);
    s8(&s, C_INFO);
    s8(&s, C_SHUT);
    s8(&s, C_INORDER), s8(&s, 0x2);
    s8(&s, C_READ), s16(&s, 100);
    s8(&s, C_CLOSE);
    put("fuzz_adapter_conn", "data-close4", s.b, s.n);

    /* v6, out of order then in order, peer SACKs our data, RTO. */
    conn_head(&s, 0x07, 0x0a, 0, 0x71);
    s8(&s, C_WRITE), s16(&s, 6000);
    s8(&s, C_SEG), seg_op(&s, 0, 0, 1000, 0, 0, 500, 0x01);  /* OOO data */
    s8(&s, C_SEG), seg_op(&s, 0, 0, 2000, 0, 0, 500, 0x01);  /* another hole */
    s8(&s, C_SEG), seg_op(&s, 0, 0, 0, 0, 0, 1000, 0x01);    /* fill the first hole */
    s8(&s, C_READ), s16(&s, 60000);
    s8(&s, C_SEG), seg_op(&s, 0, 0, 0, 0, 0, 0, 0x03);       /* dup ACK with one SACK block */
    s8(&s, C_SEG), seg_op(&s, 0, 0, 0, 0, 0, 0, 0x07);
    s8(&s, C_SEG), seg_op(&s, 0, 0, 0, 0, 0, 0, 0x0b);
    s8(&s, C_CLOCK), s8(&s, 20);
    s8(&s, C_CLOCK), s8(&s, 21);
    s8(&s, C_INORDER), s8(&s, 0);
    s8(&s, C_READ), s16(&s, 60000);
    s8(&s, C_INFO);
    put("fuzz_adapter_conn", "ooo-sack6", s.b, s.n);

    /* Refused (RST), simultaneous open, data on the SYN. */
    conn_head(&s, 0x00, 0x00, 2, 0);
    s8(&s, C_READ), s16(&s, 10);
    put("fuzz_adapter_conn", "refused", s.b, s.n);
    conn_head(&s, 0x06, 0x00, 3, 0x71);
    s8(&s, C_SEG), seg_op(&s, JK_SYN | JK_ACK, 2, 0, 1, 0, 0, 0x01);
    s8(&s, C_WRITE), s16(&s, 100);
    s8(&s, C_INORDER), s8(&s, 0);
    put("fuzz_adapter_conn", "simultaneous", s.b, s.n);
    conn_head(&s, 0x00, 0x00, 4, 0x10);
    s8(&s, C_READ), s16(&s, 10);
    put("fuzz_adapter_conn", "syn-data", s.b, s.n);

    /* Zero window, persist probes, keepalive, retransmissions to timeout. */
    conn_head(&s, 0x46, 0xa0, 0, 0x00);
    s8(&s, C_WRITE), s16(&s, 20000);
    s8(&s, C_INORDER), s8(&s, 0x4);
    for (int i = 0; i < 12; i++)
        s8(&s, C_CLOCK), s8(&s, 22);
    s8(&s, C_INFO);
    s8(&s, C_ABORT);
    put("fuzz_adapter_conn", "persist-timeout", s.b, s.n);

    /* A tiny port queue (cfg1 bits 4+5): output finds the transport busy. */
    conn_head(&s, 0x0e, 0x37, 0, 0x71); /* no congestion control, 256 KiB sndbuf */
    s8(&s, C_WRITE), s16(&s, 65000);
    s8(&s, C_WRITE), s16(&s, 65000);
    for (int i = 0; i < 6; i++) {
        s8(&s, C_INORDER), s8(&s, 1 | 20 << 3);
        s8(&s, C_POLL);
    }
    s8(&s, C_READ), s16(&s, 20000);
    s8(&s, C_CLOCK), s8(&s, 18);
    s8(&s, C_INFO);
    s8(&s, C_CLOSE);
    put("fuzz_adapter_conn", "busy-port", s.b, s.n);

    /* Peer reset while established; reading after it. */
    conn_head(&s, 0x06, 0x00, 0, 0x01);
    s8(&s, C_SEG), seg_op(&s, JK_RST, 0, 0, 0, 0, 0, 0);
    s8(&s, C_READ), s16(&s, 10);
    s8(&s, C_WRITE), s16(&s, 10);
    put("fuzz_adapter_conn", "reset", s.b, s.n);

    /* A raw frame: the peer's pure ACK, valid, built here. */
    conn_head(&s, 0x00, 0x00, 0, 0);
    {
        uint8_t f[128];
        struct jk_seg g = seg_of(4, 443, 50000, JK_ACK, 0x10000001, 1);
        size_t n = build(f, &g, 0);
        s8(&s, C_RAW), s16(&s, (unsigned)n);
        memcpy(s.b + s.n, f, n);
        s.n += n;
    }
    s8(&s, C_POLL);
    put("fuzz_adapter_conn", "raw", s.b, s.n);
}

/* Listener target ops. */
enum { L_SYN = 0, L_SEG = 3, L_INORDER = 7, L_RAW = 8, L_CLOCK = 9, L_ACCEPT = 10, L_APP = 11,
       L_LISTEN = 14, L_POLL = 15 };
enum { A_READ, A_WRITE, A_SHUT, A_CLOSE, A_ABORT, A_INFO };

static void l_syn(struct script *s, uint8_t sel, uint8_t flags_x, uint32_t iss, uint8_t opts)
{
    s8(s, L_SYN);
    s8(s, sel);
    s8(s, flags_x);
    s32(s, iss);
    s16(s, 65535);
    if (sel & 0x10)
        s8(s, 20);
    s8(s, opts);
    if (opts & 0x10)
        s16(s, 1460);
    if (opts & 0x20)
        s8(s, 7);
}

static void l_app(struct script *s, unsigned slot, unsigned op, int arg)
{
    s8(s, L_APP);
    s8(s, slot | op << 2);
    if (op == A_READ || op == A_WRITE)
        s16(s, (unsigned)arg);
}

static void listen_seeds(void)
{
    struct script s;
    /* Two connections: handshake, accept, data both ways, close. */
    s.n = 0;
    s8(&s, 0x06), s8(&s, 0x05), s8(&s, 2);
    l_syn(&s, 0, 0, 0x20000000, 0x71);
    s8(&s, L_INORDER), s8(&s, 0), s8(&s, 0);
    l_syn(&s, 1, 0, 0x30000000, 0x51);
    s8(&s, L_INORDER), s8(&s, 1), s8(&s, 1 | 8 << 3);
    s8(&s, L_ACCEPT);
    s8(&s, L_ACCEPT);
    l_app(&s, 0, A_READ, 1000);
    l_app(&s, 1, A_READ, 1000);
    l_app(&s, 0, A_WRITE, 3000);
    s8(&s, L_INORDER), s8(&s, 0), s8(&s, 0x2);
    l_app(&s, 0, A_READ, 1000);
    l_app(&s, 0, A_CLOSE, 0);
    l_app(&s, 1, A_INFO, 0);
    s8(&s, L_CLOCK), s8(&s, 21);
    put("fuzz_adapter_listen", "two-conns", s.b, s.n);

    /* SYN flood past the backlog, a SYN to a closed port, RST of a half-open
     * connection, unlisten with connections queued. */
    s.n = 0;
    s8(&s, 0x00), s8(&s, 0x00), s8(&s, 1);
    l_syn(&s, 0, 0, 1, 0);
    l_syn(&s, 1, 0, 2, 0);
    l_syn(&s, 4, 0, 3, 0);
    s8(&s, L_SEG), s8(&s, 0);
    seg_op(&s, JK_RST, 0, 0, 0, 0, 0, 0);
    s8(&s, L_INORDER), s8(&s, 1), s8(&s, 0);
    s8(&s, L_LISTEN);
    s8(&s, L_LISTEN);
    s8(&s, L_ACCEPT);
    put("fuzz_adapter_listen", "backlog", s.b, s.n);

    /* Lost SYN-ACK (SYN again), SYN-ACK retransmission timeout, data on the
     * third segment before accept, v6. */
    s.n = 0;
    s8(&s, 0x07), s8(&s, 0x00), s8(&s, 0);
    l_syn(&s, 2, 0, 0x40000000, 0x01);
    l_syn(&s, 2, 0, 0x40000000, 0x01);
    s8(&s, L_CLOCK), s8(&s, 20);
    s8(&s, L_SEG), s8(&s, 0);
    seg_op(&s, JK_PSH, 0, 0, 1, 0, 300, 0x01);
    s8(&s, L_ACCEPT);
    l_app(&s, 0, A_READ, 1000);
    l_app(&s, 0, A_SHUT, 0);
    s8(&s, L_INORDER), s8(&s, 0), s8(&s, 0x2);
    l_app(&s, 0, A_ABORT, 0);
    put("fuzz_adapter_listen", "synack-lost6", s.b, s.n);
}

/* ---- threaded API ops (fuzz_api_threads_ops.h) ---------------------------- */

enum { T_CONNECT, T_LISTEN, T_ACCEPT, T_READ, T_WRITE, T_WRITE_ALL, T_SHUTDOWN, T_CLOSE,
       T_ABORT, T_STREAM_ERROR, T_INFO, T_STREAM_POLL, T_LISTENER_POLL, T_LISTENER_CLOSE,
       T_STATS, T_HANDLE_ERROR, T_HANDLE_CLOSE, T_FORGE, T_PEER_CONNECT, T_NET, T_SIGNAL,
       T_SLEEP, T_INVALID, T_PCAP };

/* [thread << 5 | op][a][b][c] */
static void t_op(struct script *s, unsigned thread, unsigned op, unsigned a, unsigned b,
                 unsigned c)
{
    s8(s, thread << 5 | op);
    s8(s, a);
    s8(s, b);
    s8(s, c);
}

/* connect: a = port index (80 80 80 81 82 83 80 82) | timeout index << 3 (0 0 8 25 ms);
 * read/write: b = timeout index (0 1 4 12 ms) | length index << 2 */
#define CONN(port_i, t_i) ((port_i) | (t_i) << 3)
#define IO(t_i, len_i) ((t_i) | (len_i) << 2)

static void api_threads_seeds(void)
{
    static const char *const T = "fuzz_api_threads";
    struct script s;

    /* Echo on port 80: one thread talks, another reads the same stream,
     * takes stats and info, then closes it under the first. */
    s.n = 0;
    s8(&s, 0x00), s8(&s, 0x05);
    t_op(&s, 0, T_CONNECT, CONN(0, 3), 0, 0);
    t_op(&s, 0, T_WRITE, 0, IO(2, 2), 0);
    t_op(&s, 0, T_READ, 0, IO(3, 3), 0);
    t_op(&s, 1, T_SLEEP, 200, 0, 0);
    t_op(&s, 1, T_READ, 0, IO(3, 3), 0);
    t_op(&s, 1, T_STATS, 0x40, 0, 0);
    t_op(&s, 1, T_INFO, 0x40, 0, 0);
    t_op(&s, 0, T_WRITE_ALL, 0, IO(3, 3), 0);
    t_op(&s, 0, T_STREAM_ERROR, 0, 0, 0);
    t_op(&s, 1, T_CLOSE, 0, 0, 0);
    t_op(&s, 0, T_READ, 0, IO(3, 3), 0);
    t_op(&s, 0, T_INFO, 0x20, 0, 0);
    put(T, "echo", s.b, s.n);

    /* Listen, B connects twice, accept, read B's greeting, write (echoed),
     * shut down, listener readiness, close the listener while another
     * thread accepts. */
    s.n = 0;
    s8(&s, 0x01), s8(&s, 0x05);
    t_op(&s, 0, T_LISTEN, 0, 0, 0);
    t_op(&s, 0, T_LISTENER_POLL, 0, 0, 0);
    t_op(&s, 0, T_PEER_CONNECT, 0, 1, 0);
    t_op(&s, 0, T_ACCEPT, 0, 3, 1);
    t_op(&s, 0, T_READ, 1, IO(3, 3), 0);
    t_op(&s, 0, T_WRITE, 1, IO(2, 2), 0);
    t_op(&s, 0, T_SHUTDOWN, 1, 0, 0);
    t_op(&s, 0, T_READ, 1, IO(3, 3), 0);
    t_op(&s, 1, T_ACCEPT, 0, 3, 2);
    t_op(&s, 1, T_STREAM_POLL, 2, 0, 0);
    t_op(&s, 1, T_STREAM_POLL, 0x12, 0, 0);
    t_op(&s, 1, T_ACCEPT, 0, 3, 3);
    t_op(&s, 2, T_SLEEP, 250, 0, 0);
    t_op(&s, 2, T_LISTENER_CLOSE, 0, 0, 0);
    t_op(&s, 2, T_LISTEN, 0, 1, 0);
    t_op(&s, 2, T_LISTEN, 0, 1, 0);
    put(T, "listen-accept", s.b, s.n);

    /* Non-blocking connects: refused (83), reset after accept (81), never
     * read (82: the send buffer fills); errors, info, readiness. */
    s.n = 0;
    s8(&s, 0x02), s8(&s, 0x04);
    t_op(&s, 0, T_CONNECT, CONN(5, 0), 0, 0);
    t_op(&s, 0, T_STREAM_POLL, 0x10, 0, 0);
    t_op(&s, 0, T_SLEEP, 150, 0, 0);
    t_op(&s, 0, T_STREAM_ERROR, 0, 0, 0);
    t_op(&s, 0, T_READ, 0, IO(2, 1), 0);
    t_op(&s, 0, T_INFO, 0, 0, 0);
    t_op(&s, 1, T_CONNECT, CONN(3, 3), 1, 0);
    t_op(&s, 1, T_READ, 1, IO(3, 3), 0);
    t_op(&s, 1, T_STREAM_ERROR, 1, 0, 0);
    t_op(&s, 1, T_ABORT, 1, 0, 0);
    t_op(&s, 2, T_CONNECT, CONN(4, 3), 2, 0);
    t_op(&s, 2, T_WRITE_ALL, 2, IO(3, 3), 0);
    t_op(&s, 2, T_WRITE, 2, IO(0, 3), 0);
    t_op(&s, 2, T_STREAM_POLL, 0x12, 0, 0);
    t_op(&s, 2, T_SHUTDOWN, 2, 0, 0);
    t_op(&s, 2, T_WRITE, 2, IO(0, 1), 0);
    t_op(&s, 3, T_CONNECT, CONN(0, 0), 3, 0);
    t_op(&s, 3, T_WRITE, 3, IO(2, 2), 0);
    t_op(&s, 3, T_STREAM_ERROR, 3, 0, 0);
    put(T, "nonblock", s.b, s.n);

    /* The handle closes while the others read, write, accept, connect;
     * their calls end in -ESHUTDOWN / -EBADF; the leftovers are closed
     * after the handle (cfg0 bit 3). */
    s.n = 0;
    s8(&s, 0x0a), s8(&s, 0x01);
    t_op(&s, 0, T_CONNECT, CONN(0, 3), 0, 0);
    t_op(&s, 0, T_STREAM_POLL, 0, 0, 0);
    t_op(&s, 0, T_READ, 0, IO(3, 3), 0);
    t_op(&s, 0, T_READ, 0, IO(3, 3), 0);
    t_op(&s, 0, T_WRITE, 0, IO(3, 2), 0);
    t_op(&s, 0, T_STREAM_ERROR, 0, 0, 0);
    t_op(&s, 1, T_LISTEN, 1, 0, 0);
    t_op(&s, 1, T_LISTENER_POLL, 0, 0, 0);
    t_op(&s, 1, T_ACCEPT, 0, 3, 4);
    t_op(&s, 1, T_ACCEPT, 0, 3, 4);
    t_op(&s, 2, T_SLEEP, 100, 0, 0);
    t_op(&s, 2, T_HANDLE_CLOSE, 2, 0, 0);
    t_op(&s, 2, T_STATS, 0, 0, 0);
    t_op(&s, 2, T_CONNECT, CONN(0, 2), 5, 0);
    t_op(&s, 2, T_HANDLE_ERROR, 0, 0, 0);
    t_op(&s, 2, T_HANDLE_CLOSE, 0, 0, 0);
    t_op(&s, 3, T_PEER_CONNECT, 1, 1, 0);
    t_op(&s, 3, T_SLEEP, 120, 0, 0);
    t_op(&s, 3, T_INFO, 0, 0, 0);
    t_op(&s, 3, T_SHUTDOWN, 0, 0, 0);
    put(T, "handle-close", s.b, s.n);

    /* Forged ids: random, 0, another kind, closed, the previous input's,
     * guesses at the next id; invalid arguments. */
    s.n = 0;
    s8(&s, 0x00), s8(&s, 0x00);
    t_op(&s, 0, T_CONNECT, CONN(0, 3), 0, 0);
    t_op(&s, 0, T_LISTEN, 2, 0, 0);
    for (unsigned k = 0; k < 8; k++)
        t_op(&s, k & 1, T_FORGE, k, k * 3, k * 5 + 1);
    t_op(&s, 0, T_CLOSE, 0, 0, 0);
    t_op(&s, 0, T_FORGE, 4, 0, 2);
    t_op(&s, 1, T_FORGE, 6, 1, 4);
    t_op(&s, 1, T_CONNECT, CONN(0, 0), 1, 0);
    for (unsigned k = 0; k < 12; k++)
        t_op(&s, k & 1, T_INVALID, k | (k & 4) << 5, 1, 0);
    put(T, "forge", s.b, s.n);

    /* The link: blackholed from the start (a connect times out), back, a
     * stream that works, blackhole again (reads wait, a signal interrupts
     * them), then the handle's port closes (end of stream: -ENETDOWN,
     * handle_error -EPIPE). */
    s.n = 0;
    s8(&s, 0x10), s8(&s, 0x00);
    t_op(&s, 0, T_CONNECT, CONN(0, 3), 0, 0);
    t_op(&s, 0, T_CONNECT, CONN(0, 0), 1, 0);
    t_op(&s, 0, T_CONNECT, CONN(0, 3), 2, 0);
    t_op(&s, 0, T_WRITE, 2, IO(2, 2), 0);
    t_op(&s, 0, T_READ, 2, IO(3, 3), 0);
    t_op(&s, 0, T_READ, 2, IO(3, 3), 0);
    t_op(&s, 0, T_READ, 2, IO(3, 3), 0);
    t_op(&s, 0, T_STREAM_ERROR, 1, 0, 0);
    t_op(&s, 0, T_READ, 2, IO(3, 3), 0);
    t_op(&s, 0, T_WRITE, 2, IO(3, 2), 0);
    t_op(&s, 0, T_CONNECT, CONN(0, 2), 3, 0);
    t_op(&s, 0, T_LISTEN, 0, 0, 0);
    t_op(&s, 0, T_STREAM_ERROR, 2, 0, 0);
    for (int i = 0; i < 2; i++)
        t_op(&s, 1, T_SLEEP, 250, 0, 0);
    t_op(&s, 1, T_NET, 3, 0, 0);
    for (int i = 0; i < 4; i++)
        t_op(&s, 1, T_SLEEP, 250, 0, 0);
    t_op(&s, 1, T_NET, 0, 0, 0);
    t_op(&s, 1, T_SLEEP, 100, 0, 0);
    t_op(&s, 1, T_SIGNAL, 0, 0, 0);
    t_op(&s, 1, T_SLEEP, 250, 0, 0);
    t_op(&s, 1, T_NET, 7, 0, 0);
    t_op(&s, 1, T_HANDLE_ERROR, 0, 0, 0);
    t_op(&s, 1, T_STATS, 0, 0, 0);
    t_op(&s, 1, T_SLEEP, 250, 0, 0);
    t_op(&s, 1, T_HANDLE_ERROR, 0, 0, 0);
    put(T, "link", s.b, s.n);

    /* Four threads on the same two streams: reads, writes, shutdown, close
     * and abort racing. */
    s.n = 0;
    s8(&s, 0x06), s8(&s, 0x09);
    t_op(&s, 0, T_CONNECT, CONN(0, 3), 0, 0);
    t_op(&s, 1, T_CONNECT, CONN(0, 3), 1, 0);
    for (unsigned k = 0; k < 4; k++)
        t_op(&s, 2 + (k & 1), T_SLEEP, 200, 0, 0);
    for (unsigned k = 0; k < 8; k++) {
        t_op(&s, 2, T_WRITE, k & 1, IO(k & 3, 2), 0);
        t_op(&s, 3, T_READ, k & 1, IO(k & 3, 3), 0);
        t_op(&s, k & 1, T_WRITE_ALL, k & 1, IO(1, 2 + (k & 1)), 0);
        t_op(&s, k & 1, T_READ, k & 1, IO(2, 3), 0);
    }
    t_op(&s, 2, T_SHUTDOWN, 0, 0, 0);
    t_op(&s, 3, T_CLOSE, 0, 0, 0);
    t_op(&s, 2, T_ABORT, 1, 0, 0);
    t_op(&s, 3, T_CLOSE, 1, 0, 0);
    put(T, "four-threads", s.b, s.n);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
        return 2;
    }
    root = argv[1];
    parse_seeds();
    framer_seeds();
    conn_seeds();
    listen_seeds();
    api_threads_seeds();
    return 0;
}
