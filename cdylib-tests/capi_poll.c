/* Cooperation proof, waiting calls: greenlets block in plain poll (one fd
 * and several), select, epoll_wait, ppoll and sleep at once; each is woken
 * by another greenlet's write, or times out, and all of them were inside
 * their call together. Then a kill: greenlets parked in poll, nanosleep,
 * select, epoll_wait and waitpid each get -1/EINTR (and greenrt_killed()),
 * the others go on. Needs the preload's poll, time and process hooks. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capi_util.h"

enum { N = 6 };
static int pipes[N][2];
static int ep;

/* Greenlet i waits for pipe i with a different call each. */
static void *waiter(void *arg) {
    intptr_t i = (intptr_t)arg;
    int fd = pipes[i][0], r = -2;
    enter_call();
    switch (i) {
    case 0: {
        struct pollfd p = {fd, POLLIN, 0};
        r = poll(&p, 1, 5000);
        break;
    }
    case 1: {
        /* several fds: the temporary epoll set */
        struct pollfd p[2] = {{pipes[5][1], POLLPRI, 0}, {fd, POLLIN, 0}};
        r = poll(p, 2, -1);
        break;
    }
    case 2: {
        fd_set s;
        FD_ZERO(&s);
        FD_SET(fd, &s);
        struct timeval tv = {5, 0};
        r = select(fd + 1, &s, NULL, NULL, &tv);
        break;
    }
    case 3: {
        struct epoll_event ev;
        r = epoll_wait(ep, &ev, 1, 5000);
        break;
    }
    case 4: {
        struct pollfd p = {fd, POLLIN, 0};
        struct timespec ts = {5, 0};
        r = ppoll(&p, 1, &ts, NULL);
        break;
    }
    default: {
        /* nothing to read: times out after 300 ms */
        struct pollfd p = {fd, POLLIN, 0};
        r = poll(&p, 1, 300);
        break;
    }
    }
    leave_call();
    return (void *)(intptr_t)r;
}

static void *writer(void *arg) {
    (void)arg;
    CHECK(usleep(100 * 1000) == 0);
    for (int i = 0; i < N - 1; i++)
        CHECK(write(pipes[i][1], "x", 1) == 1);
    return NULL;
}

/* Blocks in one call until killed; returns 1 if it failed with EINTR and
 * greenrt_killed() says so. */
static void *victim(void *arg) {
    intptr_t kind = (intptr_t)arg;
    int r = 0;
    errno = 0;
    switch (kind) {
    case 0: {
        struct pollfd p = {pipes[0][0], POLLIN, 0};
        r = poll(&p, 1, -1);
        break;
    }
    case 1: {
        struct timespec ts = {30, 0};
        r = nanosleep(&ts, NULL);
        break;
    }
    case 2: {
        fd_set s;
        FD_ZERO(&s);
        FD_SET(pipes[0][0], &s);
        r = select(pipes[0][0] + 1, &s, NULL, NULL, NULL);
        break;
    }
    default: {
        struct epoll_event ev;
        r = epoll_wait(ep, &ev, 1, -1);
        break;
    }
    }
    return (void *)(intptr_t)(r == -1 && errno == EINTR && greenrt_killed());
}

static pid_t child;

static void *waitpid_victim(void *arg) {
    (void)arg;
    int st;
    errno = 0;
    pid_t r = waitpid(child, &st, 0);
    return (void *)(intptr_t)(r == -1 && errno == EINTR && greenrt_killed());
}

int main(void) {
    for (int i = 0; i < N; i++)
        CHECK(pipe(pipes[i]) == 0);
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = pipes[3][0]};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, pipes[3][0], &ev) == 0);

    uint64_t sw0 = greenrt_switch_count();
    double t0 = now_ms();
    greenrt_t g[N + 1];
    for (intptr_t i = 0; i < N; i++)
        CHECK((g[i] = greenrt_spawn(waiter, (void *)i)) != 0);
    CHECK((g[N] = greenrt_spawn(writer, NULL)) != 0);
    for (int i = 0; i < N; i++) {
        void *res;
        CHECK(greenrt_join(g[i], -1, &res) == 0);
        CHECK((intptr_t)res == (i == N - 1 ? 0 : 1));
    }
    CHECK(greenrt_join(g[N], -1, NULL) == 0);
    double el = now_ms() - t0;
    printf("%d greenlets in poll/select/epoll_wait/ppoll at once: %d inside together, %.0f ms\n", N,
           max_inflight, el);
    CHECK(max_inflight == N);
    CHECK(el >= 290 && el < 3000);
    CHECK(greenrt_switch_count() - sw0 >= N);

    /* Drain, then kill greenlets parked in each kind of call. */
    char c;
    for (int i = 0; i < N - 1; i++)
        CHECK(read(pipes[i][0], &c, 1) == 1);
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    greenrt_t v[5];
    for (intptr_t k = 0; k < 4; k++)
        CHECK((v[k] = greenrt_spawn(victim, (void *)k)) != 0);
    CHECK((v[4] = greenrt_spawn(waitpid_victim, NULL)) != 0);
    CHECK(greenrt_sleep_ms(50) == 0); /* let them all park */
    for (int k = 0; k < 5; k++) {
        CHECK(greenrt_kill(v[k], 2000) == 0);
        void *res;
        CHECK(greenrt_join(v[k], -1, &res) == 0);
        CHECK((intptr_t)res == 1);
    }
    printf("killed greenlets saw EINTR in poll, nanosleep, select, epoll_wait, waitpid\n");
    kill(child, SIGKILL);
    int st;
    CHECK(waitpid(child, &st, 0) == child && WIFSIGNALED(st));
    return 0;
}
