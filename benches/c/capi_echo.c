/* The C API echo row of `make bench` (issue 5): an echo server written the
 * blocking way — an accept loop in the main greenlet, one greenlet per
 * connection (greenrt_spawn) running a plain blocking read/write loop.
 * Run under the preload, every read, write and accept parks only its
 * greenlet, so one thread serves every connection, as the C epoll echo
 * (benches/c/epoll_echo.c) does by hand. TCP_NODELAY like the other
 * servers. Listens on 127.0.0.1, port 0 (or argv[1]), prints
 * "LISTEN 127.0.0.1:PORT" and serves until killed.
 *
 *     cc -O2 -Iinclude -o capi_echo benches/c/capi_echo.c \
 *        -Ltarget/release -lgreenrt_preload -Wl,-rpath,$PWD/target/release
 *     LD_PRELOAD=target/release/libgreenrt_preload.so ./capi_echo
 *
 * Handles of finished connections are joined by the accept loop from time
 * to time (greenrt_join with timeout 0), so they do not pile up. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "greenrt.h"

#define BUF 16384

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[BUF];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && (errno != EINTR || greenrt_killed())))
            break;
        if (r < 0)
            continue;
        ssize_t off = 0;
        while (off < r) {
            ssize_t w = write(fd, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR && !greenrt_killed())
                continue;
            if (w <= 0)
                goto done;
            off += w;
        }
    }
done:
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

    size_t n = 0, cap = 1024;
    greenrt_t *live = malloc(cap * sizeof *live);
    if (!live)
        die("malloc");
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            die("accept");
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        greenrt_t g = greenrt_spawn(serve, (void *)(intptr_t)c);
        if (!g) {
            perror("greenrt_spawn");
            close(c);
            continue;
        }
        if (n == cap) {
            /* Release the finished ones; grow if most are still running. */
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (greenrt_join(live[i], 0, NULL) != 0)
                    live[k++] = live[i];
            n = k;
            if (n > cap / 2) {
                cap *= 2;
                live = realloc(live, cap * sizeof *live);
                if (!live)
                    die("realloc");
            }
        }
        live[n++] = g;
    }
}
