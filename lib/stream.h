/* SPDX-License-Identifier: MIT */
/* stream.c: the handle's streams, caller side and I/O-thread side (the
 * types and ownership rules are in handle.h). */
#ifndef JK_STREAM_H
#define JK_STREAM_H

#include "handle.h"

/* stream.c: caller side */
struct jk_stream *jk_stream_new(struct jk_handle *h); /* not published, owners 2 */
/* stream.c: I/O thread */
void jk_io_connect(struct jk_handle *h, struct jk_stream *s);
void jk_io_stream_close(struct jk_handle *h, struct jk_stream *s, bool abort);
void jk_io_stream_release(struct jk_handle *h, struct jk_stream *s);
void jk_io_stream_kick(struct jk_handle *h, struct jk_stream *s);
void jk_io_stream_add(struct jk_handle *h, struct jk_stream *s);
void jk_io_stream_bind(struct jk_handle *h, struct jk_stream *s, struct jktcp_conn *c);
void jk_io_stream_event(struct jk_handle *h, struct jk_stream *s, struct jktcp_conn *c);
/* Wake the waiters that this step's events owe a wake-up (end of a step). */
void jk_io_wake_pending(struct jk_handle *h);
/* The connection's buffers went idle: trim the send ring unless a writer
 * holds the stream's write lock (then it is not idle). */
void jk_io_stream_idle(struct jk_handle *h, struct jk_stream *s, struct jktcp_conn *c);
/* Drop a stream nobody will ever see (listener gone before accept). */
void jk_io_stream_discard(struct jk_handle *h, struct jk_stream *s);
void jk_io_kill_streams(struct jk_handle *h);
int jk_io_stream_info(struct jk_stream *s, jktcp_info *out);
int jk_io_stream_set_congestion(struct jk_stream *s, int cc);
int jk_io_stream_shutdown(struct jk_stream *s);

/* The pointer-level calls behind the public stream calls, after id
 * resolution (jktcp-bench compares the two). */
ssize_t jk_stream_read(struct jk_stream *s, void *buf, size_t len, int timeout_ms);
ssize_t jk_stream_write(struct jk_stream *s, const void *buf, size_t len, int timeout_ms);
struct jk_stream *jk_stream_get(jktcp_stream id);
void jk_stream_put(struct jk_stream *s);

#endif
