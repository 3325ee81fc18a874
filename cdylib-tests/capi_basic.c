/* The C API's own semantics (include/greenrt.h), independent of any hook:
 * spawn/join with results, ordering by sleep time, concurrency of
 * greenrt_sleep_ms, join timeouts, kill, greenrt_killed, EDEADLK, ESRCH,
 * greenrt_wait_fd (ready, timeout, bad fd, bad events), yield interleaving,
 * small explicit stacks, per-thread hubs and handles. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "capi_util.h"

static void *add_one(void *arg) {
    CHECK(greenrt_sleep_ms(5) == 0);
    return (void *)((intptr_t)arg + 1);
}

static char order_log[16];
static int order_len;

static void *sleep_then_log(void *arg) {
    intptr_t ms = (intptr_t)arg;
    CHECK(greenrt_sleep_ms(ms) == 0);
    order_log[order_len++] = (char)('0' + ms / 10);
    return NULL;
}

static void *sleep_200(void *arg) {
    (void)arg;
    CHECK(greenrt_sleep_ms(200) == 0);
    return NULL;
}

static int interrupted;

static void *sleep_until_killed(void *arg) {
    (void)arg;
    int r = greenrt_sleep_ms(10000);
    if (r == -1 && errno == EINTR && greenrt_killed())
        interrupted = 1;
    /* Every later blocking call fails too. */
    if (greenrt_sleep_ms(10000) == -1 && errno == EINTR)
        interrupted++;
    return (void *)1;
}

static void *join_self(void *arg) {
    (void)arg;
    void *res;
    int r = greenrt_join(greenrt_current(), -1, &res);
    return (void *)(intptr_t)(r == -1 && errno == EDEADLK);
}

/* Kills itself: greenrt_kill returns 0 at once (nothing unwinds through
 * C), the greenlet is killed from then on, and it ends by returning. */
static void *kill_self(void *arg) {
    (void)arg;
    if (greenrt_killed()) return (void *)0;
    int r = greenrt_kill(greenrt_current(), -1);
    int ok = r == 0 && greenrt_killed() && greenrt_sleep_ms(10000) == -1 && errno == EINTR;
    return (void *)(intptr_t)ok;
}

static int pipe_fds[2];

static void *write_later(void *arg) {
    (void)arg;
    CHECK(greenrt_sleep_ms(50) == 0);
    CHECK(write(pipe_fds[1], "x", 1) == 1);
    return NULL;
}

static char yield_log[16];
static int yield_len;

static void *yielder(void *arg) {
    for (int i = 0; i < 3; i++) {
        yield_log[yield_len++] = *(const char *)arg;
        CHECK(greenrt_yield() == 0);
    }
    return NULL;
}

static int depth(int n) {
    volatile char pad[256];
    pad[0] = (char)n;
    return n == 0 ? pad[0] : depth(n - 1) + 1;
}

static void *recurse(void *arg) {
    return (void *)(intptr_t)depth((int)(intptr_t)arg);
}

static greenrt_t main_thread_handle;

static void *thread_main(void *arg) {
    (void)arg;
    /* A handle from another thread means nothing here. */
    errno = 0;
    if (greenrt_join(main_thread_handle, 0, NULL) != -1 || errno != ESRCH)
        return (void *)1;
    greenrt_t g[10];
    for (intptr_t i = 0; i < 10; i++)
        g[i] = greenrt_spawn(add_one, (void *)i);
    for (intptr_t i = 0; i < 10; i++) {
        void *res;
        if (greenrt_join(g[i], -1, &res) != 0 || (intptr_t)res != i + 1)
            return (void *)2;
    }
    return NULL;
}

int main(void) {
    uint64_t switches0 = greenrt_switch_count();
    greenrt_t me = greenrt_current();
    CHECK(me != 0);

    /* Results come back through join. */
    greenrt_t gs[100];
    for (intptr_t i = 0; i < 100; i++) {
        gs[i] = greenrt_spawn(add_one, (void *)i);
        CHECK(gs[i] != 0);
        CHECK(gs[i] != me);
    }
    long sum = 0;
    for (int i = 0; i < 100; i++) {
        void *res = NULL;
        CHECK(greenrt_join(gs[i], -1, &res) == 0);
        sum += (intptr_t)res;
    }
    CHECK(sum == 5050);
    printf("spawn/join: 100 results, sum %ld\n", sum);

    /* Joined handles are released. */
    errno = 0;
    CHECK(greenrt_join(gs[0], -1, NULL) == -1 && errno == ESRCH);
    CHECK(greenrt_join(123456789, -1, NULL) == -1 && errno == ESRCH);
    CHECK(greenrt_kill(123456789, 0) == -1 && errno == ESRCH);
    printf("unknown handles: ESRCH\n");

    /* Sleeps end in order of their length, not of their spawning. */
    greenrt_t a = greenrt_spawn(sleep_then_log, (void *)30);
    greenrt_t b = greenrt_spawn(sleep_then_log, (void *)10);
    greenrt_t c = greenrt_spawn(sleep_then_log, (void *)20);
    CHECK(greenrt_join(a, -1, NULL) == 0);
    CHECK(greenrt_join(b, -1, NULL) == 0);
    CHECK(greenrt_join(c, -1, NULL) == 0);
    CHECK(strcmp(order_log, "123") == 0);
    printf("sleep order: %s\n", order_log);

    /* 50 x 200 ms of sleeping take about 200 ms. */
    double t0 = now_ms();
    for (int i = 0; i < 50; i++)
        gs[i] = greenrt_spawn(sleep_200, NULL);
    for (int i = 0; i < 50; i++)
        CHECK(greenrt_join(gs[i], -1, NULL) == 0);
    double wall = now_ms() - t0;
    CHECK(wall >= 190 && wall < 1000);
    printf("50 x greenrt_sleep_ms(200): concurrent\n");

    /* A join with a timeout. */
    greenrt_t s = greenrt_spawn(sleep_200, NULL);
    t0 = now_ms();
    errno = 0;
    CHECK(greenrt_join(s, 20, NULL) == -1 && errno == ETIMEDOUT);
    CHECK(now_ms() - t0 >= 15);
    CHECK(greenrt_join(s, 2000, NULL) == 0);
    printf("join timeout: ETIMEDOUT, then joined\n");

    /* Kill: the sleep fails with EINTR, greenrt_killed says so, later blocking
     * calls fail too; the kill waits for the end. */
    greenrt_t k = greenrt_spawn(sleep_until_killed, NULL);
    CHECK(greenrt_yield() == 0);
    t0 = now_ms();
    CHECK(greenrt_kill(k, -1) == 0);
    CHECK(now_ms() - t0 < 1000);
    CHECK(interrupted == 2);
    void *kres = NULL;
    /* It returned (C code is never unwound): joined with its value. */
    CHECK(greenrt_join(k, -1, &kres) == 0 && (intptr_t)kres == 1);
    printf("kill: EINTR in the greenlet, killed flag set\n");

    /* Killed before it ever ran: the join reports ECANCELED. */
    k = greenrt_spawn(sleep_200, NULL);
    CHECK(greenrt_kill(k, -1) == 0);
    errno = 0;
    CHECK(greenrt_join(k, -1, NULL) == -1 && errno == ECANCELED);
    printf("kill before start: ECANCELED\n");

    /* kill(g, 0) does not wait; the join does. */
    interrupted = 0;
    k = greenrt_spawn(sleep_until_killed, NULL);
    CHECK(greenrt_yield() == 0);
    CHECK(greenrt_kill(k, 0) == 0);
    CHECK(interrupted == 0);
    CHECK(greenrt_join(k, 1000, NULL) == 0);
    CHECK(interrupted == 2);

    /* Killing oneself. */
    greenrt_t ks = greenrt_spawn(kill_self, NULL);
    void *ksres = NULL;
    t0 = now_ms();
    CHECK(greenrt_join(ks, -1, &ksres) == 0);
    CHECK((intptr_t)ksres == 1);
    CHECK(now_ms() - t0 < 5000);
    printf("kill self: 0, then killed\n");

    /* Joining oneself. */
    greenrt_t self = greenrt_spawn(join_self, NULL);
    void *res = NULL;
    CHECK(greenrt_join(self, -1, &res) == 0);
    CHECK((intptr_t)res == 1);
    printf("join self: EDEADLK\n");

    /* wait_fd. */
    CHECK(pipe(pipe_fds) == 0);
    errno = 0;
    t0 = now_ms();
    CHECK(greenrt_wait_fd(pipe_fds[0], GREENRT_READ, 30) == -1 && errno == ETIMEDOUT);
    CHECK(now_ms() - t0 >= 25);
    greenrt_t w = greenrt_spawn(write_later, NULL);
    t0 = now_ms();
    CHECK(greenrt_wait_fd(pipe_fds[0], GREENRT_READ, 5000) == 0);
    CHECK(now_ms() - t0 >= 40);
    CHECK(greenrt_join(w, -1, NULL) == 0);
    /* Level-triggered: still ready, nothing was read. */
    CHECK(greenrt_wait_fd(pipe_fds[0], GREENRT_READ, 0) == 0);
    CHECK(greenrt_wait_fd(pipe_fds[1], GREENRT_WRITE, 0) == 0);
    CHECK(greenrt_wait_fd(pipe_fds[1], GREENRT_READ | GREENRT_WRITE, 0) == 0);
    errno = 0;
    CHECK(greenrt_wait_fd(-1, GREENRT_READ, 0) == -1 && errno == EBADF);
    errno = 0;
    CHECK(greenrt_wait_fd(pipe_fds[0], 0, 0) == -1 && errno == EINVAL);
    int closed = dup(pipe_fds[0]);
    CHECK(closed >= 0 && close(closed) == 0);
    errno = 0;
    CHECK(greenrt_wait_fd(closed, GREENRT_READ, 0) == -1 && errno == EBADF);
    printf("wait_fd: ready, ETIMEDOUT, EBADF, EINVAL\n");

    /* Yield interleaves. */
    greenrt_t y1 = greenrt_spawn(yielder, "a");
    greenrt_t y2 = greenrt_spawn(yielder, "b");
    CHECK(greenrt_join(y1, -1, NULL) == 0);
    CHECK(greenrt_join(y2, -1, NULL) == 0);
    CHECK(strcmp(yield_log, "ababab") == 0);
    printf("yield: %s\n", yield_log);

    /* An explicit small stack holds a moderate recursion. */
    greenrt_t r = greenrt_spawn_ex(recurse, (void *)40, 64 * 1024);
    CHECK(r != 0);
    CHECK(greenrt_join(r, -1, &res) == 0 && (intptr_t)res == 40);
    printf("spawn_ex: 64 KiB stack\n");

    /* Another thread has its own hub and handles. */
    main_thread_handle = greenrt_spawn(sleep_200, NULL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0);
    void *tres;
    CHECK(pthread_join(th, &tres) == 0);
    CHECK(tres == NULL);
    CHECK(greenrt_join(main_thread_handle, -1, NULL) == 0);
    printf("threads: own hub, foreign handles ESRCH\n");

    CHECK(greenrt_switch_count() > switches0 + 200);
    printf("switch count moved\n");
    return 0;
}
