/* SPDX-License-Identifier: MIT */
/* pcap capture (LINKTYPE_RAW: each record is a bare IPv4/IPv6 frame): the
 * writer, and the transport wrapper that captures an adapter's frames. */
#ifndef JK_PCAP_H
#define JK_PCAP_H

#include "jktcp.h"
#include <stddef.h>
#include <stdint.h>

struct jk_pcap;

/* Create/truncate path and write the global header. 0 or negative errno. */
int jk_pcap_open(const char *path, struct jk_pcap **out);
/* Append one frame with a wall-clock timestamp. Buffered (stdio). */
void jk_pcap_write(struct jk_pcap *p, const uint8_t *frame, size_t len);
/* Flush and close. NULL is allowed. */
void jk_pcap_close(struct jk_pcap *p);

/* Capture every frame *t receives or has accepted to path from now on,
 * replacing a running capture; path NULL stops. The first capture wraps
 * *t in a capturing transport (which then owns it), stopping unwraps it,
 * so *t changes. 0, or negative errno with the running capture (if any)
 * unchanged. */
int jk_pcap_capture(jktcp_transport **t, const char *path);

#endif
