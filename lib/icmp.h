/* SPDX-License-Identifier: MIT */
/* ICMP and ICMPv6 errors about TCP segments (RFC 792, RFC 1191, RFC 4443,
 * RFC 8201): parsing what a router or the peer reports, and building such
 * reports (the fault transport's router and tests). Pure functions, like
 * the TCP codec; what to do with a report is the engine's business. */
#ifndef JK_ICMP_H
#define JK_ICMP_H

#include "packet.h"

enum jk_icmp_kind {
    JK_ICMP_UNREACH = 1,   /* destination unreachable (not "fragmentation needed") */
    JK_ICMP_TOO_BIG,       /* IPv4 fragmentation needed / IPv6 packet too big */
    JK_ICMP_TIME_EXCEEDED, /* hop limit or reassembly time */
    JK_ICMP_PARAM,         /* parameter problem */
    JK_ICMP_OTHER,         /* an ICMPv6 error type we do not know */
};

struct jk_icmp {
    uint8_t family, type, code;
    int kind;                /* enum jk_icmp_kind */
    struct jk_addr src, dst; /* of the report (src: a router, or the peer) */
    uint32_t mtu;            /* TOO_BIG: the next-hop MTU (IPv4: 0 if the router did not say) */
    struct jk_addr isrc, idst; /* the packet it quotes */
    uint16_t sport, dport;   /* its TCP ports */
    uint32_t seq;            /* its TCP sequence number */
    uint32_t inner_len;      /* its IP length as it was sent (total / 40 + payload) */
};

/* A frame jk_parse_frame called JK_PARSE_ICMP. Returns JK_PARSE_ICMP for
 * an error that quotes a TCP segment (ic filled), JK_PARSE_OTHER_PROTO for
 * any other ICMP (echo, errors about other protocols, unknown types), or a
 * drop (JK_PARSE_SHORT: the quote is too short to name a connection,
 * JK_PARSE_CHECKSUM). */
enum jk_parse jk_parse_icmp(const uint8_t *frame, size_t len, struct jk_icmp *ic);

/* The errno a report stands for, as Linux maps them (icmp_err_convert,
 * icmpv6_err_convert): -ECONNREFUSED for port unreachable, -EHOSTUNREACH,
 * -ENETUNREACH, ... ; -EMSGSIZE for TOO_BIG. */
int jk_icmp_errno(const struct jk_icmp *ic);

/* Build an ICMP error from src to dst quoting the first bytes of frame
 * (as much as fits: 576 bytes in all for IPv4, 1280 for IPv6). type and
 * code are the wire values; mtu goes into the TOO_BIG field. Returns the
 * length, 0 if it does not fit in cap. */
size_t jk_build_icmp(uint8_t *buf, size_t cap, const struct jk_addr *src,
                     const struct jk_addr *dst, uint8_t type, uint8_t code, uint32_t mtu,
                     const uint8_t *frame, size_t len);

#endif
