/* demo.c — blocking C code running concurrently in greenlets.
 *
 * Five jobs that each block for 300 ms in a different plain libc call —
 * usleep, read on a pipe, waitpid, connect + recv on TCP, poll — first
 * called one after another, then each in its own greenlet (the C API of
 * include/greenrt.h). Under the greenrt preload (`greenrt run ./demo`, or
 * just linking the library, as this program does) the second round takes
 * about 300 ms instead of 1.5 s: each blocking call parks only its greenlet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "greenrt.h"

enum { DELAY_MS = 300 };

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A child process that writes to `fd` after DELAY_MS. */
static pid_t delayed_writer(int fd) {
    pid_t p = fork();
    if (p == 0) {
        usleep(DELAY_MS * 1000);
        (void)!write(fd, "ready", 5);
        _exit(0);
    }
    return p;
}

static void *job_sleep(void *arg) {
    (void)arg;
    usleep(DELAY_MS * 1000);
    return "usleep(300 ms)";
}

static void *job_pipe(void *arg) {
    (void)arg;
    int p[2];
    if (pipe(p) < 0)
        return "pipe failed";
    pid_t w = delayed_writer(p[1]);
    char buf[8];
    ssize_t n = read(p[0], buf, sizeof buf);
    waitpid(w, NULL, 0);
    close(p[0]);
    close(p[1]);
    return n == 5 ? "read() on a pipe" : "read failed";
}

static void *job_waitpid(void *arg) {
    (void)arg;
    pid_t c = fork();
    if (c == 0) {
        usleep(DELAY_MS * 1000);
        _exit(3);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return WEXITSTATUS(st) == 3 ? "waitpid() for a child" : "waitpid failed";
}

static struct sockaddr_in server;

static void *job_tcp(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&server, sizeof server) < 0)
        return "connect failed";
    char buf[8];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_WAITALL);
    close(fd);
    return n == 5 ? "connect() + recv() over TCP" : "recv failed";
}

static void *job_poll(void *arg) {
    (void)arg;
    int p[2];
    if (pipe(p) < 0)
        return "pipe failed";
    pid_t w = delayed_writer(p[1]);
    struct pollfd pfd = {p[0], POLLIN, 0};
    int r = poll(&pfd, 1, 5000);
    waitpid(w, NULL, 0);
    close(p[0]);
    close(p[1]);
    return r == 1 ? "poll() on a pipe" : "poll failed";
}

static void *(*const jobs[])(void *) = {job_sleep, job_pipe, job_waitpid, job_tcp, job_poll};
enum { JOBS = sizeof jobs / sizeof jobs[0] };

int main(void) {
    /* A TCP server (forked) that answers each connection after DELAY_MS. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof server;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&server, sizeof server) < 0 ||
        listen(lfd, 16) < 0 || getsockname(lfd, (struct sockaddr *)&server, &alen) < 0) {
        perror("demo: server");
        return 1;
    }
    pid_t srv = fork();
    if (srv == 0) {
        signal(SIGCHLD, SIG_IGN);
        for (;;) {
            int c = accept(lfd, NULL, NULL);
            if (c >= 0 && fork() == 0) {
                usleep(DELAY_MS * 1000);
                (void)!write(c, "hello", 5);
                _exit(0);
            }
            close(c);
        }
    }
    close(lfd);

    printf("%d jobs, each blocking %d ms in a plain libc call:\n\n", JOBS, DELAY_MS);
    printf("one after another:\n");
    double t0 = now_ms();
    for (int i = 0; i < JOBS; i++) {
        double t = now_ms();
        const char *what = jobs[i](NULL);
        printf("  %-30s %4.0f ms\n", what, now_ms() - t);
    }
    double serial = now_ms() - t0;
    printf("  total                          %4.0f ms\n\n", serial);

    printf("each in its own greenlet (greenrt_spawn + greenrt_join):\n");
    uint64_t sw0 = greenrt_switch_count();
    t0 = now_ms();
    greenrt_t g[JOBS];
    for (int i = 0; i < JOBS; i++)
        g[i] = greenrt_spawn(jobs[i], NULL);
    int failed = 0;
    for (int i = 0; i < JOBS; i++) {
        void *what = NULL;
        if (greenrt_join(g[i], -1, &what) != 0 || strstr((char *)what, "failed"))
            failed = 1;
        printf("  %-30s done\n", what ? (char *)what : "join failed");
    }
    double together = now_ms() - t0;
    printf("  total                          %4.0f ms  (%llu greenlet switches)\n\n", together,
           (unsigned long long)(greenrt_switch_count() - sw0));
    if (together < serial / 2)
        printf("%.1fx faster: the blocking calls overlapped.\n", serial / together);
    else
        printf("no faster: the blocking calls did not overlap (is the greenrt preload "
               "active?)\n");

    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    return failed;
}
