/* SPDX-License-Identifier: MIT */
/* Platform layer for the threaded handle: monotonic clock, futex-style
 * waits with a deadline that a signal handler can interrupt, a small
 * lock with the same waits, and level-triggered readiness fds. Linux
 * implementation in platform.c (futex, eventfd). */
#ifndef JK_PLATFORM_H
#define JK_PLATFORM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define JK_FOREVER UINT64_MAX /* a deadline that never comes */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t jk_mono_ns(void);

/* Absolute deadline for a timeout in ms (< 0: JK_FOREVER, 0: now). */
uint64_t jk_deadline(int timeout_ms);

/*
 * Sleep while *word == val, until woken, the deadline, or a signal handler.
 * Returns 0 (woken, or the value differed: re-check), -ETIMEDOUT, or
 * -EINTR. With JK_FOREVER a handler installed with SA_RESTART resumes the
 * wait (the kernel restarts it), as with recv(2) without SO_RCVTIMEO.
 */
int jk_wait(atomic_uint *word, unsigned val, uint64_t deadline);
/* Wake every thread sleeping on word. */
void jk_wake_all(atomic_uint *word);

/*
 * A lock whose waits take a deadline and can be interrupted (pthread
 * mutexes can do neither): 0 free, 1 held, 2 held with waiters.
 */
struct jk_lock {
    atomic_uint word;
};
/* 0 when acquired, -EAGAIN when the deadline passed (at once for a
 * deadline already past), -EINTR. */
int jk_lock_acquire(struct jk_lock *l, uint64_t deadline);
void jk_lock_release(struct jk_lock *l);

/*
 * A level-triggered readiness fd (an eventfd that polls readable while a
 * condition holds). The side that makes the condition true calls
 * jk_ready_raise; the side that makes it false calls jk_ready_lower and
 * then re-checks the condition, raising again if it holds: with both
 * sides using atomic exchanges on `set`, a raise is never lost.
 */
struct jk_ready {
    atomic_int fd;   /* -1 until jk_ready_fd creates it */
    atomic_bool set; /* the eventfd's counter is non-zero */
};
void jk_ready_init(struct jk_ready *r);
/* The fd, created on first use (safe from several threads at once);
 * *created says whether this call made it. -errno on failure. */
int jk_ready_fd(struct jk_ready *r, bool *created);
void jk_ready_raise(struct jk_ready *r);
void jk_ready_lower(struct jk_ready *r);
void jk_ready_close(struct jk_ready *r);

#endif
