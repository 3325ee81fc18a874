/* TCP over 127.0.0.1 with plain blocking calls: a forked server accepts
 * (accept4 with SOCK_CLOEXEC), reads 4 MiB with recv(MSG_WAITALL) and
 * read(), echoes a checksum, and sends 4 MiB back in one send() (a
 * blocking send sends every byte); the client checks both directions byte
 * for byte. Also: connect to a closed port (ECONNREFUSED), accept's
 * CLOEXEC flag, errno kept across successful calls. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)
#define SIZE (4 << 20)

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + (i >> 11)); }

static uint32_t sum(const unsigned char *b, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) s = s * 31 + b[i];
    return s;
}

static int listener(int *port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    int one = 1;
    CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(s, 8) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(s, (struct sockaddr *)&a, &l) == 0);
    *port = ntohs(a.sin_port);
    return s;
}

static void server(int ls) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    CHECK(c >= 0);
    CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC);
    CHECK((fcntl(c, F_GETFL) & O_NONBLOCK) == 0);
    unsigned char *buf = malloc(SIZE);
    /* First half with MSG_WAITALL, the rest with read() loops. */
    ssize_t r = recv(c, buf, SIZE / 2, MSG_WAITALL);
    CHECK(r == SIZE / 2);
    size_t got = r;
    while (got < SIZE) {
        r = read(c, buf + got, SIZE - got);
        CHECK(r > 0);
        got += r;
    }
    uint32_t s = sum(buf, SIZE);
    CHECK(write(c, &s, sizeof s) == sizeof s);
    for (size_t i = 0; i < SIZE; i++) buf[i] = pattern(SIZE - i);
    r = send(c, buf, SIZE, 0);
    CHECK(r == SIZE);
    /* Wait for the client's close: read returns 0. */
    char x;
    CHECK(read(c, &x, 1) == 0);
    close(c);
    _exit(0);
}

int main(void) {
    int port;
    int ls = listener(&port);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) server(ls);
    close(ls);

    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    errno = 12345;
    CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == 0);
    printf("connect: ok, errno kept: %s\n", errno == 12345 ? "yes" : "no");
    printf("client F_GETFL nonblock: %d\n", !!(fcntl(s, F_GETFL) & O_NONBLOCK));

    unsigned char *buf = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++) buf[i] = pattern(i);
    ssize_t r = write(s, buf, SIZE);
    printf("write 4 MiB: %zd\n", r);
    uint32_t theirs;
    CHECK(recv(s, &theirs, sizeof theirs, MSG_WAITALL) == sizeof theirs);
    printf("server checksum matches: %s\n", theirs == sum(buf, SIZE) ? "yes" : "no");

    memset(buf, 0, SIZE);
    size_t got = 0;
    while (got < SIZE) {
        r = recv(s, buf + got, SIZE - got, 0);
        CHECK(r > 0);
        got += r;
    }
    int ok = 1;
    for (size_t i = 0; i < SIZE; i++) if (buf[i] != pattern(SIZE - i)) { ok = 0; break; }
    printf("received 4 MiB byte-exact: %s\n", ok ? "yes" : "no");
    CHECK(shutdown(s, SHUT_WR) == 0);
    close(s);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("server exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* A refused connection: same errno as the kernel's. */
    int p2;
    int l2 = listener(&p2);
    close(l2);
    s = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_port = htons(p2);
    r = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("connect to closed port: %zd %s\n", r, strerrorname_np(errno));
    close(s);
    /* Operations on a closed fd. */
    errno = 0;
    r = read(s, buf, 1);
    printf("read closed fd: %zd %s\n", r, strerrorname_np(errno));
    return 0;
}
