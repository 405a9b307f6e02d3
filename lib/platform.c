/* SPDX-License-Identifier: MIT */
/* The part of platform.h both back ends share: the clock, pages, the lock
 * (on top of jk_wait / jk_wake_one) and readiness fds (on top of the wake
 * fd). */
#include "platform.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

uint64_t jk_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t jk_mono_us(void)
{
    return jk_mono_ns() / 1000u;
}

uint64_t jk_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? JK_FOREVER : jk_mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* ---- pages --------------------------------------------------------------- */

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

void *jk_pages_alloc(size_t n)
{
    /* NORESERVE: a 4 MiB buffer costs address space, not memory, until
     * it is used (and again after jk_pages_release) */
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void jk_pages_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

size_t jk_page_size(void)
{
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? (size_t)v : 4096;
}

void jk_pages_release(void *p, size_t n)
{
    size_t ps = jk_page_size();
    uintptr_t a = ((uintptr_t)p + ps - 1) & ~(uintptr_t)(ps - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)(ps - 1);
#ifdef MADV_DONTNEED
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
#else
    (void)a, (void)b;
#endif
}

/* ---- lock ---------------------------------------------------------------- */

/* Drepper's "futexes are tricky" mutex 3, with a deadline. */
int jk_lock_acquire(struct jk_lock *l, uint64_t deadline)
{
    unsigned c = 0;
    if (atomic_compare_exchange_strong_explicit(&l->word, &c, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    if (deadline != JK_FOREVER && jk_mono_ns() >= deadline)
        return -EAGAIN;
    if (c != 2)
        c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
    while (c != 0) {
        int r = jk_wait(&l->word, 2, deadline);
        if (r == -ETIMEDOUT)
            return -EAGAIN;
        if (r == -EINTR)
            return -EINTR; /* the word stays 2: the holder wakes nobody, harmless */
        c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
    }
    return 0;
}

void jk_lock_release(struct jk_lock *l)
{
    if (atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2)
        jk_wake_one(&l->word);
}

/* ---- readiness fds ------------------------------------------------------- */

/* Creating a readiness fd is rare (a caller asks for a poll fd): one lock
 * for all of them keeps the wake fd's two ends consistent for raisers,
 * which read `fd` without it. */
static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;

void jk_ready_init(struct jk_ready *r)
{
    atomic_init(&r->fd, -1);
    r->w.rfd = r->w.wfd = -1;
    atomic_init(&r->set, false);
}

int jk_ready_fd(struct jk_ready *r, bool *created)
{
    *created = false;
    int fd = atomic_load(&r->fd);
    if (fd >= 0)
        return fd;
    pthread_mutex_lock(&ready_mu);
    fd = atomic_load(&r->fd);
    if (fd < 0) {
        struct jk_wakefd w;
        int e = jk_wakefd_open(&w);
        if (e == 0) {
            r->w = w;
            fd = jk_wakefd_fd(&w);
            atomic_store(&r->fd, fd); /* publishes r->w */
            *created = true;
        } else {
            fd = e;
        }
    }
    pthread_mutex_unlock(&ready_mu);
    return fd;
}

void jk_ready_raise(struct jk_ready *r)
{
    if (atomic_load(&r->fd) < 0 || atomic_exchange(&r->set, true))
        return;
    jk_wakefd_signal(&r->w); /* a full one is still readable */
}

void jk_ready_lower(struct jk_ready *r)
{
    if (atomic_load(&r->fd) < 0 || !atomic_load(&r->set))
        return;
    jk_wakefd_drain(&r->w);
    /* an RMW, ordered with the raiser's exchange: if the raiser saw `set`
     * still true and skipped its signal, our re-check sees its condition */
    atomic_exchange(&r->set, false);
}

void jk_ready_close(struct jk_ready *r)
{
    if (atomic_exchange(&r->fd, -1) >= 0)
        jk_wakefd_close(&r->w);
}
