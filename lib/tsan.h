/* SPDX-License-Identifier: MIT */
/* ThreadSanitizer annotations for hand-overs it cannot see: liburcu's
 * queues, hash table and grace periods synchronise in a shared library
 * TSan does not instrument. No-ops in other builds. */
#ifndef JK_TSAN_H
#define JK_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define JK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define JK_TSAN 1
#endif
#endif

#ifdef JK_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_RELEASE(p) __tsan_release((void *)(p))
#define TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define TSAN_RELEASE(p) ((void)(p))
#define TSAN_ACQUIRE(p) ((void)(p))
#endif

#endif
