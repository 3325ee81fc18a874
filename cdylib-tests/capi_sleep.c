/* Cooperation proof, sleep family: 30 greenlets doing plain blocking sleeps
 * (usleep, nanosleep, clock_nanosleep; 200 ms each) finish in about the time
 * of one — 6 s if they ran one after another — and all were asleep at once.
 * Needs the preload's time hooks. */
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "capi_util.h"

static void *sleeper(void *arg) {
    intptr_t kind = (intptr_t)arg % 3;
    struct timespec ts = {0, 200 * 1000 * 1000};
    enter_call();
    switch (kind) {
    case 0:
        CHECK(usleep(200 * 1000) == 0);
        break;
    case 1:
        CHECK(nanosleep(&ts, NULL) == 0);
        break;
    default:
        CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == 0);
        break;
    }
    leave_call();
    return NULL;
}

int main(void) {
    enum { N = 30 };
    greenrt_t g[N];
    uint64_t sw0 = greenrt_switch_count();
    double t0 = now_ms();
    for (intptr_t i = 0; i < N; i++)
        CHECK((g[i] = greenrt_spawn(sleeper, (void *)i)) != 0);
    for (int i = 0; i < N; i++)
        CHECK(greenrt_join(g[i], -1, NULL) == 0);
    double wall = now_ms() - t0;
    uint64_t switches = greenrt_switch_count() - sw0;
    printf("%d greenlets x 200 ms of usleep/nanosleep/clock_nanosleep: %.0f ms wall, "
           "%d asleep at once, %llu switches\n",
           N, wall, max_inflight, (unsigned long long)switches);
    CHECK(wall >= 190);
    CHECK(wall < 1500);
    CHECK(max_inflight == N);
    CHECK(switches >= N);
    return 0;
}
