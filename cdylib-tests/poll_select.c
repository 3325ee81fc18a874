/* select and pselect with plain blocking fds: timeouts (and Linux's update
 * of select's timeval), readiness from another thread, write and exception
 * sets (TCP urgent data), the sleep idiom select(0, ...), and the errors.
 * Output is the same with and without the preload. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
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

struct delayed { int fd; int ms; int oob; };

static void *send_later(void *p) {
    struct delayed *d = p;
    usleep(d->ms * 1000);
    if (send(d->fd, "!", 1, d->oob ? MSG_OOB : 0) != 1)
        fail("send_later");
    return NULL;
}

int main(void) {
    int p[2];
    if (pipe(p))
        fail("pipe");
    fd_set r, w, e;

    /* 1. Timeout: 0, sets cleared, timeval updated to what is left (0). */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 0, 120 * 1000 };
    long t0 = now_ms();
    int n = select(p[0] + 1, &r, NULL, NULL, &tv);
    printf("select empty pipe: %d isset=%d tv=%ld.%06ld\n", n, FD_ISSET(p[0], &r), (long)tv.tv_sec,
           (long)tv.tv_usec);
    timed("select", t0, 120);

    /* 2. Ready at once: 1, timeval barely touched. */
    if (write(p[1], "x", 1) != 1)
        fail("write");
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    tv = (struct timeval){ 2, 0 };
    n = select(p[1] + 1, &r, &w, NULL, &tv);
    printf("select ready: %d r=%d w=%d tv left in (1.9s, 2s]=%d\n", n, FD_ISSET(p[0], &r), FD_ISSET(p[1], &w),
           tv.tv_sec * 1000000L + tv.tv_usec > 1900000L && tv.tv_sec * 1000000L + tv.tv_usec <= 2000000L);
    char c;
    if (read(p[0], &c, 1) != 1)
        fail("read");

    /* 3. Woken by another thread, NULL timeout. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        fail("socketpair");
    struct delayed d = { sv[1], 50, 0 };
    pthread_t th;
    pthread_create(&th, NULL, send_later, &d);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(sv[0], &r);
    n = select(sv[0] + 1, &r, NULL, NULL, NULL);
    printf("select woken: %d pipe=%d sock=%d\n", n, FD_ISSET(p[0], &r), FD_ISSET(sv[0], &r));
    pthread_join(th, NULL);
    if (recv(sv[0], &c, 1, 0) != 1)
        fail("recv");

    /* 4. Woken with a timeout: the timeval holds what was left. */
    pthread_create(&th, NULL, send_later, &d);
    FD_ZERO(&r);
    FD_SET(sv[0], &r);
    tv = (struct timeval){ 5, 0 };
    n = select(sv[0] + 1, &r, NULL, NULL, &tv);
    long left = tv.tv_sec * 1000000L + tv.tv_usec;
    printf("select woken with timeout: %d sock=%d left in [0.5s, 4.96s]=%d\n", n, FD_ISSET(sv[0], &r),
           left >= 500000 && left <= 4960000);
    pthread_join(th, NULL);
    if (recv(sv[0], &c, 1, 0) != 1)
        fail("recv");

    /* 5. Exception set: TCP urgent data from another thread. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1) || getsockname(ls, (struct sockaddr *)&sa, &sl))
        fail("listen");
    int cs = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cs, (struct sockaddr *)&sa, sizeof sa))
        fail("connect");
    int as = accept(ls, NULL, NULL);
    if (as < 0)
        fail("accept");
    d = (struct delayed){ cs, 50, 1 };
    pthread_create(&th, NULL, send_later, &d);
    FD_ZERO(&e);
    FD_SET(as, &e);
    tv = (struct timeval){ 5, 0 };
    n = select(as + 1, NULL, NULL, &e, &tv);
    printf("select urgent data: %d except=%d\n", n, FD_ISSET(as, &e));
    pthread_join(th, NULL);
    close(as);
    close(cs);
    close(ls);

    /* 6. The sleep idiom. */
    tv = (struct timeval){ 0, 70 * 1000 };
    t0 = now_ms();
    n = select(0, NULL, NULL, NULL, &tv);
    printf("select sleep: %d tv=%ld.%06ld\n", n, (long)tv.tv_sec, (long)tv.tv_usec);
    timed("select sleep", t0, 70);

    /* 7. tv_usec of a million or more is normalised, not refused. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 0;
    tv.tv_usec = 1000000 + 30000;
    t0 = now_ms();
    n = select(p[0] + 1, &r, NULL, NULL, &tv);
    printf("select big usec: %d tv=%ld.%06ld\n", n, (long)tv.tv_sec, (long)tv.tv_usec);
    timed("select big usec", t0, 1030);

    /* 8. Errors: a closed fd, a negative timeout, a negative nfds. */
    int closed = dup(p[0]);
    close(closed);
    FD_ZERO(&r);
    FD_SET(closed, &r);
    tv = (struct timeval){ 1, 0 };
    errno = 0;
    n = select(closed + 1, &r, NULL, NULL, &tv);
    printf("select closed fd: %d %s\n", n, strerrorname_np(errno));
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){ -1, 0 };
    n = select(p[0] + 1, &r, NULL, NULL, &tv);
    printf("select negative timeout: %d %s\n", n, strerrorname_np(errno));
    tv = (struct timeval){ 0, 1000 };
    n = select(-1, &r, NULL, NULL, &tv);
    printf("select negative nfds: %d %s\n", n, strerrorname_np(errno));

    /* 9. pselect: timeout (not written back), woken, current mask, errors. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec ts = { 0, 60 * 1000000L };
    t0 = now_ms();
    errno = 777;
    n = pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL);
    printf("pselect: %d isset=%d ts unchanged=%d errno=%d\n", n, FD_ISSET(p[0], &r),
           ts.tv_sec == 0 && ts.tv_nsec == 60 * 1000000L, errno);
    timed("pselect", t0, 60);
    d = (struct delayed){ sv[1], 40, 0 };
    pthread_create(&th, NULL, send_later, &d);
    FD_ZERO(&r);
    FD_SET(sv[0], &r);
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    n = pselect(sv[0] + 1, &r, NULL, NULL, NULL, &cur);
    printf("pselect woken: %d sock=%d\n", n, FD_ISSET(sv[0], &r));
    pthread_join(th, NULL);
    ts = (struct timespec){ 0, 2000000000L };
    n = pselect(sv[0] + 1, &r, NULL, NULL, &ts, NULL);
    printf("pselect bad timespec: %d %s\n", n, strerrorname_np(errno));
    return 0;
}
