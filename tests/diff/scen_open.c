/* SPDX-License-Identifier: MIT */
/* Differential scenarios: opening a connection (RFC 9293 §3.5, §3.10.7). */
#include "diff.h"

#include <string.h>

DX(open, syn_to_listener, "sack,ts", NULL, NULL)
{
    dx_listen(x, 16);
    struct dx_opt o = dx_syn_opts(x);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, &o);
    dx_note(x, "synack", 1000);
}

DX(open, syn_to_closed_port, NULL, NULL, NULL)
{
    struct dx_opt o = dx_syn_opts(x);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, &o);
    dx_note(x, "reply", 1000);
}

DX(open, active_syn, NULL, NULL, NULL)
{
    dx_connect(x);
    dx_note(x, "syn", 1000);
}

DX(open, passive_then_data, "ts", NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, "hello", 5, NULL);
    dx_note_read(x, "app", 1000);
    dx_note(x, "ack", 1000);
}
