/* Cooperation proof, connect/send/recv on TCP: a forked server answers each
 * connection after 300 ms (one child per connection). 12 greenlets each
 * connect, send a request and recv the reply with plain blocking calls.
 * Together they take about 300 ms (3.6 s one after another), all 12 were
 * inside recv at once, and every reply is the right one. The same with a
 * socketpair per greenlet whose other end a forked child writes after
 * 300 ms (read on AF_UNIX). Needs the preload's net and io hooks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capi_util.h"

enum { N = 12, DELAY_MS = 300 };

static struct sockaddr_in server_addr;

static void serve(int lfd) {
    signal(SIGCHLD, SIG_IGN); /* handlers are reaped automatically */
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        if (fork() == 0) {
            char buf[64];
            ssize_t n = recv(c, buf, sizeof buf - 1, 0);
            if (n <= 0)
                _exit(1);
            buf[n] = 0;
            usleep(DELAY_MS * 1000);
            char reply[96];
            int len = snprintf(reply, sizeof reply, "reply to %s", buf);
            send(c, reply, (size_t)len, 0);
            close(c);
            _exit(0);
        }
        close(c);
    }
}

static void *fetch(void *arg) {
    intptr_t i = (intptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    CHECK(connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) == 0);
    char req[32];
    int len = snprintf(req, sizeof req, "request %d", (int)i);
    CHECK(send(fd, req, (size_t)len, 0) == len);
    char buf[96];
    size_t got = 0;
    enter_call();
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        CHECK(n >= 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    leave_call();
    buf[got] = 0;
    char want[96];
    snprintf(want, sizeof want, "reply to request %d", (int)i);
    CHECK(strcmp(buf, want) == 0);
    close(fd);
    return (void *)1;
}

static int pairs[N][2];

static void *read_pair(void *arg) {
    intptr_t i = (intptr_t)arg;
    char buf[16] = {0};
    enter_call();
    ssize_t n = read(pairs[i][0], buf, sizeof buf - 1);
    leave_call();
    CHECK(n == 1 && buf[0] == 'a' + i);
    return (void *)1;
}

static double run_all(void *(*f)(void *), const char *what) {
    greenrt_t g[N];
    inflight = max_inflight = 0;
    uint64_t sw0 = greenrt_switch_count();
    double t0 = now_ms();
    for (intptr_t i = 0; i < N; i++)
        CHECK((g[i] = greenrt_spawn(f, (void *)i)) != 0);
    for (int i = 0; i < N; i++) {
        void *res;
        CHECK(greenrt_join(g[i], -1, &res) == 0 && res == (void *)1);
    }
    double wall = now_ms() - t0;
    uint64_t switches = greenrt_switch_count() - sw0;
    printf("%d greenlets x %s (answer after %d ms): %.0f ms wall, %d waiting at once, "
           "%llu switches\n",
           N, what, DELAY_MS, wall, max_inflight, (unsigned long long)switches);
    CHECK(wall >= DELAY_MS - 10);
    CHECK(wall < DELAY_MS * 4);
    CHECK(max_inflight == N);
    CHECK(switches >= N);
    return wall;
}

int main(void) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&server_addr, sizeof server_addr) == 0);
    socklen_t alen = sizeof server_addr;
    CHECK(getsockname(lfd, (struct sockaddr *)&server_addr, &alen) == 0);
    CHECK(listen(lfd, 64) == 0);
    pid_t server = fork();
    CHECK(server >= 0);
    if (server == 0)
        serve(lfd);
    close(lfd);

    run_all(fetch, "connect + send + recv over TCP");

    for (int i = 0; i < N; i++)
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) == 0);
    pid_t writer = fork();
    CHECK(writer >= 0);
    if (writer == 0) {
        usleep(DELAY_MS * 1000);
        for (int i = 0; i < N; i++) {
            char c = (char)('a' + i);
            if (write(pairs[i][1], &c, 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    run_all(read_pair, "read on a socketpair");

    int st;
    CHECK(waitpid(writer, &st, 0) == writer && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    kill(server, SIGKILL);
    CHECK(waitpid(server, &st, 0) == server);
    return 0;
}
