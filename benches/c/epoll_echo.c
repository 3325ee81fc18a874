/* The limit for the echo rows of `make bench`: a hand-written,
 * single-threaded, level-triggered epoll echo server. One read and one
 * write per message, no allocation on the hot path, TCP_NODELAY like the
 * other servers. Listens on 127.0.0.1, port 0 (or argv[1]), prints
 * "LISTEN 127.0.0.1:PORT" and serves until killed.
 *
 *     cc -O2 -o epoll_echo benches/c/epoll_echo.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 1024
#define BUF 16384

/* Bytes read but not yet written back, per fd (only when a write was
 * short, which 512-byte ping-pong never causes). */
struct pending {
    char *data;
    size_t len;
};

static struct pending *pend;
static size_t npend;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static struct pending *pending_for(int fd) {
    if ((size_t)fd >= npend) {
        size_t n = npend ? npend : 1024;
        while (n <= (size_t)fd)
            n *= 2;
        pend = realloc(pend, n * sizeof *pend);
        if (!pend)
            die("realloc");
        memset(pend + npend, 0, (n - npend) * sizeof *pend);
        npend = n;
    }
    return &pend[fd];
}

static void close_conn(int ep, int fd) {
    struct pending *p = pending_for(fd);
    free(p->data);
    p->data = NULL;
    p->len = 0;
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Writes what it can; keeps the rest and waits for EPOLLOUT. */
static void send_back(int ep, int fd, const char *buf, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            struct pending *p = pending_for(fd);
            p->data = malloc(len - off);
            if (!p->data)
                die("malloc");
            memcpy(p->data, buf + off, len - off);
            p->len = len - off;
            struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
            return;
        } else {
            close_conn(ep, fd);
            return;
        }
    }
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");
    socklen_t alen = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    printf("LISTEN 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

    static struct epoll_event events[MAX_EVENTS];
    static char buf[BUF];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0)
                        break; /* EAGAIN, or a transient error: next wakeup */
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                struct pending *p = pending_for(fd);
                char *data = p->data;
                size_t len = p->len;
                p->data = NULL;
                p->len = 0;
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
                send_back(ep, fd, data, len);
                free(data);
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0)
                send_back(ep, fd, buf, (size_t)r);
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                close_conn(ep, fd);
        }
    }
}
