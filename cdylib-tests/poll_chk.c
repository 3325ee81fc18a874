/* The fortified entry points __poll_chk and __ppoll_chk (what poll and
 * ppoll become under -D_FORTIFY_SOURCE when the array size is known but
 * the count is not), called directly so that every build uses them:
 * timeouts, readiness, and a count within the buffer. Output is the same
 * with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
extern int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *ss,
                       size_t fdslen);

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(int argc, char **argv) {
    (void)argv;
    int p[2];
    if (pipe(p))
        return 1;
    struct pollfd fds[2] = { { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 } };
    /* A count the compiler cannot know: poll() here goes through
     * __poll_chk when built with _FORTIFY_SOURCE. */
    nfds_t one = (nfds_t)argc;
    long t0 = now_ms();
    int n = poll(fds, one, 80);
    printf("poll (fortified when built so): %d waited>=80ms=%d\n", n, now_ms() - t0 >= 80);
    t0 = now_ms();
    n = __poll_chk(fds, 1, 60, sizeof fds);
    printf("__poll_chk idle: %d waited>=60ms=%d\n", n, now_ms() - t0 >= 60);
    n = __poll_chk(fds, 2, 1000, sizeof fds);
    printf("__poll_chk writable: %d revents=%#x,%#x\n", n, fds[0].revents, fds[1].revents);
    struct timespec ts = { 0, 50 * 1000000L };
    t0 = now_ms();
    n = __ppoll_chk(fds, 1, &ts, NULL, sizeof fds);
    printf("__ppoll_chk idle: %d waited>=50ms=%d\n", n, now_ms() - t0 >= 50);
    if (write(p[1], "x", 1) != 1)
        return 1;
    n = ppoll(fds, one, &ts, NULL);
    printf("ppoll (fortified when built so) readable: %d revents=%#x\n", n, fds[0].revents);
    n = __ppoll_chk(fds, 1, NULL, NULL, sizeof fds);
    printf("__ppoll_chk readable: %d revents=%#x\n", n, fds[0].revents);
    return 0;
}
