/* SPDX-License-Identifier: MIT */
/* listener.c: the handle's listeners, I/O-thread side (types in handle.h). */
#ifndef JK_LISTENER_H
#define JK_LISTENER_H

#include "handle.h"

/* listener.c: I/O thread */
void jk_io_listen(struct jk_handle *h, struct jk_cmd *cmd);
void jk_io_unlisten(struct jk_handle *h, struct jk_listener *l);
void jk_io_accept_ready(struct jk_handle *h, struct jktcp_conn_listener *cl);
void jk_io_kill_listeners(struct jk_handle *h);

#endif
