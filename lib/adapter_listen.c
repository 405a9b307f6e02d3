/* SPDX-License-Identifier: MIT */
/* Listeners of the single-threaded API: listen, the accept queue, accept
 * and unlisten (adapter.h). The adapter hands a SYN to a listener in
 * passive_open (adapter.c); the engine reports JK_TCP_ESTABLISHED, and the
 * connection joins the accept queue until accepted. */
#include "adapter.h"

#include <errno.h>
#include <stdlib.h>

JKTCP_API int jktcp_adapter_listen(jktcp_adapter *a, int port, int backlog,
                                   jktcp_conn_listener **out)
{
    CHECK_ADAPTER(a);
    return jk_adapter_listen_internal(a, port, backlog, out);
}

int jk_adapter_listen_internal(struct jktcp_adapter *a, int port, int backlog,
                                  struct jktcp_conn_listener **out)
{
    if (!out || port < 1 || port > 65535)
        return -EINVAL;
    if (a->err)
        return -ENETDOWN;
    struct jktcp_conn_listener *l;
    jk_list_each_entry(l, &a->listeners, struct jktcp_conn_listener, link)
        if (l->port == port)
            return -EADDRINUSE;
    l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->a = a;
    l->port = (uint16_t)port;
    l->backlog = backlog > 0 ? backlog : 128;
    jk_list_init(&l->acc);
    jk_list_push(&a->listeners, &l->link);
    *out = l;
    return 0;
}

struct jktcp_conn *jk_adapter_listener_pop(struct jktcp_conn_listener *l)
{
    if (jk_list_empty(&l->acc))
        return NULL;
    struct jktcp_conn *c = jk_list_entry(l->acc.next, struct jktcp_conn, acc_link);
    jk_list_del(&c->acc_link);
    l->pending--;
    c->listener = NULL;
    c->queued = false;
    return c;
}

struct accept_ctx {
    struct jktcp_conn_listener *l;
    jktcp_conn **out;
};

static bool accepted(void *arg)
{
    struct accept_ctx *x = arg;
    return (*x->out = jk_adapter_listener_pop(x->l)) != NULL;
}

JKTCP_API int jktcp_conn_listener_accept(jktcp_conn_listener *l, int timeout_ms, jktcp_conn **out)
{
    if (!l || !out)
        return -EINVAL;
    if (l->a->owner)
        return -EBUSY;
    struct accept_ctx ctx = {l, out};
    *out = NULL;
    return jk_adapter_drive(l->a, accepted, &ctx, timeout_ms);
}

JKTCP_API void jktcp_conn_listener_close(jktcp_conn_listener *l)
{
    if (l && !l->a->owner)
        jk_adapter_unlisten_internal(l);
}

JKTCP_API int jktcp_adapter_accept(jktcp_conn_listener *l, int timeout_ms, jktcp_conn **out)
{
    return jktcp_conn_listener_accept(l, timeout_ms, out);
}

JKTCP_API void jktcp_adapter_unlisten(jktcp_conn_listener *l)
{
    jktcp_conn_listener_close(l);
}

void jk_adapter_unlisten_internal(struct jktcp_conn_listener *l)
{
    struct jktcp_adapter *a = l->a;
    struct jk_list *p, *next;
    jk_list_each_safe(p, next, &a->all) {
        struct jktcp_conn *c = jk_list_entry(p, struct jktcp_conn, all_link);
        if (c->listener != l)
            continue;
        c->listener = NULL;
        if (c->queued) {
            c->queued = false;
            jk_list_del(&c->acc_link);
            jk_tcp_abort(&c->tcp, true);
            jk_adapter_release(c);
        } else {
            jk_tcp_abort(&c->tcp, true); /* half-open: already released */
        }
    }
    jk_list_del(&l->link);
    free(l);
    jk_adapter_output(a);
}
