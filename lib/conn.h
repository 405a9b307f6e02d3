/* SPDX-License-Identifier: MIT */
/* conn.c's internal entry points. */
#ifndef JK_CONN_H
#define JK_CONN_H

#include "tcp.h"

/* jktcp_conn_info without the owner check (the handle's streams). */
int jk_conn_info_internal(struct jktcp_conn *c, jktcp_info *out);
/* jktcp_conn_set_congestion without the owner check (the handle's streams). */
int jk_conn_set_congestion_internal(struct jktcp_conn *c, int cc);

#endif
