/* SPDX-License-Identifier: MIT */
/* Packet codec: IPv4/IPv6 + TCP parsing and building. Pure functions, no
 * allocation; parsing never reads outside [frame, frame + len). */
#ifndef JK_PACKET_H
#define JK_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define JK_MAX_FRAME 65575u /* IPv6: 40-byte header + 65535 payload */

/* TCP flags */
#define JK_FIN 0x01
#define JK_SYN 0x02
#define JK_RST 0x04
#define JK_PSH 0x08
#define JK_ACK 0x10
#define JK_URG 0x20
#define JK_ECE 0x40
#define JK_CWR 0x80

#define JK_IPPROTO_ICMP 1
#define JK_IPPROTO_TCP 6
#define JK_IPPROTO_ICMPV6 58

struct jk_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t a[16];  /* IPv4 uses a[0..3] */
};

struct jk_sack_block {
    uint32_t left, right;
};

#define JK_MAX_SACK 4

struct jk_tcp_opts {
    bool has_mss, has_wscale, sack_ok, has_ts;
    uint16_t mss;
    uint8_t wscale;
    uint32_t tsval, tsecr;
    uint8_t nsack;
    struct jk_sack_block sack[JK_MAX_SACK];
};

/* A parsed (or to-be-built) TCP segment. */
struct jk_seg {
    struct jk_addr src, dst;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t wnd; /* raw header value, unscaled */
    uint16_t urp;
    struct jk_tcp_opts opt;
    const uint8_t *payload; /* into the frame (parse only) */
    uint32_t len;           /* payload length */
    uint8_t ttl;            /* hop limit to send with (build); 0 = 64 */
};

/* Result of jk_parse_frame. Values >= JK_PARSE_DROP_FIRST are drops. */
enum jk_parse {
    JK_PARSE_TCP = 0,       /* valid TCP segment, seg filled */
    JK_PARSE_OTHER_PROTO,   /* valid IP frame, not TCP (UDP, ICMP that is no error...) */
    JK_PARSE_ICMP,          /* jk_parse_frame: ICMP/ICMPv6 (look closer with
                               jk_parse_icmp); jk_parse_icmp: an error about a
                               TCP segment */
    JK_PARSE_DROP_FIRST,
    JK_PARSE_SHORT = JK_PARSE_DROP_FIRST, /* shorter than the headers */
    JK_PARSE_VERSION,       /* IP version not 4 or 6 */
    JK_PARSE_LENGTH,        /* header/total lengths inconsistent with frame */
    JK_PARSE_CHECKSUM,      /* IPv4 header or TCP checksum mismatch */
    JK_PARSE_FRAGMENT,      /* IPv4 MF/offset or IPv6 fragment header: ip->frag says
                               where (jk_reasm_add puts the datagram together) */
    JK_PARSE_OPTIONS,       /* bad TCP data offset */
    JK_PARSE_IP_OPTION,     /* an IP option or extension header we must not pass:
                               a source route, an unknown IPv6 option that says
                               discard, a malformed option list */
};

/* The IP layer of a frame, checked: where the upper layer is. */
struct jk_ip {
    uint8_t family, proto; /* 4 / 6; protocol (IPv6: after extension headers) */
    struct jk_addr src, dst;
    const uint8_t *l4;     /* upper-layer bytes, inside the frame */
    size_t len;
    uint32_t addr_sum;     /* checksum of the addresses (pseudo-header part) */
    struct jk_frag {       /* JK_PARSE_FRAGMENT only */
        uint32_t id;       /* identification (IPv4: 16 bits) */
        uint32_t off;      /* this piece's offset in the datagram's payload */
        uint32_t len;      /* and its length */
        bool more;         /* MF: more pieces follow */
        size_t hdr_len;    /* the header to keep: IPv4 header / IPv6 unfragmentable part */
        size_t nh_at;      /* IPv6: the next-header byte naming the fragment header */
        uint8_t nh;        /* IPv6: the next header after the fragment header;
                              IPv4: the protocol */
        const uint8_t *data; /* the piece, inside the frame */
    } frag;
};

/* Parse and check the IP header(s); JK_PARSE_TCP (whatever the protocol)
 * or a drop. */
enum jk_parse jk_parse_ip(const uint8_t *frame, size_t len, struct jk_ip *ip);

/*
 * Parse one IP frame. Trailing bytes after the IP total length are
 * ignored (len may exceed it). IPv4 options are skipped but a source
 * route drops the frame (as Linux with accept_source_route 0). IPv6
 * extension headers hop-by-hop, routing (segments left 0),
 * destination options are skipped, with their options per RFC 8200
 * §4.2; an atomic fragment (offset 0, no more) is read as a whole packet
 * (RFC 6946), any other fragment gives JK_PARSE_FRAGMENT. TCP options
 * never drop a segment (see parse_opts); SACK blocks beyond JK_MAX_SACK
 * are ignored.
 */
enum jk_parse jk_parse_frame(const uint8_t *frame, size_t len, struct jk_seg *seg);
/* jk_parse_frame for a frame whose TCP checksum its transport computed
 * itself (csum_ours: jktcp_transport.rx_csum_ours): everything is checked
 * but that sum. */
enum jk_parse jk_parse_frame_as(const uint8_t *frame, size_t len, struct jk_seg *seg,
                                bool csum_ours);

/*
 * Length of the IP frame starting at buf, from its header, given `avail`
 * bytes: > 0 the frame length, 0 when more bytes are needed to know,
 * -1 when the bytes cannot start a frame (bad version, IPv4 total length
 * < 20, IPv6 payload length 0 / jumbogram).
 */
long jk_frame_length(const uint8_t *buf, size_t avail);

/* Bytes of TCP options jk_build_segment will write for seg->opt (multiple of 4). */
size_t jk_tcp_opts_len(const struct jk_tcp_opts *o);

/* Header bytes (IP + TCP + options) for seg. */
size_t jk_header_len(const struct jk_seg *seg);

/*
 * Build a complete frame (IP header, TCP header with options, payload
 * gathered from iov, checksums) into buf. src/dst families must match.
 * Returns the frame length, or 0 if it does not fit in cap.
 */
size_t jk_build_segment(uint8_t *buf, size_t cap, const struct jk_seg *seg,
                        const struct iovec *iov, int iovcnt);

/* Internet checksum helpers (exposed for tests). */
uint32_t jk_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t jk_csum_fold(uint32_t sum);

/* Byte-wise access: frames are unaligned and in network order. */
static inline uint16_t jk_rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t jk_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void jk_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void jk_wr32(uint8_t *p, uint32_t v)
{
    jk_wr16(p, (uint16_t)(v >> 16));
    jk_wr16(p + 2, (uint16_t)v);
}

/* Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4). */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
static inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }

/* Address helpers. */
int jk_addr_parse(const char *text, struct jk_addr *out); /* 0 or -EINVAL */
bool jk_addr_eq(const struct jk_addr *x, const struct jk_addr *y);
bool jk_addr_unicast(const struct jk_addr *x); /* usable as a TCP endpoint */

#endif
