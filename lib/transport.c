/* SPDX-License-Identifier: MIT */
/* Transports: the calls the adapter makes, dispatched through the ops
 * table (transport.h). Checks common to every implementation live here
 * so that each implementation only does its own work. */
#include "transport.h"
#include "packet.h"

#include <errno.h>

int jk_transport_recv(jktcp_transport *t, const uint8_t **frame, size_t *len)
{
    t->rx_csum_ours = false;
    return t->ops->recv(t, frame, len);
}

int jk_transport_send(jktcp_transport *t, const uint8_t *frame, size_t len)
{
    if (!frame || len == 0 || len > JK_MAX_FRAME)
        return -EMSGSIZE;
    return t->ops->send(t, frame, len);
}

int jk_transport_flush(jktcp_transport *t) { return t->ops->flush(t); }

bool jk_transport_pending(const jktcp_transport *t) { return t->ops->pending(t); }

int jk_transport_poll_fd(const jktcp_transport *t) { return t->ops->poll_fd(t); }

short jk_transport_poll_events(const jktcp_transport *t) { return t->ops->poll_events(t); }

int jk_transport_framing(const jktcp_transport *t) { return t->framing; }

JKTCP_API int jktcp_transport_set_flags(jktcp_transport *t, unsigned flags)
{
    const unsigned known = JKTCP_TRANSPORT_COALESCE | JKTCP_TRANSPORT_CLOSE_FD;
    if (!t || (flags & ~known))
        return -EINVAL;
    return t->ops->set_flags(t, flags);
}

JKTCP_API void jktcp_transport_free(jktcp_transport *t)
{
    if (t)
        t->ops->destroy(t);
}
