/* A signal handler that closes fds and writes to a pipe while the main
 * flow is blocked in read, poll and sleep (rsync closes its files from
 * its signal handlers): the handler's calls work as natively, and the
 * blocked call then behaves as natively: the read gets the handler's
 * byte, the poll sees it, the sleep is interrupted. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static int wake[2];
static int victims[2][2];
static volatile sig_atomic_t closed_ok;

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    /* Close a pipe and a socketpair the program no longer needs. */
    if (close(victims[0][0]) == 0 && close(victims[0][1]) == 0 && close(victims[1][0]) == 0 &&
        close(victims[1][1]) == 0)
        closed_ok++;
    (void)!write(wake[1], "w", 1);
    errno = saved;
}

static void arm(void) {
    CHECK(pipe(victims[0]) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, victims[1]) == 0);
    struct itimerval it = { { 0, 0 }, { 0, 100 * 1000 } };
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
}

int main(void) {
    alarm(0);
    CHECK(pipe(wake) == 0);
    struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);

    arm();
    char b;
    ssize_t r = read(wake[0], &b, 1);
    printf("read in main: %zd '%c'; handler closed its fds: %d\n", r, r == 1 ? b : '?', (int)closed_ok);

    arm();
    struct pollfd p = { wake[0], POLLIN, 0 };
    int n = poll(&p, 1, 5000);
    CHECK(read(wake[0], &b, 1) == 1);
    printf("poll in main: %d; handler closed its fds: %d\n", n, (int)closed_ok);

    arm();
    struct timespec ts = { 5, 0 }, rem;
    int s = nanosleep(&ts, &rem);
    printf("nanosleep in main: %d %s; handler closed its fds: %d\n", s, s ? strerrorname_np(errno) : "", (int)closed_ok);
    CHECK(read(wake[0], &b, 1) == 1);
    return 0;
}
