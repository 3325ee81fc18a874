/* Signals and the sleep family: a SIGALRM handler installed without
 * SA_RESTART interrupts nanosleep, clock_nanosleep, usleep and sleep with
 * EINTR and the remaining time; with SA_RESTART they are still interrupted
 * (the sleep calls are never restarted). A sleep longer than the alarm
 * that is NOT interrupted would run to its end (2 s) and print a different
 * line, so a missing EINTR fails quickly instead of hanging. Output is the
 * same with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "sigalrm.h"

static long ms_of(const struct timespec *ts) {
    return ts->tv_sec * 1000L + ts->tv_nsec / 1000000L;
}

static void run(const char *mode) {
    struct timespec req = { 2, 0 }, rem = { 0, 0 };
    int r;

    hits = 0;
    alarm_in(50);
    errno = 0;
    r = nanosleep(&req, &rem);
    printf("%s nanosleep: %d %s handler ran=%d rem in (1.5s, 2s)=%d\n", mode, r, ename(errno), hits,
           ms_of(&rem) > 1500 && ms_of(&rem) < 2000);

    hits = 0;
    alarm_in(50);
    rem = (struct timespec){ 0, 0 };
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    printf("%s clock_nanosleep relative: %s handler ran=%d rem in (1.5s, 2s)=%d\n", mode, ename(r), hits,
           ms_of(&rem) > 1500 && ms_of(&rem) < 2000);

    struct timespec target;
    clock_gettime(CLOCK_REALTIME, &target);
    target.tv_sec += 2;
    hits = 0;
    alarm_in(50);
    rem = (struct timespec){ 9, 9 };
    r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &target, &rem);
    printf("%s clock_nanosleep absolute: %s handler ran=%d rem untouched=%d\n", mode, ename(r), hits,
           rem.tv_sec == 9 && rem.tv_nsec == 9);

    hits = 0;
    alarm_in(50);
    errno = 0;
    r = usleep(2000000);
    printf("%s usleep: %d %s handler ran=%d\n", mode, r, ename(errno), hits);

    hits = 0;
    alarm_in(50);
    errno = 0;
    unsigned left = sleep(3);
    printf("%s sleep(3): %u %s handler ran=%d\n", mode, left, ename(errno), hits);
}

int main(void) {
    handler(0);
    run("no SA_RESTART");
    handler(SA_RESTART);
    run("SA_RESTART");
    return 0;
}
