/* SPDX-License-Identifier: MIT */
/* Adapter internals shared by adapter.c (table, timers, loop) and the
 * public API files (api.c, conn.c). */
#ifndef JK_ADAPTER_H
#define JK_ADAPTER_H

#include "abi.h"
#include "tcp.h"

int jk_adapter_create(jktcp_transport *t, const char *local_ip, const char *peer_ip,
                      struct jktcp_adapter **out);
void jk_adapter_destroy(struct jktcp_adapter *a);

uint64_t jk_now(struct jktcp_adapter *a);
struct jktcp_conn *jk_adapter_lookup(struct jktcp_adapter *a, uint16_t lport, uint16_t rport);
struct jktcp_conn *jk_adapter_new_conn(struct jktcp_adapter *a, uint16_t lport, uint16_t rport,
                                       bool ephemeral, int *err);
/* The transport failed: every connection fails with err. */
void jk_adapter_fail(struct jktcp_adapter *a, int err);

/* One pass: drain input, fire timers, emit output. Returns the number of
 * frames and timers processed, or the adapter's error. Never blocks. */
int jk_adapter_step(struct jktcp_adapter *a);
int jk_adapter_output(struct jktcp_adapter *a);
/* Block in poll() until input, writability or the next timer, at most
 * timeout_ms (< 0: no limit but the timers). Never sleeps with a custom clock. */
int jk_adapter_wait(struct jktcp_adapter *a, int timeout_ms);
int jk_adapter_next_timeout(struct jktcp_adapter *a);
/* Drive the adapter (step, then wait) until cond(arg) holds: 0, -EAGAIN
 * once timeout_ms ran out (0: a single step; with a custom clock too), or
 * the adapter's error. Every blocking call of the single-threaded API. */
int jk_adapter_drive(struct jktcp_adapter *a, bool (*cond)(void *), void *arg, int timeout_ms);

/* Internal forms of public calls, for the I/O thread (no owner check). */
int jktcp_adapter_listen_internal(struct jktcp_adapter *a, int port, int backlog,
                                  struct jktcp_conn_listener **out);
void jk_adapter_unlisten_internal(struct jktcp_conn_listener *l);
struct jktcp_conn *jk_listener_pop(struct jktcp_conn_listener *l);
int jk_adapter_set_pcap(struct jktcp_adapter *a, const char *path);
int jk_conn_info_internal(struct jktcp_conn *c, jktcp_info *out);

#endif
