/* fetch.c — fetch from many local servers at once with plain blocking
 * sockets inside greenlets (the C API of include/greenrt.h).
 *
 * It starts its own servers: one forked child per server, each answering
 * every request after its own delay (300 ms, 350 ms, ...). Each greenlet
 * resolves "localhost" with getaddrinfo, connects, sends a request and
 * reads the reply to the end — ordinary blocking code. Under the greenrt
 * preload (which this program links: it is the library exporting the C
 * API) each blocking call parks only its greenlet, so the whole run takes
 * about as long as the slowest fetch, not the sum of them.
 *
 *   cc -Iinclude examples/c/fetch.c -Ltarget/release -lgreenrt_preload \
 *      -Wl,-rpath,$PWD/target/release -o fetch && ./fetch
 *
 * Exit status 1 if the fetches did not overlap. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
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

enum { SERVERS = 10 };

static pid_t server_pid[SERVERS];
static int server_port[SERVERS];
static int server_delay_ms[SERVERS];
static double fetch_ms[SERVERS];

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "fetch: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* A tiny HTTP/1.0 server: each connection is answered by a forked child
 * after `delay_ms`. */
static void serve(int lfd, int id, int delay_ms) {
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        if (fork() == 0) {
            char req[512];
            if (recv(c, req, sizeof req, 0) <= 0)
                _exit(1);
            usleep((useconds_t)delay_ms * 1000);
            char body[64], resp[256];
            int blen = snprintf(body, sizeof body, "hello from server %d\n", id);
            int len = snprintf(resp, sizeof resp,
                               "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", blen, body);
            send(c, resp, (size_t)len, 0);
            close(c);
            _exit(0);
        }
        close(c);
    }
}

static void start_servers(void) {
    for (int i = 0; i < SERVERS; i++) {
        int lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (lfd < 0)
            die("socket");
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t alen = sizeof a;
        if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 16) < 0 ||
            getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
            die("listen");
        server_port[i] = ntohs(a.sin_port);
        server_delay_ms[i] = 300 + 50 * (i % 5);
        pid_t p = fork();
        if (p < 0)
            die("fork");
        if (p == 0)
            serve(lfd, i, server_delay_ms[i]);
        server_pid[i] = p;
        close(lfd);
    }
}

/* One fetch with plain blocking calls: getaddrinfo, connect, send, recv. */
static void *fetch(void *arg) {
    intptr_t i = (intptr_t)arg;
    double t0 = now_ms();
    char port[16];
    snprintf(port, sizeof port, "%d", server_port[i]);
    struct addrinfo hints, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("localhost", port, &hints, &ai) != 0)
        return NULL;
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    const char *req = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (send(fd, req, strlen(req), 0) < 0)
        return NULL;
    static char buf[SERVERS][512];
    size_t got = 0;
    ssize_t n;
    while ((n = recv(fd, buf[i] + got, sizeof buf[i] - 1 - got, 0)) > 0)
        got += (size_t)n;
    close(fd);
    buf[i][got] = 0;
    fetch_ms[i] = now_ms() - t0;
    char *body = strstr(buf[i], "\r\n\r\n");
    return body ? body + 4 : NULL;
}

int main(void) {
    start_servers();
    greenrt_t g[SERVERS];
    double t0 = now_ms();
    for (intptr_t i = 0; i < SERVERS; i++)
        if ((g[i] = greenrt_spawn(fetch, (void *)i)) == 0)
            die("greenrt_spawn");
    int failed = 0;
    double sum = 0, slowest = 0;
    for (int i = 0; i < SERVERS; i++) {
        void *body = NULL;
        if (greenrt_join(g[i], -1, &body) != 0 || body == NULL) {
            printf("server %d (port %d): fetch failed\n", i, server_port[i]);
            failed = 1;
            continue;
        }
        printf("server %d (port %d, answers after %d ms): %4.0f ms  %s", i, server_port[i],
               server_delay_ms[i], fetch_ms[i], (char *)body);
        sum += fetch_ms[i];
        if (fetch_ms[i] > slowest)
            slowest = fetch_ms[i];
    }
    double wall = now_ms() - t0;
    printf("%d fetches: %.0f ms wall; slowest fetch %.0f ms, sum of fetches %.0f ms\n", SERVERS,
           wall, slowest, sum);
    for (int i = 0; i < SERVERS; i++) {
        kill(server_pid[i], SIGKILL);
        waitpid(server_pid[i], NULL, 0);
    }
    if (failed)
        return 1;
    if (wall > slowest * 1.5 + 100) {
        printf("the fetches did not overlap: is the preload's socket hooking active?\n");
        return 1;
    }
    printf("concurrent: wall time is the slowest fetch's, not the sum\n");
    return 0;
}
