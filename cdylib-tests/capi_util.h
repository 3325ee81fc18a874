/* Helpers shared by the capi_*.c cooperation proofs. */
#ifndef CAPI_UTIL_H
#define CAPI_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "greenrt.h"

/* Fails the program (exit 1) with the source line when `cond` is false. */
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n", __FILE__, \
                    __LINE__, #cond, errno, strerror(errno));                    \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

/* Monotonic milliseconds. */
static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* How many greenlets are inside the blocking call right now, and the most
 * there ever were: more than one at once is only possible if a blocked call
 * let the others run. */
static int inflight, max_inflight;

static inline void enter_call(void) {
    if (++inflight > max_inflight)
        max_inflight = inflight;
}

static inline void leave_call(void) { --inflight; }

#endif
