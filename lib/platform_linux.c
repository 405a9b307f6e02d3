/* SPDX-License-Identifier: MIT */
/* Linux back end of platform.h: futex(2) and eventfd(2). */
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

const char *jk_platform_name(void)
{
    return "linux";
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
     * wall clock changes nothing. Without a timeout the kernel restarts
     * the wait after an SA_RESTART handler; with one it returns EINTR. */
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

void jk_wake_one(atomic_uint *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int jk_wakefd_open(struct jk_wakefd *w)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    w->rfd = w->wfd = fd;
    return 0;
}

int jk_wakefd_signal(const struct jk_wakefd *w)
{
    uint64_t one = 1;
    if (write(w->wfd, &one, sizeof one) == (ssize_t)sizeof one || errno == EAGAIN)
        return 0; /* EAGAIN: the counter is full, so it is readable */
    return -errno;
}

void jk_wakefd_drain(const struct jk_wakefd *w)
{
    uint64_t v;
    ssize_t n = read(w->rfd, &v, sizeof v); /* resets the counter */
    (void)n;
}

void jk_wakefd_close(struct jk_wakefd *w)
{
    if (w->rfd >= 0)
        close(w->rfd);
    w->rfd = w->wfd = -1;
}
