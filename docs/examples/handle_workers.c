/* SPDX-License-Identifier: MIT */
/*
 * handle_workers: the threaded handle, with a pool of worker threads that
 * share streams.
 *
 * jktcp_handle_start moves the adapter onto its own I/O thread. From then
 * on streams are plain ids (a struct holding a uint64_t): copy them into
 * any thread and call jktcp_stream_* there, no locking needed.
 *
 * Here WORKERS threads all write to all STREAMS streams at the same time,
 * one fixed-size record per call. Concurrent writers on one stream are
 * serialised by the library: one jktcp_stream_write_all never interleaves
 * with another. One reader thread per stream reads the echo and checks
 * that every record arrived whole and that each worker's records are in
 * the order that worker wrote them.
 *
 *   usage: handle_workers TRANSPORT LOCAL_IP PEER_IP PORT [STREAMS [WORKERS [RECORDS]]]
 *     TRANSPORT  tun:NAME (an existing TUN device) or fd:N (an inherited packet fd)
 *     PORT       an echo server on the peer
 *     RECORDS    records each worker writes to each stream (default 500)
 */
#include <jktcp.h>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 16
#define MAX_WORKERS 16

struct record {
    uint32_t worker, seq;
    uint8_t payload[504]; /* 512 bytes in all */
};

static jktcp_stream streams[MAX_STREAMS];
static int nstreams = 3, nworkers = 4, nrecords = 500;

static void fill(struct record *r, uint32_t worker, uint32_t seq, int stream)
{
    r->worker = worker;
    r->seq = seq;
    for (size_t i = 0; i < sizeof r->payload; i++)
        r->payload[i] = (uint8_t)(worker * 31 + seq * 7 + (uint32_t)stream * 13 + i);
}

/* A worker: record seq to every stream in turn, then the next seq. */
static void *worker(void *arg)
{
    uint32_t w = (uint32_t)(uintptr_t)arg;
    struct record r;
    for (int seq = 0; seq < nrecords; seq++)
        for (int k = 0; k < nstreams; k++) {
            fill(&r, w, (uint32_t)seq, k);
            ssize_t n = jktcp_stream_write_all(streams[k], &r, sizeof r, 10000);
            if (n != (ssize_t)sizeof r) {
                fprintf(stderr, "worker %u, stream %d: %s\n", w, k, jktcp_strerror((int)n));
                return (void *)1;
            }
        }
    return NULL;
}

/* A reader: every record of stream k, checked; then the end of stream. */
static void *reader(void *arg)
{
    int k = (int)(uintptr_t)arg;
    uint32_t next[MAX_WORKERS] = {0}; /* next seq expected from each worker */
    struct record r, want;
    long total = (long)nworkers * nrecords;
    for (long i = 0; i < total; i++) {
        size_t got = 0;
        while (got < sizeof r) { /* a read may return part of a record */
            ssize_t n = jktcp_stream_read(streams[k], (char *)&r + got, sizeof r - got, 10000);
            if (n <= 0) {
                fprintf(stderr, "stream %d: read: %s\n", k, n ? jktcp_strerror((int)n) : "EOF");
                return (void *)1;
            }
            got += (size_t)n;
        }
        if (r.worker >= (uint32_t)nworkers || r.seq != next[r.worker]) {
            fprintf(stderr, "stream %d: record %ld out of order\n", k, i);
            return (void *)1;
        }
        fill(&want, r.worker, r.seq, k);
        if (memcmp(&r, &want, sizeof r) != 0) {
            fprintf(stderr, "stream %d: record %ld damaged\n", k, i);
            return (void *)1;
        }
        next[r.worker]++;
    }
    char b; /* main shuts the stream down once the workers are done */
    ssize_t n = jktcp_stream_read(streams[k], &b, 1, 10000);
    if (n != 0) {
        fprintf(stderr, "stream %d: expected end of stream, got %zd\n", k, n);
        return (void *)1;
    }
    printf("stream %d: %ld records from %d workers, whole and in each worker's order\n", k, total,
           nworkers);
    return NULL;
}

static int open_packet_fd(const char *spec)
{
    if (strncmp(spec, "fd:", 3) == 0)
        return atoi(spec + 3);
    if (strncmp(spec, "tun:", 4) != 0 || if_nametoindex(spec + 4) == 0) {
        fprintf(stderr, "%s: not fd:N nor tun:NAME of an existing TUN device\n", spec);
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", spec + 4);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0) {
        perror("attaching to the TUN device");
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s tun:NAME|fd:N LOCAL_IP PEER_IP PORT [STREAMS [WORKERS [RECORDS]]]\n",
                argv[0]);
        return 2;
    }
    nstreams = argc > 5 ? atoi(argv[5]) : nstreams;
    nworkers = argc > 6 ? atoi(argv[6]) : nworkers;
    nrecords = argc > 7 ? atoi(argv[7]) : nrecords;
    if (nstreams < 1 || nstreams > MAX_STREAMS || nworkers < 1 || nworkers > MAX_WORKERS ||
        nrecords < 1)
        return 2;
    int fd = open_packet_fd(argv[1]);
    if (fd < 0)
        return 1;

    /* The adapter is set up as in adapter_echo.c, then handed to a handle. */
    jktcp_transport *t;
    jktcp_adapter *a;
    jktcp_handle h;
    int rc = jktcp_transport_fd(fd, JKTCP_FRAMING_PACKET, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, argv[2], argv[3], &a);
    if (rc == 0)
        rc = jktcp_handle_start(a, &h); /* the handle owns the adapter now */
    if (rc != 0) {
        fprintf(stderr, "handle: %s\n", jktcp_strerror(rc));
        return 1;
    }

    for (int k = 0; k < nstreams; k++) {
        rc = jktcp_handle_connect(h, atoi(argv[4]), 5000, &streams[k]);
        if (rc != 0) {
            fprintf(stderr, "connect: %s\n", jktcp_strerror(rc));
            return 1; /* ending the process ends the handle's I/O thread too */
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t rd[MAX_STREAMS], wk[MAX_WORKERS];
    for (int k = 0; k < nstreams; k++)
        if (pthread_create(&rd[k], NULL, reader, (void *)(uintptr_t)k) != 0)
            return 1;
    for (int i = 0; i < nworkers; i++)
        if (pthread_create(&wk[i], NULL, worker, (void *)(uintptr_t)i) != 0)
            return 1;
    int ok = 1;
    void *res;
    for (int i = 0; i < nworkers; i++)
        ok = pthread_join(wk[i], &res) == 0 && res == NULL && ok;
    for (int k = 0; k < nstreams; k++)
        jktcp_stream_shutdown(streams[k]); /* FIN after everything written */
    for (int k = 0; k < nstreams; k++)
        ok = pthread_join(rd[k], &res) == 0 && res == NULL && ok;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double bytes = (double)nstreams * nworkers * nrecords * sizeof(struct record);
    if (ok)
        printf("%.0f bytes each way in %.3f s (%.1f MB/s)\n", bytes, secs, bytes / secs / 1e6);

    for (int k = 0; k < nstreams; k++)
        jktcp_stream_close(streams[k]); /* once per id; a second close is -EBADF */
    jktcp_handle_close(h, 1000);       /* lets closes finish, stops the I/O thread */
    close(fd);
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
