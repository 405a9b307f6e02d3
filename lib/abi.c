/* SPDX-License-Identifier: MIT */
/* The struct size rule of jktcp.h (abi.h). */
#include "abi.h"

#include <errno.h>
#include <string.h>

int jk_copy_out(void *out, size_t size, const void *src, size_t len)
{
    if (!out || size == 0)
        return -EINVAL;
    memset(out, 0, size);
    memcpy(out, src, size < len ? size : len);
    return 0;
}

int jk_copy_in(void *dst, size_t len, const void *in, size_t size)
{
    if (!in || size == 0)
        return -EINVAL;
    memset(dst, 0, len);
    memcpy(dst, in, size < len ? size : len);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Listeners                                                          */
/* ------------------------------------------------------------------ */
