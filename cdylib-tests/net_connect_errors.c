/* connect's answers come from the kernel: a second connect after
 * ECONNREFUSED is refused again; a connect on a connected socket is
 * EISCONN; a non-blocking connect in progress is EALREADY, then EISCONN
 * once it is done; a blocking connect after a non-blocking one started
 * the connection; connecting a UDP socket twice re-targets it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static void show(const char *what, int r) {
    if (r < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %d\n", what, r);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    return a;
}

/* A port nobody listens on: bound, never listened, then closed. */
static int closed_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(s, (struct sockaddr *)&a, &l) == 0);
    close(s);
    return ntohs(a.sin_port);
}

int main(void) {
    alarm(10);
    struct sockaddr_in refused = loopback(closed_port());
    int s = socket(AF_INET, SOCK_STREAM, 0);
    show("connect to a closed port", connect(s, (struct sockaddr *)&refused, sizeof refused));
    show("connect to it again", connect(s, (struct sockaddr *)&refused, sizeof refused));
    close(s);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(ls, 8) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(ls, (struct sockaddr *)&a, &l) == 0);

    s = socket(AF_INET, SOCK_STREAM, 0);
    show("blocking connect", connect(s, (struct sockaddr *)&a, sizeof a));
    show("connect when connected", connect(s, (struct sockaddr *)&a, sizeof a));
    show("connect elsewhere when connected", connect(s, (struct sockaddr *)&refused, sizeof refused));
    close(s);

    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("non-blocking connect: %s\n", r == 0 ? "0" : (errno == EINPROGRESS ? "EINPROGRESS" : strerrorname_np(errno)));
    struct pollfd p = { s, POLLOUT, 0 };
    CHECK(poll(&p, 1, 5000) == 1);
    show("connect after it completed", connect(s, (struct sockaddr *)&a, sizeof a));
    show("and again", connect(s, (struct sockaddr *)&a, sizeof a));
    close(s);

    /* Started non-blocking, finished by a blocking call. */
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(s, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || errno == EINPROGRESS);
    CHECK(poll(&p, 0, 0) == 0);
    int fl = fcntl(s, F_GETFL);
    CHECK(fcntl(s, F_SETFL, fl & ~O_NONBLOCK) == 0);
    p.fd = s;
    CHECK(poll(&p, 1, 5000) == 1);
    show("blocking connect after a non-blocking one", connect(s, (struct sockaddr *)&a, sizeof a));
    close(s);

    /* A refused non-blocking connect: SO_ERROR says so once. */
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(s, (struct sockaddr *)&refused, sizeof refused);
    CHECK(r == -1 && (errno == EINPROGRESS || errno == ECONNREFUSED));
    p.fd = s;
    CHECK(poll(&p, 1, 5000) == 1);
    int err = 0;
    l = sizeof err;
    CHECK(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l) == 0);
    printf("SO_ERROR after a refused non-blocking connect: %s\n", err ? strerrorname_np(err) : "0");
    int fl2 = fcntl(s, F_GETFL);
    CHECK(fcntl(s, F_SETFL, fl2 & ~O_NONBLOCK) == 0);
    show("blocking connect on it", connect(s, (struct sockaddr *)&refused, sizeof refused));
    close(s);

    int u = socket(AF_INET, SOCK_DGRAM, 0);
    show("udp connect", connect(u, (struct sockaddr *)&a, sizeof a));
    show("udp connect elsewhere", connect(u, (struct sockaddr *)&refused, sizeof refused));
    close(u);
    close(ls);
    return 0;
}
