/* SPDX-License-Identifier: MIT */
/*
 * Platform layer: monotonic clock, futex-style waits with a deadline that a
 * signal handler can interrupt, a small lock with the same waits, wake fds
 * and level-triggered readiness fds. Everything above it (handle, streams,
 * listeners) is plain C11 + pthreads + poll(2).
 *
 * One interface, two back ends chosen at build time (make PLATFORM=...):
 *   platform_linux.c  futex(2) and eventfd(2)                 (default)
 *   platform_posix.c  a hashed table of waiter lists, a pipe per waiting
 *                     thread, poll(2) and read(2)            (PLATFORM=posix)
 * platform.c holds what both share (clock, lock, readiness fds), written
 * on top of the back end's jk_wait / jk_wake_* / jk_wakefd_*.
 *
 * No wait here reads CLOCK_REALTIME: deadlines are CLOCK_MONOTONIC
 * nanoseconds and every back end sleeps for a relative time computed from
 * them, so a step of the wall clock neither lengthens nor shortens a wait.
 */
#ifndef JK_PLATFORM_H
#define JK_PLATFORM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JK_FOREVER UINT64_MAX /* a deadline that never comes */

/* ---- clock (platform.c) ------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds / microseconds. */
uint64_t jk_mono_ns(void);
uint64_t jk_mono_us(void);

/* Absolute deadline for a timeout in ms (< 0: JK_FOREVER, 0: now). */
uint64_t jk_deadline(int timeout_ms);

/* A busy-wait loop's pause: lets a sibling hyperthread (or, on a VM, the
 * host's pause-loop exiting) know this CPU only spins. */
static inline void jk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- pages (platform.c) ------------------------------------------------ */

/* n bytes of zeroed, page-aligned memory whose pages are backed only once
 * touched (mmap), or NULL. */
void *jk_pages_alloc(size_t n);
void jk_pages_free(void *p, size_t n);
/* Give back the whole pages inside [p, p + n): their contents are lost, the
 * next touch gets zeroed pages (MADV_DONTNEED where the platform has it;
 * elsewhere nothing happens). */
void jk_pages_release(void *p, size_t n);
size_t jk_page_size(void);

/* ---- futex-style waits (back end) -------------------------------------- */

/* "linux" or "posix": the back end this library was built with. */
const char *jk_platform_name(void);

/*
 * Sleep while *word == val, until woken, the deadline, or a signal handler.
 * Returns 0 (woken, or the value differed: re-check), -ETIMEDOUT, or
 * -EINTR. With JK_FOREVER a handler installed with SA_RESTART resumes the
 * wait (the kernel restarts it), as with recv(2) without SO_RCVTIMEO; with
 * a deadline any handler ends it with -EINTR. A change of *word followed by
 * jk_wake_* is never missed by a waiter that saw the old value.
 */
int jk_wait(atomic_uint *word, unsigned val, uint64_t deadline);
/* Wake every thread sleeping on word / at most one of them. */
void jk_wake_all(atomic_uint *word);
void jk_wake_one(atomic_uint *word);

/* ---- lock (platform.c) ------------------------------------------------- */

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

/* ---- wake fd (back end) ------------------------------------------------ */

/*
 * An fd another thread can make poll readable: an eventfd on Linux
 * (rfd == wfd), a non-blocking pipe elsewhere. Both ends are non-blocking
 * and close-on-exec. Signals do not count: after any number of them one
 * drain makes it unreadable. A user that keeps a "signalled" flag under
 * its own lock gets a level-triggered flag (packet port: signal when the
 * queue becomes non-empty, drain when it empties). A transport that needs
 * a timer fd (fault.c: timerfd for held frames) has none on POSIX: there
 * the adapter's poll timeout must cover the transport's next deadline.
 */
struct jk_wakefd {
    int rfd, wfd; /* -1 when closed */
};
/* 0 or -errno. */
int jk_wakefd_open(struct jk_wakefd *w);
/* Make it readable: 0, also when it already was and is full; -errno. */
int jk_wakefd_signal(const struct jk_wakefd *w);
/* Make it unreadable (until the next signal). */
void jk_wakefd_drain(const struct jk_wakefd *w);
/* The fd to poll for POLLIN. */
static inline int jk_wakefd_fd(const struct jk_wakefd *w)
{
    return w->rfd;
}
void jk_wakefd_close(struct jk_wakefd *w);

/* ---- readiness fd (platform.c) ----------------------------------------- */

/*
 * A level-triggered readiness fd (a wake fd that polls readable while a
 * condition holds). The side that makes the condition true calls
 * jk_ready_raise; the side that makes it false calls jk_ready_lower and
 * then re-checks the condition, raising again if it holds: with both
 * sides using atomic exchanges on `set`, a raise is never lost.
 */
struct jk_ready {
    atomic_int fd;       /* the poll fd; -1 until jk_ready_fd creates it */
    struct jk_wakefd w;  /* valid once fd >= 0 */
    atomic_bool set;     /* signalled and not drained since */
};
void jk_ready_init(struct jk_ready *r);
/* The fd, created on first use (safe from several threads at once);
 * *created says whether this call made it. -errno on failure. */
int jk_ready_fd(struct jk_ready *r, bool *created);
void jk_ready_raise(struct jk_ready *r);
void jk_ready_lower(struct jk_ready *r);
void jk_ready_close(struct jk_ready *r);

#endif
