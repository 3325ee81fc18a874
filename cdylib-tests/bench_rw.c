/* Microbenchmark: the cost of a hooked read() and write() on a ready fd.
 * Run it plain and under the preload (GREENRT_HOOKS=auto: the pass-through
 * path; always: the cooperative path) and compare ns per call:
 *
 *   cc -O2 bench_rw.c -o /tmp/bench_rw && /tmp/bench_rw
 *   LD_PRELOAD=target/release/libgreenrt_preload.so /tmp/bench_rw
 *
 * Each round writes 1 byte into a socketpair (or pipe) and reads it back:
 * both fds are always ready, so nothing ever waits. Prints one line per
 * kind: "<kind> <ns> ns per write+read" (median of 9 runs of N rounds);
 * the hook's cost per call is half the difference from the plain run.
 * Not run by the harness (bench_*.c). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench(const char *kind, int w, int r, long n) {
    double t[9];
    char c = 'x';
    for (int k = 0; k < 9; k++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (write(w, &c, 1) != 1) exit(1);
            if (read(r, &c, 1) != 1) exit(1);
        }
        t[k] = (now_ns() - t0) / n;
    }
    qsort(t, 9, sizeof(double), cmp);
    /* One write plus one read per round: the per-call figure is half. */
    printf("%s %.1f ns per write+read\n", kind, t[4]);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int sv[2], p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(p)) return 1;
    bench("socketpair", sv[0], sv[1], n);
    bench("pipe", p[1], p[0], n);
    return 0;
}
