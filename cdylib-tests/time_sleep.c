/* The sleep family: sleep, usleep, nanosleep, clock_nanosleep (relative and
 * TIMER_ABSTIME, on CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME),
 * zero-length sleeps, sleeps from several threads at once, the errors, and
 * errno left alone on success. Output is the same with and without the
 * preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void slept(const char *what, long start, long min_ms) {
    long el = now_ms() - start;
    if (el >= min_ms && el < min_ms + 5000)
        printf("%s: slept >= %ld ms ok\n", what, min_ms);
    else
        printf("%s: slept %ld ms, expected >= %ld\n", what, el, min_ms);
}

static const char *ename(int e) {
    return e ? strerrorname_np(e) : "0";
}

static void *sleeper(void *arg) {
    usleep((useconds_t)(long)arg * 1000);
    return arg;
}

int main(void) {
    long t0;
    int r;

    /* sleep */
    errno = 1111;
    t0 = now_ms();
    unsigned left = sleep(1);
    printf("sleep(1): %u errno=%d\n", left, errno);
    slept("sleep(1)", t0, 1000);
    printf("sleep(0): %u\n", sleep(0));

    /* usleep */
    errno = 2222;
    t0 = now_ms();
    r = usleep(50000);
    printf("usleep(50000): %d errno=%d\n", r, errno);
    slept("usleep", t0, 50);
    printf("usleep(0): %d\n", usleep(0));
    t0 = now_ms();
    r = usleep(1100000); /* more than a second is fine for glibc */
    printf("usleep(1100000): %d\n", r);
    slept("usleep(1100000)", t0, 1100);

    /* nanosleep */
    struct timespec req = { 0, 60 * 1000000L }, rem = { 77, 77 };
    errno = 3333;
    t0 = now_ms();
    r = nanosleep(&req, &rem);
    printf("nanosleep 60ms: %d errno=%d rem untouched=%d\n", r, errno, rem.tv_sec == 77 && rem.tv_nsec == 77);
    slept("nanosleep", t0, 60);
    req = (struct timespec){ 0, 0 };
    printf("nanosleep zero: %d\n", nanosleep(&req, NULL));
    req = (struct timespec){ 0, 1000000000L };
    errno = 0;
    r = nanosleep(&req, NULL);
    printf("nanosleep bad nsec: %d %s\n", r, ename(errno));
    req = (struct timespec){ -1, 0 };
    r = nanosleep(&req, NULL);
    printf("nanosleep negative: %d %s\n", r, ename(errno));
    req = (struct timespec){ 0, -5 };
    r = nanosleep(&req, NULL);
    printf("nanosleep negative nsec: %d %s\n", r, ename(errno));

    /* clock_nanosleep, relative */
    clockid_t clocks[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME };
    const char *names[] = { "REALTIME", "MONOTONIC", "BOOTTIME" };
    for (int i = 0; i < 3; i++) {
        char what[64];
        req = (struct timespec){ 0, 40 * 1000000L };
        errno = 4444;
        t0 = now_ms();
        r = clock_nanosleep(clocks[i], 0, &req, &rem);
        printf("clock_nanosleep %s relative: %d errno=%d\n", names[i], r, errno);
        snprintf(what, sizeof what, "clock_nanosleep %s relative", names[i]);
        slept(what, t0, 40);

        /* absolute: 50 ms from now on that clock */
        struct timespec target, after;
        clock_gettime(clocks[i], &target);
        target.tv_nsec += 50 * 1000000L;
        if (target.tv_nsec >= 1000000000L) {
            target.tv_sec++;
            target.tv_nsec -= 1000000000L;
        }
        t0 = now_ms();
        r = clock_nanosleep(clocks[i], TIMER_ABSTIME, &target, NULL);
        clock_gettime(clocks[i], &after);
        printf("clock_nanosleep %s absolute: %d woke after target=%d errno=%d\n", names[i], r,
               after.tv_sec > target.tv_sec || (after.tv_sec == target.tv_sec && after.tv_nsec >= target.tv_nsec),
               errno);
        snprintf(what, sizeof what, "clock_nanosleep %s absolute", names[i]);
        slept(what, t0, 45);

        /* absolute, in the past: at once */
        target.tv_sec -= 10;
        t0 = now_ms();
        r = clock_nanosleep(clocks[i], TIMER_ABSTIME, &target, NULL);
        printf("clock_nanosleep %s absolute past: %d quick=%d\n", names[i], r, now_ms() - t0 < 1000);
        req = (struct timespec){ 0, 0 };
        printf("clock_nanosleep %s zero: %d %d\n", names[i], clock_nanosleep(clocks[i], 0, &req, NULL),
               clock_nanosleep(clocks[i], TIMER_ABSTIME, &req, NULL));
    }

    /* clock_nanosleep errors: returned, errno untouched */
    errno = 5555;
    req = (struct timespec){ 0, 1000000000L };
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    printf("clock_nanosleep bad nsec: %s errno=%d\n", ename(r), errno);
    req = (struct timespec){ 0, 1000000L };
    r = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL);
    printf("clock_nanosleep thread cpu clock: %s errno=%d\n", ename(r), errno);
    r = clock_nanosleep((clockid_t)12345, 0, &req, NULL);
    printf("clock_nanosleep bad clock: %s errno=%d\n", ename(r), errno);
    req = (struct timespec){ -1, 0 };
    r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &req, NULL);
    printf("clock_nanosleep negative absolute: %s\n", ename(r));

    /* Four threads sleeping at once: together about as long as one. */
    pthread_t th[4];
    t0 = now_ms();
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, sleeper, (void *)(100 + 10 * i));
    long sum = 0;
    for (int i = 0; i < 4; i++) {
        void *v;
        pthread_join(th[i], &v);
        sum += (long)v;
    }
    long el = now_ms() - t0;
    printf("4 threads slept: sum=%ld concurrent=%d\n", sum, el >= 130 && el < 420);
    return 0;
}
