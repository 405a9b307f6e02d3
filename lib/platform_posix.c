/* SPDX-License-Identifier: MIT */
/*
 * Plain-POSIX back end of platform.h (make PLATFORM=posix), for systems
 * without futex(2) and eventfd(2): pthreads, pipe(2), poll(2), read(2).
 *
 * jk_wait: the waiter checks the word under the mutex of the word's bucket
 * (a small table hashed by the word's address), queues itself on that
 * bucket's list and sleeps on its own thread's pipe; jk_wake_* takes the
 * word's waiters off the list under the same mutex and writes one byte
 * into each one's pipe. A waker changes the word before it takes the
 * mutex, so a waiter either saw the new value or is on the list: no wake
 * is lost (the futex contract).
 *
 * Why a pipe and not a condition variable: a signal handler cannot end
 * pthread_cond_wait (it resumes, or wakes up without saying why), and
 * jk_wait must return -EINTR as FUTEX_WAIT does. Blocking in read(2)
 * without a deadline follows FUTEX_WAIT's rule exactly (restarted after an
 * SA_RESTART handler, EINTR after any other), and poll(2) with a deadline
 * fails with EINTR after any handler, as FUTEX_WAIT with a timeout does.
 * poll's timeout is relative, recomputed from CLOCK_MONOTONIC after every
 * return, so no wait depends on the wall clock; no condition variable
 * means no pthread_condattr_setclock either (macOS has none).
 *
 * Differences from the Linux back end: deadlines are rounded up to whole
 * milliseconds (poll); each thread that ever waits keeps a pipe (two fds)
 * until it exits; when no pipe can be made (out of fds) a wait degrades to
 * 1 ms naps, where a handler ends only a wait with a deadline; a wake
 * costs a write(2) per woken waiter. None of it is async-signal-safe (nor
 * is it called from handlers), and it is not fork-safe while other
 * threads wait (nor is the rest of the handle).
 */
#include "list.h"
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#define BUCKET_BITS 6
#define NBUCKETS (1 << BUCKET_BITS)
#define MAX_POLL_MS (3600 * 1000)

const char *jk_platform_name(void)
{
    return "posix";
}

/* ---- pipes --------------------------------------------------------------- */

static int set_flags(int fd, bool nonblock)
{
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    if (nonblock && (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    return 0;
}

/* pipe2(2) is not in POSIX.1-2008 (nor on macOS): flags are set after. */
static int open_pipe(int fds[2], bool rd_nonblock)
{
    if (pipe(fds) < 0)
        return -errno;
    int e = set_flags(fds[0], rd_nonblock);
    if (!e)
        e = set_flags(fds[1], true);
    if (e) {
        close(fds[0]);
        close(fds[1]);
    }
    return e;
}

/* ---- waiters and buckets ------------------------------------------------- */

struct waiter {
    struct jk_list link; /* on its bucket's list while queued */
    atomic_uint *word;
    bool woken;          /* a waker took it off the list and wrote a byte */
    int rfd, wfd;        /* this thread's pipe (blocking read end) */
};

struct bucket {
    pthread_mutex_t mu;
    struct jk_list waiters; /* oldest first */
};

static struct bucket buckets[NBUCKETS];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t self_key;
static _Thread_local struct waiter self = {.rfd = -1, .wfd = -1};

static void self_close(void *p)
{
    struct waiter *w = p;
    close(w->rfd);
    close(w->wfd);
    w->rfd = w->wfd = -1;
}

static void init_buckets(void)
{
    for (int i = 0; i < NBUCKETS; i++) {
        pthread_mutex_init(&buckets[i].mu, NULL);
        jk_list_init(&buckets[i].waiters);
    }
    pthread_key_create(&self_key, self_close); /* closes the pipe at thread exit */
}

static struct bucket *bucket_of(const atomic_uint *word)
{
    uintptr_t k = (uintptr_t)word / sizeof *word;
    return &buckets[(uint32_t)(k * 2654435761u) >> (32 - BUCKET_BITS)];
}

/* This thread's waiter, its pipe made on first use; NULL without one. */
static struct waiter *get_self(void)
{
    pthread_once(&init_once, init_buckets);
    if (self.rfd >= 0)
        return &self;
    int fds[2];
    if (open_pipe(fds, false) < 0)
        return NULL;
    self.rfd = fds[0];
    self.wfd = fds[1];
    jk_list_init(&self.link);
    pthread_setspecific(self_key, &self);
    return &self;
}

/* The byte a waker wrote: 0, or -EINTR when a handler ended the read. */
static int take_byte(struct waiter *w)
{
    char c;
    ssize_t n = read(w->rfd, &c, 1);
    return n < 0 && errno == EINTR ? -EINTR : 0;
}

/* Block until the byte arrives: 0, -ETIMEDOUT or -EINTR. */
static int sleep_on(struct waiter *w, uint64_t deadline)
{
    if (deadline == JK_FOREVER)
        return take_byte(w); /* restarted by the kernel after SA_RESTART */
    for (;;) {
        uint64_t now = jk_mono_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        uint64_t ms = (deadline - now + 999999u) / 1000000u;
        struct pollfd p = {w->rfd, POLLIN, 0};
        int n = poll(&p, 1, ms > MAX_POLL_MS ? MAX_POLL_MS : (int)ms);
        if (n > 0)
            return take_byte(w) < 0 ? -EINTR : 0; /* a byte is there: no wait */
        if (n < 0 && errno == EINTR)
            return -EINTR;
    }
}

/* No pipe (out of fds): nap 1 ms and let the caller re-check its word. */
static int nap(uint64_t deadline)
{
    if (poll(NULL, 0, 1) < 0 && errno == EINTR && deadline != JK_FOREVER)
        return -EINTR;
    return 0;
}

int jk_wait(atomic_uint *word, unsigned val, uint64_t deadline)
{
    if (deadline != JK_FOREVER && jk_mono_ns() >= deadline)
        return -ETIMEDOUT;
    struct waiter *w = get_self();
    if (!w)
        return nap(deadline);
    struct bucket *b = bucket_of(word);
    pthread_mutex_lock(&b->mu);
    if (atomic_load(word) != val) {
        pthread_mutex_unlock(&b->mu);
        return 0;
    }
    w->word = word;
    w->woken = false;
    jk_list_push_back(&b->waiters, &w->link);
    pthread_mutex_unlock(&b->mu);
    int r = sleep_on(w, deadline);
    pthread_mutex_lock(&b->mu);
    if (!w->woken) {
        jk_list_del(&w->link);
    } else if (r != 0) { /* woken wins a race with a handler or the deadline */
        while (take_byte(w) < 0) /* written under the mutex: it is there */
            ;
        r = 0;
    }
    pthread_mutex_unlock(&b->mu);
    return r;
}

static void wake(atomic_uint *word, bool all)
{
    struct bucket *b = bucket_of(word);
    pthread_once(&init_once, init_buckets);
    pthread_mutex_lock(&b->mu);
    struct jk_list *pos, *tmp;
    jk_list_each_safe(pos, tmp, &b->waiters) {
        struct waiter *w = jk_list_entry(pos, struct waiter, link);
        if (w->word != word)
            continue;
        jk_list_del(&w->link);
        w->woken = true;
        char c = 0;
        while (write(w->wfd, &c, 1) < 0 && errno == EINTR) /* never full: one byte */
            ;
        if (!all)
            break;
    }
    pthread_mutex_unlock(&b->mu);
}

void jk_wake_all(atomic_uint *word)
{
    wake(word, true);
}

void jk_wake_one(atomic_uint *word)
{
    wake(word, false);
}

/* ---- wake fd: a non-blocking pipe ---------------------------------------- */

int jk_wakefd_open(struct jk_wakefd *w)
{
    int fds[2];
    int e = open_pipe(fds, true);
    if (e)
        return e;
    w->rfd = fds[0];
    w->wfd = fds[1];
    return 0;
}

int jk_wakefd_signal(const struct jk_wakefd *w)
{
    char c = 0;
    if (write(w->wfd, &c, 1) == 1 || errno == EAGAIN)
        return 0; /* EAGAIN: the pipe is full, so it is readable */
    return -errno;
}

void jk_wakefd_drain(const struct jk_wakefd *w)
{
    char buf[256];
    while (read(w->rfd, buf, sizeof buf) == (ssize_t)sizeof buf)
        ;
}

void jk_wakefd_close(struct jk_wakefd *w)
{
    if (w->rfd >= 0)
        close(w->rfd);
    if (w->wfd >= 0)
        close(w->wfd);
    w->rfd = w->wfd = -1;
}
