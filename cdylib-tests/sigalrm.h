/* Shared by the *_eintr.c tests: a SIGALRM handler that counts hits,
 * installed with chosen sa_flags, a one-shot timer, and errno names. */
#ifndef GREENRT_TEST_SIGALRM_H
#define GREENRT_TEST_SIGALRM_H

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

static volatile sig_atomic_t hits;

static void on_alarm(int sig) {
    (void)sig;
    hits++;
}

/* Installs on_alarm for SIGALRM with `flags` (e.g. 0 or SA_RESTART). */
static void handler(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
}

/* Raises SIGALRM once, `ms` milliseconds from now. */
static void alarm_in(int ms) {
    struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

/* The errno's name ("EINTR"), or "0". */
static const char *ename(int e) {
    return e ? strerrorname_np(e) : "0";
}

#endif
