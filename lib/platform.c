/* SPDX-License-Identifier: MIT */
/* Linux implementation of platform.h: futex(2) and eventfd(2). */
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint64_t jk_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t jk_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? JK_FOREVER : jk_mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

int jk_wait(atomic_uint *word, unsigned val, uint64_t deadline)
{
    struct timespec rel, *tp = NULL;
    if (deadline != JK_FOREVER) {
        uint64_t now = jk_mono_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        uint64_t d = deadline - now;
        rel.tv_sec = (time_t)(d / 1000000000u);
        rel.tv_nsec = (long)(d % 1000000000u);
        tp = &rel;
    }
    /* FUTEX_WAIT takes a relative CLOCK_MONOTONIC timeout: a step of the
     * wall clock changes nothing */
    if (syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0) == 0)
        return 0;
    if (errno == EINTR)
        return -EINTR;
    if (errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0; /* EAGAIN: the word had already changed */
}

void jk_wake_all(atomic_uint *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

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
        syscall(SYS_futex, &l->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void jk_ready_init(struct jk_ready *r)
{
    atomic_init(&r->fd, -1);
    atomic_init(&r->set, false);
}

int jk_ready_fd(struct jk_ready *r, bool *created)
{
    *created = false;
    int fd = atomic_load(&r->fd);
    if (fd >= 0)
        return fd;
    int nfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (nfd < 0)
        return -errno;
    int expect = -1;
    if (atomic_compare_exchange_strong(&r->fd, &expect, nfd)) {
        *created = true;
        return nfd;
    }
    close(nfd);
    return expect;
}

void jk_ready_raise(struct jk_ready *r)
{
    int fd = atomic_load(&r->fd);
    if (fd < 0 || atomic_exchange(&r->set, true))
        return;
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    (void)n; /* a full counter is still readable */
}

void jk_ready_lower(struct jk_ready *r)
{
    int fd = atomic_load(&r->fd);
    if (fd < 0 || !atomic_load(&r->set))
        return;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v);
    (void)n;
    /* an RMW, ordered with the raiser's exchange: if the raiser saw `set`
     * still true and skipped its write, our re-check sees its condition */
    atomic_exchange(&r->set, false);
}

void jk_ready_close(struct jk_ready *r)
{
    int fd = atomic_exchange(&r->fd, -1);
    if (fd >= 0)
        close(fd);
}
