/* While another thread waits in poll (two fds), waitpid or an absolute
 * clock_nanosleep, the program's next open() gets the lowest free number,
 * as without the preload: the runtime never holds a low-numbered fd for
 * the wait (a temporary epoll fd, a pidfd, a timerfd). And every high
 * number is the program's too: dup2 onto the numbers where those per-call
 * fds live moves them, and the waits go on undisturbed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int p1[2], p2[2];
static pid_t child;

static void pause_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void *in_poll(void *arg) {
    (void)arg;
    struct pollfd fds[2] = {{p1[0], POLLIN, 0}, {p2[0], POLLIN, 0}};
    int n = poll(fds, 2, 300);
    printf("poll: %d\n", n);
    return NULL;
}

static void *in_waitpid(void *arg) {
    (void)arg;
    int st = 0;
    pid_t r = waitpid(child, &st, 0);
    printf("waitpid: %s, exit %d\n", r == child ? "child" : "other", WEXITSTATUS(st));
    return NULL;
}

static void *in_abs_sleep(void *arg) {
    (void)arg;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += 300 * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    printf("clock_nanosleep: %d\n", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &t, NULL));
    return NULL;
}

static void open_while(const char *what, void *(*waiter)(void *)) {
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    pause_ms(100);
    int fd = open("/dev/null", O_RDONLY);
    int taken = 0;
    for (int n = 1020; n < 1100; n++) taken += dup2(fd, n) == n;
    pthread_join(t, NULL);
    printf("open while a thread waits in %s: fd %d; dup2 onto 1020..1099: %d of 80\n", what, fd, taken);
    for (int n = 1020; n < 1100; n++) close(n);
    close(fd);
}

int main(void) {
    if (pipe(p1) || pipe(p2)) return 1;
    open_while("poll", in_poll);
    child = fork();
    if (child == 0) {
        pause_ms(300);
        _exit(3);
    }
    open_while("waitpid", in_waitpid);
    open_while("clock_nanosleep", in_abs_sleep);
    return 0;
}
