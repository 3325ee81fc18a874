/* Decisions from the kernel's view of the fd at the moment it matters:
 * - another process sets O_NONBLOCK (or SO_RCVTIMEO) on a socket this one
 *   created and passed to it with SCM_RIGHTS: the next read returns
 *   EAGAIN at once (or times out after that timeout), as natively;
 * - an fd closed behind the hooks' back (a raw close, as glibc's fclose
 *   does internally) and its number reused by a non-blocking eventfd: a
 *   read of it returns EAGAIN at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void send_fd(int via, int fd) {
    char byte = 'f';
    struct iovec v = { &byte, 1 };
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    CHECK(sendmsg(via, &m, 0) == 1);
}

static int recv_fd(int via) {
    char byte;
    struct iovec v = { &byte, 1 };
    char ctl[CMSG_SPACE(sizeof(int))];
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    CHECK(recvmsg(via, &m, 0) == 1);
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
    return fd;
}

int main(void) {
    alarm(20);
    /* A helper process, forked before the sockets it will change exist. */
    int ctl[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) == 0);
    pid_t helper = fork();
    CHECK(helper >= 0);
    if (helper == 0) {
        close(ctl[0]);
        int a = recv_fd(ctl[1]);
        CHECK(fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK) == 0);
        CHECK(write(ctl[1], "1", 1) == 1);
        int b = recv_fd(ctl[1]);
        struct timeval tv = { 0, 200 * 1000 };
        CHECK(setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
        CHECK(write(ctl[1], "2", 1) == 1);
        _exit(0);
    }
    close(ctl[1]);
    char ack;

    int s[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
    send_fd(ctl[0], s[0]);
    CHECK(read(ctl[0], &ack, 1) == 1);
    char b;
    double t0 = now();
    ssize_t r = read(s[0], &b, 1);
    printf("read after another process set O_NONBLOCK: %zd %s%s\n", r, r < 0 ? strerrorname_np(errno) : "",
           now() - t0 < 2 ? "" : " (slowly)");
    printf("F_GETFL shows O_NONBLOCK: %s\n", fcntl(s[0], F_GETFL) & O_NONBLOCK ? "yes" : "no");

    int u[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0);
    send_fd(ctl[0], u[0]);
    CHECK(read(ctl[0], &ack, 1) == 1);
    t0 = now();
    r = recv(u[0], &b, 1, 0);
    double took = now() - t0;
    printf("recv after another process set SO_RCVTIMEO: %zd %s, %s\n", r, r < 0 ? strerrorname_np(errno) : "",
           took >= 0.15 && took < 5 ? "after about that timeout" : "at the wrong time");
    int st;
    CHECK(waitpid(helper, &st, 0) == helper && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* A blocking pipe's number, closed behind the hooks' back, reused by a
     * non-blocking eventfd. */
    int p[2];
    CHECK(pipe(p) == 0);
    char x;
    CHECK(write(p[1], "z", 1) == 1);
    CHECK(read(p[0], &x, 1) == 1); /* the hooks have seen p[0] as a pipe */
    int num = p[0];
    CHECK(syscall(SYS_close, num) == 0);
    int e = eventfd(0, EFD_NONBLOCK);
    CHECK(e >= 0);
    if (e != num) {
        CHECK(dup2(e, num) == num);
        close(e);
    }
    uint64_t v;
    t0 = now();
    r = read(num, &v, sizeof v);
    printf("read of a reused number (non-blocking eventfd): %zd %s%s\n", r, r < 0 ? strerrorname_np(errno) : "",
           now() - t0 < 2 ? "" : " (slowly)");
    alarm(0);
    return 0;
}
