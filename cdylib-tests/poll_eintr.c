/* Signals and the waiting calls: a SIGALRM handler interrupts poll, ppoll,
 * select, pselect and epoll_wait with EINTR, with or without SA_RESTART
 * (Linux never restarts them). Each waits at most 2 s on an fd that never
 * becomes ready, so a missing EINTR shows as a different line (a timeout),
 * not as a hang. select writes back the time that was left. Output is the
 * same with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "sigalrm.h"

static void run(const char *mode, int p[2], int ep) {
    int r;
    struct pollfd fds[2] = { { p[0], POLLIN, 0 }, { p[1], POLLPRI, 0 } };

    hits = 0;
    alarm_in(50);
    errno = 0;
    r = poll(fds, 1, 2000);
    printf("%s poll one fd: %d %s handler ran=%d\n", mode, r, ename(errno), hits);

    hits = 0;
    alarm_in(50);
    errno = 0;
    r = poll(fds, 2, 2000);
    printf("%s poll two fds: %d %s handler ran=%d\n", mode, r, ename(errno), hits);

    hits = 0;
    alarm_in(50);
    errno = 0;
    r = poll(NULL, 0, 2000);
    printf("%s poll no fds: %d %s handler ran=%d\n", mode, r, ename(errno), hits);

    struct timespec ts = { 2, 0 };
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = ppoll(fds, 1, &ts, NULL);
    printf("%s ppoll: %d %s handler ran=%d\n", mode, r, ename(errno), hits);

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = { 2, 0 };
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    long left = tv.tv_sec * 1000000L + tv.tv_usec;
    printf("%s select: %d %s handler ran=%d left in (1.5s, 2s)=%d\n", mode, r, ename(errno), hits,
           left > 1500000 && left < 2000000);

    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL);
    printf("%s pselect: %d %s handler ran=%d\n", mode, r, ename(errno), hits);

    struct epoll_event ev;
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = epoll_wait(ep, &ev, 1, 2000);
    printf("%s epoll_wait: %d %s handler ran=%d\n", mode, r, ename(errno), hits);
}

int main(void) {
    int p[2];
    if (pipe(p))
        return 1;
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = p[0] };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    handler(0);
    run("no SA_RESTART", p, ep);
    handler(SA_RESTART);
    run("SA_RESTART", p, ep);
    return 0;
}
