/* SPDX-License-Identifier: MIT */
/* The memory and scale case of jktcp-bench (see scale.h). */
#include "scale.h"

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "streamio.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCALE_PORT 5007

static double rss_mib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* The kernel's side in a child (same namespace): until the pipe closes. */
static pid_t server_child(int family, int *done_fd)
{
    int ready[2], done[2];
    if (pipe(ready) || pipe(done))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        close(done[1]);
        struct rlimit rl = {1 << 16, 1 << 16};
        setrlimit(RLIMIT_NOFILE, &rl);
        struct jkt_server s;
        memset(&s, 0, sizeof s);
        s.kind = JKT_SRV_ECHO;
        s.family = family;
        s.port = SCALE_PORT;
        s.backlog = 4096;
        char c = 0;
        if (jkt_server_start(&s) < 0 || write(ready[1], &c, 1) != 1)
            _exit(1);
        while (read(done[0], &c, 1) > 0) {
        }
        jkt_server_stop(&s);
        _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    char c;
    if (pid < 0 || read(ready[0], &c, 1) != 1) {
        close(ready[0]);
        return -1;
    }
    close(ready[0]);
    *done_fd = done[1];
    return pid;
}

struct bulk {
    jktcp_stream s;
    uint64_t n, sent;
    long err;
};

static void *bulk_writer(void *arg)
{
    struct bulk *b = arg;
    b->err = jkt_stream_send_pattern(b->s, b->n, 5, 30000, &b->sent);
    return NULL;
}

/* Echo n bytes through s: a writer thread, verified here. */
static int bulk_echo(jktcp_stream s, uint64_t n)
{
    struct bulk b = {.s = s, .n = n};
    pthread_t th;
    if (pthread_create(&th, NULL, bulk_writer, &b))
        return -1;
    uint64_t got, bad;
    long err = jkt_stream_recv_pattern(s, n, 5, 30000, &got, &bad);
    pthread_join(th, NULL);
    return err == 0 && bad == UINT64_MAX && !b.err ? 0 : -1;
}

static bool echo64(jktcp_stream s, int i)
{
    uint8_t m[64], back[64];
    for (int k = 0; k < 64; k++)
        m[k] = (uint8_t)(i * 31 + k);
    if (jktcp_stream_write_all(s, m, sizeof m, 5000) != (ssize_t)sizeof m)
        return false;
    for (size_t got = 0; got < sizeof back;) {
        ssize_t r = jktcp_stream_read(s, back + got, sizeof back - got, 5000);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return memcmp(m, back, sizeof m) == 0;
}

int bench_scale(unsigned mtu, int family, int streams, unsigned bulk_mib, struct scale_result *out)
{
    memset(out, 0, sizeof *out);
    struct jkt_tun tun;
    int done_fd = -1;
    if (jkt_tun_open(NULL, mtu, 0, &tun) < 0)
        return -1;
    pid_t pid = server_child(family, &done_fd);
    jktcp_transport *t;
    jktcp_adapter *a;
    jktcp_handle h;
    if (pid < 0 || jktcp_transport_fd(tun.fd, JKTCP_FRAMING_PACKET, &t) < 0 ||
        jktcp_adapter_new(t, jkt_local_ip(family), jkt_kernel_ip(family), &a) < 0)
        return -1;
    jktcp_adapter_set_mtu(a, mtu);
    jktcp_adapter_set_option(a, JKTCP_OPT_MAX_CONNS, streams + 16);
    if (jktcp_handle_start(a, &h) < 0)
        return -1;
    jktcp_stream *s = calloc((size_t)streams + 1, sizeof *s);
    int rc = -1;
    double rss0 = rss_mib();
    if (!s || jktcp_handle_connect(h, SCALE_PORT, 3000, &s[0]) < 0 ||
        bulk_echo(s[0], (uint64_t)bulk_mib << 20) < 0)
        goto out;
    out->busy_mib = rss_mib() - rss0;
    usleep(1500000); /* JK_TRIM_IDLE_US and some */
    out->idle_mib = rss_mib() - rss0;
    double rss1 = rss_mib(), t0 = jkt_now_s();
    for (int i = 1; i <= streams; i++) {
        if (jktcp_handle_connect(h, SCALE_PORT, 5000, &s[i]) < 0)
            break;
        out->streams++;
        out->verified += echo64(s[i], i);
    }
    out->open_s = jkt_now_s() - t0;
    usleep(1500000);
    if (out->streams)
        out->per_stream_kib = (rss_mib() - rss1) * 1024.0 / out->streams;
    rc = 0;
out:
    for (int i = 0; s && i <= streams; i++)
        if (s[i].id)
            jktcp_stream_close(s[i]);
    jktcp_handle_close(h, 1000);
    free(s);
    if (done_fd >= 0)
        close(done_fd);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return rc;
}
