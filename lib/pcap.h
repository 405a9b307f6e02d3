/* SPDX-License-Identifier: MIT */
/* pcap capture writer (LINKTYPE_RAW: each record is a bare IPv4/IPv6 frame). */
#ifndef JK_PCAP_H
#define JK_PCAP_H

#include <stddef.h>
#include <stdint.h>

struct jk_pcap;

/* Create/truncate path and write the global header. 0 or negative errno. */
int jk_pcap_open(const char *path, struct jk_pcap **out);
/* Append one frame with a wall-clock timestamp. Buffered (stdio). */
void jk_pcap_write(struct jk_pcap *p, const uint8_t *frame, size_t len);
/* Flush and close. NULL is allowed. */
void jk_pcap_close(struct jk_pcap *p);

#endif
