/* SPDX-License-Identifier: MIT */
/* The struct size rule of jktcp.h (defined in api.c): a struct the library
 * fills or reads travels with its size, so it can grow at the end. */
#ifndef JK_ABI_H
#define JK_ABI_H

#include <stddef.h>

/* Copy min(size, len) bytes of src to out and zero the rest of out.
 * -EINVAL for NULL or size 0. */
int jk_copy_out(void *out, size_t size, const void *src, size_t len);
/* Copy min(size, len) bytes of in to dst and zero the rest of dst. */
int jk_copy_in(void *dst, size_t len, const void *in, size_t size);

#endif
