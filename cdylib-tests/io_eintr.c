/* signal(7) for reads, writes and the socket calls: a handler that runs
 * while the call is blocked restarts it if it was installed with
 * SA_RESTART and otherwise ends it with EINTR; socket calls with
 * SO_RCVTIMEO/SO_SNDTIMEO set end with EINTR whatever SA_RESTART says; a
 * transfer that already moved bytes returns their count (a 256 KiB pipe
 * write returns 65536, a 4 MiB socket send a partial count); signal()
 * after siginterrupt(sig, 1) interrupts; a handler aimed at one thread
 * with pthread_kill interrupts that thread's read. Every wait is bounded
 * (a child writes, or the next alarm comes), so a wrong answer shows as a
 * different line, not as a hang. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sigalrm.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

/* A child that writes one byte to `fd` after `ms` milliseconds. */
static pid_t write_later(int fd, int ms) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        usleep(ms * 1000);
        if (write(fd, "x", 1) != 1) _exit(1);
        _exit(0);
    }
    return pid;
}

static void reap(pid_t pid) {
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
}

static void read_pipe(const char *what, int flags) {
    int p[2];
    CHECK(pipe(p) == 0);
    handler(flags);
    hits = 0;
    pid_t w = write_later(p[1], 400);
    alarm_in(100);
    char b;
    errno = 0;
    ssize_t r = read(p[0], &b, 1);
    printf("%s: read %zd %s, handler ran %d\n", what, r, ename(r < 0 ? errno : 0), (int)hits);
    reap(w);
    close(p[0]);
    close(p[1]);
}

static void recv_socket(const char *what, int flags, int timeo) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    if (timeo) {
        struct timeval tv = { 5, 0 };
        CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    }
    handler(flags);
    hits = 0;
    pid_t w = write_later(sv[1], 400);
    alarm_in(100);
    char b;
    errno = 0;
    ssize_t r = recv(sv[0], &b, 1, 0);
    printf("%s: recv %zd %s, handler ran %d\n", what, r, ename(r < 0 ? errno : 0), (int)hits);
    reap(w);
    close(sv[0]);
    close(sv[1]);
}

static void accept_socket(const char *what, int flags) {
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(ls >= 0);
    sa_family_t fam = AF_UNIX;
    CHECK(bind(ls, (struct sockaddr *)&fam, sizeof fam) == 0); /* autobind */
    CHECK(listen(ls, 4) == 0);
    struct sockaddr_storage a;
    socklen_t l = sizeof a;
    CHECK(getsockname(ls, (struct sockaddr *)&a, &l) == 0);
    handler(flags);
    hits = 0;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        usleep(400 * 1000);
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&a, l) != 0) _exit(1);
        _exit(0);
    }
    alarm_in(100);
    errno = 0;
    int c = accept(ls, NULL, NULL);
    printf("%s: accept %s %s, handler ran %d\n", what, c >= 0 ? "ok" : "-1", ename(c < 0 ? errno : 0), (int)hits);
    if (c >= 0) close(c);
    reap(pid);
    close(ls);
}

static void big_writes(void) {
    handler(0);
    int p[2];
    CHECK(pipe(p) == 0);
    size_t n = 256 << 10;
    char *buf = calloc(1, 4 << 20);
    hits = 0;
    alarm_in(100);
    ssize_t r = write(p[1], buf, n);
    printf("256 KiB pipe write, nobody reading, no SA_RESTART: %zd, handler ran %d\n", r, (int)hits);
    close(p[0]);
    close(p[1]);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    hits = 0;
    alarm_in(100);
    r = send(sv[0], buf, 4 << 20, 0);
    printf("4 MiB send, nobody reading, no SA_RESTART: %s, handler ran %d\n",
           r > 0 && r < (4 << 20) ? "a partial count" : (r < 0 ? ename(errno) : "all of it"), (int)hits);
    close(sv[0]);
    close(sv[1]);
    free(buf);
}

static void waitpid_child(const char *what, int flags) {
    handler(flags);
    hits = 0;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        usleep(400 * 1000);
        _exit(7);
    }
    alarm_in(100);
    int st = 0;
    errno = 0;
    pid_t r = waitpid(pid, &st, 0);
    printf("%s: waitpid %s %s, handler ran %d\n", what, r == pid ? "the child" : "-1", ename(r < 0 ? errno : 0),
           (int)hits);
    if (r != pid) reap(pid);
}

static int thread_pipe[2];
static volatile sig_atomic_t usr1_hits;
static void on_usr1(int sig) { (void)sig; usr1_hits++; }

static void *reader(void *arg) {
    (void)arg;
    char b;
    errno = 0;
    ssize_t r = read(thread_pipe[0], &b, 1);
    printf("thread read after pthread_kill(SIGUSR1), no SA_RESTART: %zd %s, handler ran %d\n", r,
           ename(r < 0 ? errno : 0), (int)usr1_hits);
    return NULL;
}

static void thread_kill(void) {
    struct sigaction sa = { .sa_handler = on_usr1 };
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    CHECK(pipe(thread_pipe) == 0);
    pid_t w = write_later(thread_pipe[1], 600);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reader, NULL) == 0);
    usleep(150 * 1000);
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    reap(w);
}

int main(void) {
    alarm(30);
    read_pipe("pipe, SA_RESTART", SA_RESTART);
    read_pipe("pipe, no SA_RESTART", 0);
    recv_socket("socket, SA_RESTART", SA_RESTART, 0);
    recv_socket("socket, no SA_RESTART", 0, 0);
    recv_socket("socket with SO_RCVTIMEO, SA_RESTART", SA_RESTART, 1);
    accept_socket("listener, SA_RESTART", SA_RESTART);
    accept_socket("listener, no SA_RESTART", 0);
    big_writes();
    waitpid_child("child, SA_RESTART", SA_RESTART);
    waitpid_child("child, no SA_RESTART", 0);

    /* signal() installs with SA_RESTART unless siginterrupt() said not to. */
    CHECK(signal(SIGALRM, on_alarm) != SIG_ERR);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    CHECK(siginterrupt(SIGALRM, 1) == 0);
#pragma GCC diagnostic pop
    int p[2];
    CHECK(pipe(p) == 0);
    hits = 0;
    pid_t w = write_later(p[1], 400);
    alarm_in(100);
    char b;
    errno = 0;
    ssize_t r = read(p[0], &b, 1);
    printf("signal() then siginterrupt(1): read %zd %s, handler ran %d\n", r, ename(r < 0 ? errno : 0), (int)hits);
    reap(w);
    struct sigaction q;
    CHECK(sigaction(SIGALRM, NULL, &q) == 0);
    printf("sigaction reports the program's handler: %s, SA_SIGINFO %s\n", q.sa_handler == on_alarm ? "yes" : "no",
           q.sa_flags & SA_SIGINFO ? "set" : "clear");

    thread_kill();

    /* sigset: a handler, then SIG_HOLD (blocks it, keeps the handler),
     * then sigrelse: the pending signal runs the handler. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    usr1_hits = 0;
    CHECK(sigset(SIGUSR1, on_usr1) != SIG_ERR);
    CHECK(sigset(SIGUSR1, SIG_HOLD) == on_usr1);
    CHECK(raise(SIGUSR1) == 0);
    printf("sigset SIG_HOLD: handler ran %d while held\n", (int)usr1_hits);
    CHECK(sigrelse(SIGUSR1) == 0);
    printf("after sigrelse: handler ran %d\n", (int)usr1_hits);
#pragma GCC diagnostic pop
    alarm(0);
    return 0;
}
