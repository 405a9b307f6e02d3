/* SPDX-License-Identifier: MIT */
/* Namespace + TUN for a test, or a skip (see tuntest.h). */
#include "tuntest.h"

#include "minitest.h"

#include <errno.h>
#include <string.h>

void jkt_tun_up_or_skip(const char *who, const char *name, unsigned mtu, int family_flags,
                        struct jkt_tun *out)
{
    int rc = jkt_netns_enter();
    if (rc != 0)
        JT_SKIP("%s: no network namespaces (needs root): %s", who, strerror(-rc));
    rc = jkt_tun_open(name, mtu, family_flags, out);
    /* What a container or an unprivileged user gets: not a failure of jktcp. */
    if (rc == -ENOENT || rc == -ENODEV || rc == -EPERM || rc == -EACCES || rc == -ENXIO)
        JT_SKIP("%s: no /dev/net/tun: %s", who, strerror(-rc));
    JT_ASSERT(rc == 0, "jkt_tun_open: %s", strerror(-rc));
}
