/* recv and recvmsg with MSG_PEEK|MSG_WAITALL on TCP wait until the whole
 * buffer is there and return it without consuming it (the kernel peeks
 * further into the queue as data arrives; it never returns the same bytes
 * twice): "abc" then, later, "def" peek as "abcdef", and a plain recv then
 * reads the same six bytes. With SO_RCVTIMEO and only part of the data,
 * the peek returns the part after the timeout; after the peer's close it
 * returns what is left at once. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static int client, server;

static void tcp_pair(void) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(ls >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(ls, 1) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(ls, (struct sockaddr *)&a, &l) == 0);
    client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(client >= 0);
    CHECK(connect(client, (struct sockaddr *)&a, sizeof a) == 0);
    server = accept(ls, NULL, NULL);
    CHECK(server >= 0);
    close(ls);
}

struct later { const char *first, *second; int close_after; };

/* Sends `first`, then 150 ms later `second` (if any), then closes the
 * sending side if asked. */
static void *send_later(void *arg) {
    struct later *l = arg;
    CHECK(send(server, l->first, strlen(l->first), 0) == (ssize_t)strlen(l->first));
    usleep(150 * 1000);
    if (l->second) CHECK(send(server, l->second, strlen(l->second), 0) == (ssize_t)strlen(l->second));
    if (l->close_after) CHECK(shutdown(server, SHUT_WR) == 0);
    return NULL;
}

static void show(const char *what, ssize_t r, const char *buf) {
    if (r < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %zd \"%.*s\"\n", what, r, (int)r, buf);
}

int main(void) {
    tcp_pair();
    char buf[16];
    pthread_t t;

    struct later l1 = { "abc", "def", 0 };
    CHECK(pthread_create(&t, NULL, send_later, &l1) == 0);
    memset(buf, 0, sizeof buf);
    show("recv peek|waitall", recv(client, buf, 6, MSG_PEEK | MSG_WAITALL), buf);
    pthread_join(t, NULL);
    show("recv after peek", recv(client, buf, 6, 0), buf);

    struct later l2 = { "ghi", "jkl", 0 };
    CHECK(pthread_create(&t, NULL, send_later, &l2) == 0);
    memset(buf, 0, sizeof buf);
    struct iovec v[2] = { { buf, 2 }, { buf + 2, 4 } };
    struct msghdr m = { .msg_iov = v, .msg_iovlen = 2 };
    show("recvmsg peek|waitall", recvmsg(client, &m, MSG_PEEK | MSG_WAITALL), buf);
    pthread_join(t, NULL);
    show("recv after recvmsg peek", recv(client, buf, 6, 0), buf);

    /* Only part of the data before SO_RCVTIMEO expires: the part. */
    struct timeval tv = { 0, 300 * 1000 };
    CHECK(setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    CHECK(send(server, "xy", 2, 0) == 2);
    show("peek|waitall, timeout", recv(client, buf, 6, MSG_PEEK | MSG_WAITALL), buf);
    show("recv after timeout", recv(client, buf, 6, 0), buf);
    struct timeval none = { 0, 0 };
    CHECK(setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none) == 0);

    /* The peer shuts down its side with part of the data sent. */
    struct later l3 = { "mn", NULL, 1 };
    CHECK(pthread_create(&t, NULL, send_later, &l3) == 0);
    show("peek|waitall, then eof", recv(client, buf, 6, MSG_PEEK | MSG_WAITALL), buf);
    pthread_join(t, NULL);
    show("recv at eof", recv(client, buf, 6, 0), buf);
    show("recv after eof", recv(client, buf, 6, 0), buf);
    close(client);
    close(server);
    return 0;
}
