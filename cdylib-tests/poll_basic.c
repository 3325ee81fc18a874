/* poll, __poll and ppoll with plain blocking fds: timeouts, readiness
 * reported by another thread and by a child process, POLLHUP, POLLNVAL,
 * negative fds, several fds at once, POLLOUT on a full socket, and the
 * errors. Output is the same with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern int __poll(struct pollfd *fds, nfds_t nfds, int timeout);

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void fail(const char *what) {
    printf("FAIL: %s (errno %s)\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "0");
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

struct delayed { int fd; int ms; const char *data; };

static void *write_later(void *p) {
    struct delayed *d = p;
    usleep(d->ms * 1000);
    if (write(d->fd, d->data, strlen(d->data)) < 0)
        fail("write_later");
    return NULL;
}

static void *drain_later(void *p) {
    struct delayed *d = p;
    char buf[65536];
    usleep(d->ms * 1000);
    if (recv(d->fd, buf, sizeof buf, 0) <= 0)
        fail("drain_later");
    while (recv(d->fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    return NULL;
}

int main(void) {
    int p[2], q[2];
    if (pipe(p) || pipe(q))
        fail("pipe");

    /* 1. Nothing ready: times out, revents cleared. */
    struct pollfd fds[3];
    fds[0] = (struct pollfd){ .fd = p[0], .events = POLLIN, .revents = 0x7 };
    long t0 = now_ms();
    int n = poll(fds, 1, 100);
    printf("poll empty pipe: %d revents=%#x\n", n, fds[0].revents);
    timed("poll", t0, 100);

    /* 2. Zero timeout. */
    n = poll(fds, 1, 0);
    printf("poll zero timeout: %d\n", n);

    /* 3. Already readable. */
    if (write(p[1], "x", 1) != 1)
        fail("write");
    n = poll(fds, 1, 1000);
    printf("poll readable: %d revents=%#x\n", n, fds[0].revents);
    char c;
    if (read(p[0], &c, 1) != 1)
        fail("read");

    /* 4. Made readable by another thread while we wait, without limit. */
    struct delayed d = { p[1], 50, "y" };
    pthread_t th;
    pthread_create(&th, NULL, write_later, &d);
    t0 = now_ms();
    n = poll(fds, 1, -1);
    printf("poll woken by thread: %d revents=%#x waited>=40ms=%d\n", n, fds[0].revents,
           now_ms() - t0 >= 40);
    pthread_join(th, NULL);
    if (read(p[0], &c, 1) != 1)
        fail("read");

    /* 5. Several fds, one negative (ignored), the second becomes ready from
     * a child process. */
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        if (write(q[1], "z", 1) != 1)
            _exit(1);
        _exit(0);
    }
    fds[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
    fds[1] = (struct pollfd){ .fd = -1, .events = POLLIN, .revents = 0x10 };
    fds[2] = (struct pollfd){ .fd = q[0], .events = POLLIN | POLLPRI };
    n = poll(fds, 3, 5000);
    printf("poll 3 fds: %d revents=%#x,%#x,%#x\n", n, fds[0].revents, fds[1].revents, fds[2].revents);
    int st;
    waitpid(pid, &st, 0);
    if (read(q[0], &c, 1) != 1)
        fail("read");

    /* 6. POLLOUT on an empty pipe; the same fd twice. */
    fds[0] = (struct pollfd){ .fd = p[1], .events = POLLOUT };
    fds[1] = (struct pollfd){ .fd = p[1], .events = POLLOUT | POLLIN };
    n = poll(fds, 2, 1000);
    printf("poll writable twice: %d revents=%#x,%#x\n", n, fds[0].revents, fds[1].revents);

    /* 7. Hang-up: the write end closed. */
    close(q[1]);
    fds[0] = (struct pollfd){ .fd = q[0], .events = POLLIN };
    n = poll(fds, 1, 1000);
    printf("poll hang-up: %d revents=%#x\n", n, fds[0].revents);

    /* 8. A closed fd: POLLNVAL. */
    close(q[0]);
    fds[0] = (struct pollfd){ .fd = q[0], .events = POLLIN };
    n = poll(fds, 1, 1000);
    printf("poll closed fd: %d revents=%#x\n", n, fds[0].revents);

    /* 9. No fds: a plain sleep. */
    t0 = now_ms();
    n = poll(NULL, 0, 60);
    printf("poll no fds: %d\n", n);
    timed("poll no fds", t0, 60);

    /* 10. Only negative fds. */
    fds[0] = (struct pollfd){ .fd = -5, .events = POLLIN };
    t0 = now_ms();
    n = poll(fds, 1, 50);
    printf("poll negative fd only: %d revents=%#x\n", n, fds[0].revents);
    timed("poll negative fd only", t0, 50);

    /* 11. POLLOUT on a full socket, then drained by another thread. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        fail("socketpair");
    char big[4096];
    memset(big, 'b', sizeof big);
    while (send(sv[0], big, sizeof big, MSG_DONTWAIT) > 0) {
    }
    fds[0] = (struct pollfd){ .fd = sv[0], .events = POLLOUT };
    t0 = now_ms();
    n = poll(fds, 1, 80);
    printf("poll full socket: %d revents=%#x\n", n, fds[0].revents);
    timed("poll full socket", t0, 80);
    struct delayed dd = { sv[1], 30, NULL };
    pthread_create(&th, NULL, drain_later, &dd);
    n = poll(fds, 1, 5000);
    printf("poll socket drained: %d revents=%#x\n", n, fds[0].revents);
    pthread_join(th, NULL);
    /* Peer closed: POLLHUP with POLLOUT requested on a socket. */
    close(sv[1]);
    fds[0] = (struct pollfd){ .fd = sv[0], .events = POLLIN | POLLRDHUP };
    n = poll(fds, 1, 1000);
    printf("poll peer closed: %d revents has POLLRDHUP=%d POLLIN=%d\n", n, !!(fds[0].revents & POLLRDHUP),
           !!(fds[0].revents & POLLIN));
    close(sv[0]);

    /* 12. __poll, the alias. */
    fds[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
    t0 = now_ms();
    n = __poll(fds, 1, 50);
    printf("__poll: %d\n", n);
    timed("__poll", t0, 50);

    /* 13. ppoll: a timeout, a NULL timeout woken by a thread, invalid. */
    struct timespec ts = { 0, 70 * 1000000L };
    t0 = now_ms();
    n = ppoll(fds, 1, &ts, NULL);
    printf("ppoll: %d timeout unchanged=%d\n", n, ts.tv_sec == 0 && ts.tv_nsec == 70 * 1000000L);
    timed("ppoll", t0, 70);
    d = (struct delayed){ p[1], 40, "w" };
    pthread_create(&th, NULL, write_later, &d);
    n = ppoll(fds, 1, NULL, NULL);
    printf("ppoll woken: %d revents=%#x\n", n, fds[0].revents);
    pthread_join(th, NULL);
    if (read(p[0], &c, 1) != 1)
        fail("read");
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    n = ppoll(fds, 1, &ts, &cur);
    printf("ppoll with the current mask: %d\n", n);
    ts = (struct timespec){ 0, 1000000000L };
    errno = 0;
    n = ppoll(fds, 1, &ts, NULL);
    printf("ppoll bad timespec: %d %s\n", n, strerrorname_np(errno));
    ts = (struct timespec){ -1, 0 };
    n = ppoll(fds, 1, &ts, NULL);
    printf("ppoll negative timespec: %d %s\n", n, strerrorname_np(errno));

    /* 14. errno: untouched by a successful wait, EFAULT / EINVAL as usual. */
    errno = 4242;
    n = poll(fds, 1, 20);
    printf("errno after a timeout: %d\n", errno);
    /* Through a volatile pointer: the size is unknown to the compiler, so
     * neither a warning nor __poll_chk's abort. */
    struct pollfd *volatile bad = (struct pollfd *)8;
    n = poll(bad, 1, 20);
    printf("poll bad pointer: %d %s\n", n, strerrorname_np(errno));
    struct pollfd *volatile many = fds;
    n = poll(many, (nfds_t)1 << 30, 20);
    printf("poll too many fds: %d %s\n", n, strerrorname_np(errno));
    return 0;
}
