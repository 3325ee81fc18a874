/* busy.c — a greenlet that hogs its hub, for the troubleshooting tools.
 *
 * Three greenlets sleep cooperatively; a fourth computes for 300 ms
 * without making a single blocking call, so no other greenlet of the
 * thread can run meanwhile (greenrt has no preemption, like gevent).
 *
 *   greenrt run --monitor -- ./busy
 *       the blocking monitor reports the hub held by the computing
 *       greenlet (GREENRT_MAX_BLOCKING, 100 ms by default);
 *   GREENRT_RUN_INFO_SIGNAL=USR2 greenrt run -- ./busy
 *       the program sends itself that signal while the greenlets sleep,
 *       and the runtime prints every greenlet and what it waits on.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "greenrt.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *sleeper(void *arg) {
    greenrt_sleep_ms((long)(intptr_t)arg);
    return NULL;
}

static void *cruncher(void *arg) {
    (void)arg;
    volatile uint64_t x = 0;
    double start = now_ms();
    while (now_ms() - start < 300)
        x += 1;
    return NULL;
}

int main(void) {
    greenrt_t g[4];
    for (int i = 0; i < 3; i++)
        g[i] = greenrt_spawn(sleeper, (void *)(intptr_t)(400 + 100 * i));
    greenrt_yield(); /* the sleepers start and park */
    const char *sig = getenv("GREENRT_RUN_INFO_SIGNAL");
    if (sig && strcmp(sig, "USR2") == 0) {
        kill(getpid(), SIGUSR2);
        greenrt_sleep_ms(50); /* let the report's greenlet run */
    }
    g[3] = greenrt_spawn(cruncher, NULL);
    double start = now_ms();
    for (int i = 0; i < 4; i++)
        greenrt_join(g[i], -1, NULL);
    printf("4 greenlets done in %.0f ms (the 300 ms computation held the hub)\n", now_ms() - start);
    return 0;
}
