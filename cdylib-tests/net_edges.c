/* Socket calls the kernel answers at once, which the cooperative path
 * must answer the same way without parking:
 * - read() and readv() of zero bytes on a socket with nothing to read
 *   return 0 (the socket layer returns before the protocol sees them);
 * - after SO_RCVTIMEO is set to a negative time, a receive fails with
 *   EAGAIN at once (the kernel's timeout becomes zero), and getsockopt
 *   reports zero. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void show(const char *what, ssize_t r) {
    if (r < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %zd\n", what, r);
}

int main(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char buf[8];
    struct iovec none[2] = { { buf, 0 }, { buf + 1, 0 } };
    alarm(10); /* a parked call would hang: fail instead */
    show("read 0 bytes", read(sv[0], buf, 0));
    show("readv no entries", readv(sv[0], none, 0));
    show("readv two empty entries", readv(sv[0], none, 2));

    struct timeval neg = { -1, 0 };
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &neg, sizeof neg) == 0);
    struct timeval got = { 7, 7 };
    socklen_t l = sizeof got;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &l) == 0);
    printf("SO_RCVTIMEO after a negative time: %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
    double t0 = now();
    show("recv with a negative timeout", recv(sv[0], buf, sizeof buf, 0));
    show("read with a negative timeout", read(sv[0], buf, sizeof buf));
    CHECK(now() - t0 < 5);
    /* Data still comes through. */
    CHECK(write(sv[1], "ok", 2) == 2);
    show("recv with data", recv(sv[0], buf, sizeof buf, 0));
    alarm(0);
    return 0;
}
