/* SPDX-License-Identifier: MIT */
/*
 * Suite `platform`: the platform layer (lib/platform.h) — futex-style waits
 * (timeout, wake, -EINTR from a signal handler, SA_RESTART), the lock's
 * deadline, readiness fds' level semantics, wake fds — and that no timed
 * wait of the library moves with the wall clock. Built with Criterion on
 * the default (Linux) back end, and with the plain runner on the POSIX
 * back end (make test-posix) and under TSan (make test-tsan).
 */
#include "minitest.h"
#include "platform.h"

#include "jktcp.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- a wall clock the test can step ------------------------------------ */

/*
 * This definition interposes on libc's for the whole test binary (the
 * library is linked in statically, so all of its clock reads come here).
 * It adds wall_step_s to CLOCK_REALTIME only: a wait that computed its
 * deadline on the wall clock would then end an hour late (the clock
 * "stepped back" after the deadline was computed) or at once. Zero
 * outside the one test that sets it.
 */
static atomic_llong wall_step_s;

typedef int (*clock_fn)(clockid_t, struct timespec *);

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static _Atomic(clock_fn) real;
    clock_fn f = atomic_load_explicit(&real, memory_order_relaxed);
    if (!f) {
        void *sym = dlsym(RTLD_NEXT, "clock_gettime");
        memcpy(&f, &sym, sizeof f);
        atomic_store_explicit(&real, f, memory_order_relaxed);
    }
    int r = f(id, ts);
    if (r == 0 && id == CLOCK_REALTIME)
        ts->tv_sec += (time_t)atomic_load_explicit(&wall_step_s, memory_order_relaxed);
    return r;
}

/* ---- helpers ------------------------------------------------------------ */

static double now_ms(void)
{
    return (double)jk_mono_ns() / 1e6;
}

static atomic_int handled;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static void install(bool restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    JT_ASSERT(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
}

/* A thread blocked in jk_wait (lock == NULL) or jk_lock_acquire. */
struct blocked {
    atomic_uint *word;
    unsigned val;
    struct jk_lock *lock;
    int timeout_ms;
    pthread_t th;
    atomic_bool returned;
    int result;
    double t_ret;
};

static void *blocked_main(void *p)
{
    struct blocked *b = p;
    uint64_t deadline = jk_deadline(b->timeout_ms);
    b->result = b->lock ? jk_lock_acquire(b->lock, deadline) : jk_wait(b->word, b->val, deadline);
    b->t_ret = now_ms();
    atomic_store(&b->returned, true);
    return NULL;
}

static void blocked_start(struct blocked *b)
{
    atomic_init(&b->returned, false);
    JT_ASSERT(pthread_create(&b->th, NULL, blocked_main, b) == 0, "pthread_create");
    usleep(50000); /* let it block */
}

static int blocked_join(struct blocked *b)
{
    pthread_join(b->th, NULL);
    return b->result;
}

static bool readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* ---- back end ----------------------------------------------------------- */

/* make test-posix sets JKT_EXPECT_PLATFORM: the POSIX run really is one. */
JT_TEST(platform, backend, 10)
{
    const char *want = getenv("JKT_EXPECT_PLATFORM");
    JT_LOG("platform layer: %s", jk_platform_name());
    JT_ASSERT(!want || strcmp(want, jk_platform_name()) == 0, "built with %s, expected %s",
              jk_platform_name(), want);
}

/* ---- waits -------------------------------------------------------------- */

JT_TEST(platform, wait_returns_at_once_when_the_word_differs, 10)
{
    atomic_uint w = 1;
    double t = now_ms();
    JT_ASSERT(jk_wait(&w, 0, JK_FOREVER) == 0, "value differs: 0");
    JT_ASSERT(jk_wait(&w, 0, jk_deadline(5000)) == 0, "value differs: 0");
    JT_ASSERT(now_ms() - t < 1000, "did not sleep");
    JT_ASSERT(jk_wait(&w, 1, jk_deadline(0)) == -ETIMEDOUT, "past deadline: -ETIMEDOUT");
}

JT_TEST(platform, wait_times_out_at_the_deadline, 10)
{
    atomic_uint w = 0;
    for (int ms = 1; ms <= 100; ms *= 10) {
        double t = now_ms();
        int r = jk_wait(&w, 0, jk_deadline(ms));
        double dt = now_ms() - t;
        JT_LOG("%d ms wait: %d after %.2f ms", ms, r, dt);
        JT_ASSERT(r == -ETIMEDOUT || r == 0, "%d", r); /* 0: a spurious wake-up */
        if (r == -ETIMEDOUT)
            JT_ASSERT(dt >= ms - 0.01 && dt < ms + 1000, "%d ms wait took %.2f ms", ms, dt);
    }
}

/* Ping-pong through two words: a lost wake-up hangs the test. */
static atomic_uint ping, pong;
#define ROUNDS 5000

static void *ponger(void *arg)
{
    (void)arg;
    for (unsigned i = 1; i <= ROUNDS; i++) {
        while (atomic_load(&ping) < i)
            jk_wait(&ping, i - 1, JK_FOREVER);
        atomic_store(&pong, i);
        jk_wake_all(&pong);
    }
    return NULL;
}

JT_TEST(platform, wake_is_never_lost, 30)
{
    pthread_t th;
    JT_ASSERT(pthread_create(&th, NULL, ponger, NULL) == 0, "pthread_create");
    for (unsigned i = 1; i <= ROUNDS; i++) {
        atomic_store(&ping, i);
        jk_wake_all(&ping);
        while (atomic_load(&pong) < i)
            jk_wait(&pong, i - 1, jk_deadline(10000));
    }
    pthread_join(th, NULL);
    JT_ASSERT(atomic_load(&pong) == ROUNDS, "all rounds");
}

JT_TEST(platform, wake_all_and_wake_one, 20)
{
    static atomic_uint w;
    struct blocked b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = (struct blocked){.word = &w, .val = 0, .timeout_ms = 10000};
        blocked_start(&b[i]);
    }
    jk_wake_one(&w); /* the word is unchanged: only a wake ends a wait */
    usleep(100000);
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += atomic_load(&b[i].returned);
    JT_ASSERT(n == 1, "jk_wake_one woke %d waiters", n);
    jk_wake_all(&w);
    for (int i = 0; i < 3; i++)
        JT_ASSERT(blocked_join(&b[i]) == 0, "woken: 0, got %d", b[i].result);
}

/* A handler ends a wait with a deadline, SA_RESTART or not, and one
 * without a deadline unless it has SA_RESTART (FUTEX_WAIT's rules). */
static void interrupt(bool restart, int timeout_ms, struct jk_lock *lock)
{
    install(restart);
    static atomic_uint w;
    struct blocked b = {.word = &w, .val = 0, .lock = lock, .timeout_ms = timeout_ms};
    blocked_start(&b);
    int before = atomic_load(&handled);
    double t = now_ms();
    JT_ASSERT(pthread_kill(b.th, SIGUSR1) == 0, "pthread_kill");
    int r = blocked_join(&b);
    JT_LOG("%s, timeout %d, SA_RESTART %d: %d after %.2f ms", lock ? "lock" : "wait", timeout_ms,
           restart, r, b.t_ret - t);
    JT_ASSERT(atomic_load(&handled) > before, "the handler did not run");
    JT_ASSERT(r == -EINTR, "expected -EINTR, got %d", r);
    JT_ASSERT(b.t_ret - t < 100, "returned %.1f ms after the signal", b.t_ret - t);
}

JT_TEST(platform, handler_interrupts_a_timed_wait, 20)
{
    interrupt(false, 10000, NULL);
    interrupt(true, 10000, NULL);
}

JT_TEST(platform, handler_interrupts_an_endless_wait, 20)
{
    interrupt(false, -1, NULL);
}

JT_TEST(platform, sa_restart_resumes_an_endless_wait, 20)
{
    install(true);
    static atomic_uint w;
    struct blocked b = {.word = &w, .val = 0, .timeout_ms = -1};
    blocked_start(&b);
    int before = atomic_load(&handled);
    JT_ASSERT(pthread_kill(b.th, SIGUSR1) == 0, "pthread_kill");
    usleep(200000);
#ifndef __SANITIZE_THREAD__ /* TSan runs a handler only when the thread leaves the syscall */
    JT_ASSERT(atomic_load(&handled) > before, "the handler did not run");
#else
    (void)before;
#endif
    JT_ASSERT(!atomic_load(&b.returned), "returned %d after an SA_RESTART handler", b.result);
    atomic_store(&w, 1);
    jk_wake_all(&w);
    JT_ASSERT(blocked_join(&b) == 0, "woken: 0, got %d", b.result);
}

/* ---- lock --------------------------------------------------------------- */

JT_TEST(platform, lock_deadline, 20)
{
    static struct jk_lock l;
    JT_ASSERT(jk_lock_acquire(&l, JK_FOREVER) == 0, "free lock");
    JT_ASSERT(jk_lock_acquire(&l, jk_deadline(0)) == -EAGAIN, "held, deadline now: -EAGAIN");
    struct blocked b = {.lock = &l, .timeout_ms = 100};
    double t = now_ms();
    blocked_start(&b);
    JT_ASSERT(blocked_join(&b) == -EAGAIN, "held for the deadline: -EAGAIN, got %d", b.result);
    JT_ASSERT(b.t_ret - t >= 99.9 && b.t_ret - t < 1100, "gave up after %.1f ms", b.t_ret - t);
    b = (struct blocked){.lock = &l, .timeout_ms = 10000};
    blocked_start(&b);
    jk_lock_release(&l);
    JT_ASSERT(blocked_join(&b) == 0, "released while waiting: 0, got %d", b.result);
    jk_lock_release(&l); /* on behalf of the thread that took it */
    JT_ASSERT(jk_lock_acquire(&l, jk_deadline(0)) == 0, "free again");
}

JT_TEST(platform, lock_wait_is_interruptible, 20)
{
    static struct jk_lock l;
    JT_ASSERT(jk_lock_acquire(&l, JK_FOREVER) == 0, "free lock");
    interrupt(false, -1, &l);
    interrupt(true, 10000, &l);
    jk_lock_release(&l);
    JT_ASSERT(jk_lock_acquire(&l, jk_deadline(0)) == 0, "free again after the interrupted waits");
    jk_lock_release(&l);
}

static struct jk_lock count_lock;
static unsigned long count;

static void *count_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        while (jk_lock_acquire(&count_lock, JK_FOREVER) != 0)
            ;
        count++;
        jk_lock_release(&count_lock);
    }
    return NULL;
}

JT_TEST(platform, lock_excludes, 30)
{
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        JT_ASSERT(pthread_create(&th[i], NULL, count_main, NULL) == 0, "pthread_create");
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    JT_ASSERT(count == 80000, "count %lu", count);
}

/* ---- wake fd and readiness fd --------------------------------------------- */

JT_TEST(platform, wakefd_signal_and_drain, 20)
{
    struct jk_wakefd w;
    JT_ASSERT(jk_wakefd_open(&w) == 0, "open");
    int fd = jk_wakefd_fd(&w);
    JT_ASSERT(fd >= 0 && !readable(fd), "starts unreadable");
    for (int i = 0; i < 3; i++)
        JT_ASSERT(jk_wakefd_signal(&w) == 0, "signal");
    JT_ASSERT(readable(fd), "readable after signals");
    jk_wakefd_drain(&w);
    JT_ASSERT(!readable(fd), "one drain clears any number of signals");
    jk_wakefd_drain(&w);
    JT_ASSERT(!readable(fd), "draining an unreadable one is harmless");
    for (int i = 0; i < 100000; i++) /* more than a pipe holds */
        JT_ASSERT(jk_wakefd_signal(&w) == 0, "signal %d: a full one is still signalled", i);
    JT_ASSERT(readable(fd), "readable when full");
    jk_wakefd_drain(&w);
    JT_ASSERT(!readable(fd), "drained when full");
    JT_ASSERT(jk_wakefd_signal(&w) == 0 && readable(fd), "signalled again");
    jk_wakefd_close(&w);
    JT_ASSERT(w.rfd == -1 && w.wfd == -1, "closed");
}

JT_TEST(platform, ready_is_level_triggered, 20)
{
    struct jk_ready r;
    jk_ready_init(&r);
    jk_ready_raise(&r); /* no fd yet: nothing to do */
    jk_ready_lower(&r);
    bool created;
    int fd = jk_ready_fd(&r, &created);
    JT_ASSERT(fd >= 0 && created, "created on first use: %d", fd);
    JT_ASSERT(jk_ready_fd(&r, &created) == fd && !created, "the same fd after");
    JT_ASSERT(!readable(fd), "starts lowered");
    jk_ready_raise(&r);
    jk_ready_raise(&r);
    JT_ASSERT(readable(fd), "raised");
    JT_ASSERT(readable(fd), "stays readable until lowered (level, not edge)");
    jk_ready_lower(&r);
    JT_ASSERT(!readable(fd), "one lower undoes any number of raises");
    jk_ready_lower(&r);
    JT_ASSERT(!readable(fd), "lowered twice");
    jk_ready_raise(&r);
    JT_ASSERT(readable(fd), "raised again");
    jk_ready_close(&r);
    JT_ASSERT(atomic_load(&r.fd) == -1, "closed");
    jk_ready_raise(&r); /* after close: nothing to do */
}

static struct jk_ready race_r;

static void *race_fd(void *arg)
{
    bool created;
    *(int *)arg = jk_ready_fd(&race_r, &created) * 2 + created;
    return NULL;
}

JT_TEST(platform, ready_fd_created_once_by_racing_threads, 20)
{
    jk_ready_init(&race_r);
    pthread_t th[4];
    int got[4];
    for (int i = 0; i < 4; i++)
        JT_ASSERT(pthread_create(&th[i], NULL, race_fd, &got[i]) == 0, "pthread_create");
    int creators = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        creators += got[i] & 1;
        JT_ASSERT(got[i] >> 1 == got[0] >> 1 && got[i] >= 0, "one fd for all: %d", got[i] >> 1);
    }
    JT_ASSERT(creators == 1, "%d threads say they created it", creators);
    jk_ready_close(&race_r);
}

/* ---- the wall clock ------------------------------------------------------ */

/* A timed wait on a handle: accept on a listener nobody connects to. */
static double accept_ms(jktcp_listener l, int timeout_ms)
{
    jktcp_stream s;
    double t = now_ms();
    int r = jktcp_listener_accept(l, timeout_ms, &s);
    JT_ASSERT(r == -EAGAIN, "accept with no peer: %d", r);
    return now_ms() - t;
}

static void check_timed_waits(jktcp_listener l)
{
    static atomic_uint w;
    double t = now_ms();
    int r = jk_wait(&w, 0, jk_deadline(100));
    double dt = now_ms() - t;
    JT_ASSERT(r == -ETIMEDOUT || r == 0, "wait: %d", r);
    JT_ASSERT(r != -ETIMEDOUT || (dt >= 99.9 && dt < 1100), "100 ms wait took %.1f ms", dt);
    static struct jk_lock lk;
    JT_ASSERT(jk_lock_acquire(&lk, JK_FOREVER) == 0, "lock");
    struct blocked b = {.lock = &lk, .timeout_ms = 100};
    t = now_ms();
    blocked_start(&b);
    JT_ASSERT(blocked_join(&b) == -EAGAIN, "lock: %d", b.result);
    JT_ASSERT(b.t_ret - t >= 99.9 && b.t_ret - t < 1100, "100 ms lock wait took %.1f", b.t_ret - t);
    jk_lock_release(&lk);
    dt = accept_ms(l, 150);
    JT_ASSERT(dt >= 149.9 && dt < 1150, "150 ms accept took %.1f ms", dt);
}

/*
 * The wall clock steps an hour either way while timed waits run: none of
 * them ends early or late (each would, by an hour, if it slept until a
 * CLOCK_REALTIME deadline as handle.c's condition variable once did).
 */
JT_TEST(platform, wall_clock_steps_do_not_move_timed_waits, 30)
{
    jktcp_port *port;
    jktcp_transport *t;
    jktcp_adapter *a;
    jktcp_handle h;
    jktcp_listener l;
    JT_ASSERT(jktcp_port_new(0, &port) == 0 && jktcp_port_transport(port, &t) == 0, "port");
    JT_ASSERT(jktcp_adapter_new(t, "198.18.0.2", "198.18.0.1", &a) == 0, "adapter");
    JT_ASSERT(jktcp_handle_start(a, &h) == 0, "handle");
    JT_ASSERT(jktcp_handle_listen(h, 8080, 0, &l) == 0, "listen");
    for (int step = -3600; step <= 3600; step += 7200) {
        atomic_store(&wall_step_s, step);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long off = (long)(ts.tv_sec - time(NULL));
        JT_ASSERT(off > step - 5 && off < step + 5, "the wall clock is off by %ld s", off);
        check_timed_waits(l);
    }
    atomic_store(&wall_step_s, 0);
    JT_ASSERT(jktcp_listener_close(l) == 0, "listener close");
    JT_ASSERT(jktcp_handle_close(h, 0) == 0, "handle close");
    jktcp_port_free(port);
}
