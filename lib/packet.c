/* Packet codec: IPv4/IPv6 + TCP. See packet.h. */
#include "packet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

long jk_frame_length(const uint8_t *buf, size_t avail)
{
    if (avail < 1)
        return 0;
    switch (buf[0] >> 4) {
    case 4:
        if (avail < 4)
            return 0;
        if (rd16(buf + 2) < 20)
            return -1;
        return rd16(buf + 2);
    case 6:
        if (avail < 6)
            return 0;
        if (rd16(buf + 4) == 0) /* jumbogram: not supported on a stream */
            return -1;
        return 40 + (long)rd16(buf + 4);
    default:
        return -1;
    }
}

int jk_addr_parse(const char *text, struct jk_addr *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return -EINVAL;
    if (inet_pton(AF_INET, text, out->a) == 1) {
        out->family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->a) == 1) {
        out->family = 6;
        return 0;
    }
    return -EINVAL;
}

bool jk_addr_eq(const struct jk_addr *x, const struct jk_addr *y)
{
    if (x->family != y->family)
        return false;
    return memcmp(x->a, y->a, x->family == 4 ? 4 : 16) == 0;
}
