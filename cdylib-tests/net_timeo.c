/* SO_RCVTIMEO and SO_SNDTIMEO bound blocking socket calls like the
 * kernel's (rule 3): recv, read, recvfrom, accept wait about the receive
 * timeout and fail with EAGAIN; a send into a full socket waits about the
 * send timeout and fails with EAGAIN; a timeout of zero means none (data
 * arriving later is received). Bounds are generous: at least 90 % of the
 * timeout, at most several times it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void set_timeo(int fd, int opt, int ms) {
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    CHECK(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) == 0);
}

static void report(const char *what, ssize_t r, int e, double t0, double want) {
    double took = now() - t0;
    int in_bounds = took >= want * 0.9 && took < want * 5 + 0.5;
    if (r == -1 && e == EAGAIN && in_bounds)
        printf("%s: timed out ok\n", what);
    else
        printf("%s: r=%zd %s took %.3fs (wanted %.3fs)\n", what, r, strerrorname_np(e), took, want);
}

static int late_fd;

static void *late_writer(void *arg) {
    (void)arg;
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    CHECK(write(late_fd, "late", 4) == 4);
    return NULL;
}

int main(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char buf[16];
    double t0;
    ssize_t r;

    set_timeo(sv[0], SO_RCVTIMEO, 200);
    struct timeval got;
    socklen_t gl = sizeof got;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &gl) == 0);
    printf("getsockopt SO_RCVTIMEO: %lds %ldms\n", (long)got.tv_sec, (long)got.tv_usec / 1000);
    t0 = now();
    r = recv(sv[0], buf, sizeof buf, 0);
    report("recv with SO_RCVTIMEO 200ms", r, errno, t0, 0.2);
    t0 = now();
    r = read(sv[0], buf, sizeof buf);
    report("read with SO_RCVTIMEO 200ms", r, errno, t0, 0.2);
    t0 = now();
    r = recvfrom(sv[0], buf, sizeof buf, 0, NULL, NULL);
    report("recvfrom with SO_RCVTIMEO 200ms", r, errno, t0, 0.2);

    /* Timeout back to zero: no limit; a late write arrives. */
    set_timeo(sv[0], SO_RCVTIMEO, 0);
    late_fd = sv[1];
    pthread_t t;
    CHECK(pthread_create(&t, NULL, late_writer, NULL) == 0);
    r = recv(sv[0], buf, sizeof buf, 0);
    printf("recv without timeout after a late write: %zd %.4s\n", r, buf);
    pthread_join(t, NULL);

    /* A dup shares the socket, and so its timeout. */
    set_timeo(sv[0], SO_RCVTIMEO, 150);
    int d = dup(sv[0]);
    t0 = now();
    r = recv(d, buf, sizeof buf, 0);
    report("recv on a dup with the original's SO_RCVTIMEO", r, errno, t0, 0.15);
    close(d);

    /* Send into a full socket. */
    int sndbuf = 4096;
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
    static char chunk[1024];
    size_t filled = 0;
    while ((r = send(sv[1], chunk, sizeof chunk, MSG_DONTWAIT)) > 0) filled += r;
    CHECK(errno == EAGAIN && filled > 0);
    set_timeo(sv[1], SO_SNDTIMEO, 250);
    t0 = now();
    r = send(sv[1], chunk, sizeof chunk, 0);
    report("send into a full socket with SO_SNDTIMEO 250ms", r, errno, t0, 0.25);
    t0 = now();
    r = write(sv[1], chunk, sizeof chunk);
    report("write into a full socket with SO_SNDTIMEO 250ms", r, errno, t0, 0.25);

    /* accept honours SO_RCVTIMEO too. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(ls, 1) == 0);
    set_timeo(ls, SO_RCVTIMEO, 200);
    t0 = now();
    r = accept(ls, NULL, NULL);
    report("accept with SO_RCVTIMEO 200ms", r, errno, t0, 0.2);
    close(ls);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
