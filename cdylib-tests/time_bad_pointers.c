/* Pointers the kernel answers with EFAULT get EFAULT under the preload
 * too, never a crash in a hook: nanosleep's and clock_nanosleep's
 * requests, select's sets, pselect's and ppoll's masks, poll's array, a
 * null or unmapped msghdr. (select's, pselect's and ppoll's timeouts are
 * not here: glibc itself reads them before the system call, so a bad one
 * crashes the program natively too.) */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static void show(const char *what, long r) {
    if (r < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %ld\n", what, r);
}

int main(void) {
    alarm(10);
    /* An address that is certainly not mapped: a page we unmapped. */
    void *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(gone != MAP_FAILED);
    CHECK(munmap(gone, 4096) == 0);
    struct timespec ts = { 0, 1000 };

    show("nanosleep(bad req)", nanosleep(gone, NULL));
    int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, gone, NULL);
    printf("clock_nanosleep(bad req): %s\n", rc ? strerrorname_np(rc) : "0");

    int p[2];
    CHECK(pipe(p) == 0);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 0, 1000 };
    show("select(bad readfds)", select(p[0] + 1, gone, NULL, NULL, &tv));
    FD_SET(p[0], &r);
    show("pselect(bad mask)", pselect(p[0] + 1, &r, NULL, NULL, &ts, gone));
    struct pollfd pf = { p[0], POLLIN, 0 };
    show("ppoll(bad mask)", ppoll(&pf, 1, &ts, gone));
    show("poll(bad fds)", poll(gone, 1, 1));

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    show("recvmsg(null msghdr)", recvmsg(sv[0], NULL, 0));
    show("recvmsg(bad msghdr)", recvmsg(sv[0], gone, 0));
    alarm(0);
    return 0;
}
