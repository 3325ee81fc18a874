/* epoll_wait and epoll_pwait on the program's own epoll fd: timeouts,
 * level- and edge-triggered readiness from another thread, EPOLLONESHOT,
 * several events in one call, maxevents, and the errors. Output is the
 * same with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void fail(const char *what) {
    printf("FAIL: %s (errno %s)\n", what, errno ? strerrorname_np(errno) : "0");
    fflush(stdout);
    exit(1);
}

static void timed(const char *what, long start, long min_ms) {
    long el = now_ms() - start;
    if (el >= min_ms && el < min_ms + 5000)
        printf("%s: timeout after >= %ld ms ok\n", what, min_ms);
    else
        printf("%s: timeout after %ld ms, expected >= %ld\n", what, el, min_ms);
}

struct delayed { int fd; int ms; };

static void *write_later(void *p) {
    struct delayed *d = p;
    usleep(d->ms * 1000);
    if (write(d->fd, "x", 1) != 1)
        fail("write_later");
    return NULL;
}

int main(void) {
    int a[2], b[2];
    if (pipe(a) || pipe(b))
        fail("pipe");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        fail("epoll_create1");
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xA };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev))
        fail("epoll_ctl a");
    ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 0xB };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &ev))
        fail("epoll_ctl b");

    struct epoll_event out[4];
    /* 1. Nothing ready. */
    long t0 = now_ms();
    int n = epoll_wait(ep, out, 4, 100);
    printf("epoll_wait idle: %d\n", n);
    timed("epoll_wait", t0, 100);
    n = epoll_wait(ep, out, 4, 0);
    printf("epoll_wait zero timeout: %d\n", n);

    /* 2. Level-triggered, woken by a thread, no limit. */
    struct delayed d = { a[1], 50 };
    pthread_t th;
    pthread_create(&th, NULL, write_later, &d);
    n = epoll_wait(ep, out, 4, -1);
    printf("epoll_wait woken: %d data=%#llx events=%#x\n", n, (unsigned long long)out[0].data.u64, out[0].events);
    pthread_join(th, NULL);
    /* Still readable: level-triggered reports it again. */
    n = epoll_wait(ep, out, 4, 1000);
    printf("epoll_wait level again: %d data=%#llx\n", n, (unsigned long long)out[0].data.u64);
    char c;
    if (read(a[0], &c, 1) != 1)
        fail("read");

    /* 3. Edge-triggered: one report per edge. */
    d = (struct delayed){ b[1], 40 };
    pthread_create(&th, NULL, write_later, &d);
    n = epoll_wait(ep, out, 4, 5000);
    printf("epoll_wait edge: %d data=%#llx\n", n, (unsigned long long)out[0].data.u64);
    pthread_join(th, NULL);
    t0 = now_ms();
    n = epoll_wait(ep, out, 4, 60);
    printf("epoll_wait edge consumed: %d\n", n);
    timed("epoll_wait edge consumed", t0, 60);

    /* 4. Two ready at once; maxevents 1 then the rest. */
    if (write(a[1], "y", 1) != 1 || write(b[1], "z", 1) != 1)
        fail("write");
    n = epoll_wait(ep, out, 4, 1000);
    unsigned long long mask = 0;
    for (int i = 0; i < n; i++)
        mask |= out[i].data.u64;
    printf("epoll_wait two: %d mask=%#llx\n", n, mask);
    n = epoll_wait(ep, out, 1, 1000);
    printf("epoll_wait maxevents 1: %d\n", n);

    /* 5. EPOLLONESHOT: disarmed after one report. */
    if (read(a[0], &c, 1) != 1)
        fail("read");
    ev = (struct epoll_event){ .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 0xC };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, a[0], &ev))
        fail("epoll_ctl mod");
    d = (struct delayed){ a[1], 30 };
    pthread_create(&th, NULL, write_later, &d);
    /* b[0] still holds data but is edge-triggered and already reported. */
    n = epoll_wait(ep, out, 4, 5000);
    printf("epoll_wait oneshot: %d data=%#llx\n", n, (unsigned long long)out[0].data.u64);
    pthread_join(th, NULL);
    n = epoll_wait(ep, out, 4, 50);
    printf("epoll_wait oneshot disarmed: %d\n", n);

    /* 6. epoll_pwait: NULL mask, the current mask, a timeout. */
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    t0 = now_ms();
    n = epoll_pwait(ep, out, 4, 70, NULL);
    printf("epoll_pwait idle: %d\n", n);
    timed("epoll_pwait", t0, 70);
    ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0xD };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, a[0], &ev))
        fail("epoll_ctl mod");
    n = epoll_pwait(ep, out, 4, 1000, &cur);
    printf("epoll_pwait ready: %d data=%#llx\n", n, (unsigned long long)out[0].data.u64);

    /* 7. Hang-up is reported without being asked for. */
    if (read(a[0], &c, 1) != 1)
        fail("read");
    close(a[1]);
    n = epoll_wait(ep, out, 4, 1000);
    printf("epoll_wait hang-up: %d events=%#x\n", n, out[0].events);

    /* 8. Errors. */
    errno = 0;
    n = epoll_wait(ep, out, 0, 10);
    printf("epoll_wait maxevents 0: %d %s\n", n, strerrorname_np(errno));
    n = epoll_wait(a[0], out, 4, 10);
    printf("epoll_wait not an epoll fd: %d %s\n", n, strerrorname_np(errno));
    int closed = dup(ep);
    close(closed);
    n = epoll_wait(closed, out, 4, 10);
    printf("epoll_wait closed fd: %d %s\n", n, strerrorname_np(errno));

    /* 9. An empty epoll set: a plain sleep. */
    int ep2 = epoll_create1(0);
    t0 = now_ms();
    n = epoll_wait(ep2, out, 4, 50);
    printf("epoll_wait empty set: %d\n", n);
    timed("epoll_wait empty set", t0, 50);
    return 0;
}
