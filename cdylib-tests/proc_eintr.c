/* Signals and waiting for a child: waitpid and wait4 fail with EINTR when
 * a SIGALRM handler installed without SA_RESTART runs, leaving the child
 * unreaped, and are restarted (the child's exit is reported) when the
 * handler has SA_RESTART. A default-ignored SIGCHLD never interrupts.
 * Output is the same with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sigalrm.h"

/* A child that exits with `code` after ms milliseconds. */
static pid_t child(int ms, int code) {
    pid_t p = fork();
    if (p == 0) {
        usleep(ms * 1000);
        _exit(code);
    }
    return p;
}

static void report(const char *what, pid_t r, pid_t want, int st) {
    if (r == want && WIFEXITED(st))
        printf("%s: reaped, exit %d, handler ran=%d\n", what, WEXITSTATUS(st), hits);
    else
        printf("%s: %d %s handler ran=%d\n", what, (int)(r == want ? 0 : r), ename(errno), hits);
}

int main(void) {
    int st;
    pid_t p, r;

    handler(0);
    /* waitpid for one pid, interrupted: the child is still there after. */
    p = child(400, 5);
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = waitpid(p, &st, 0);
    report("no SA_RESTART waitpid(pid)", r, p, st);
    r = waitpid(p, &st, 0);
    report("then waitpid(pid) again", r, p, st);

    /* wait() for any child, interrupted. */
    p = child(400, 6);
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = wait(&st);
    report("no SA_RESTART wait()", r, p, st);
    r = waitpid(p, &st, 0);
    report("then waitpid(pid)", r, p, st);

    /* wait4 with rusage, interrupted. */
    struct rusage ru;
    p = child(400, 7);
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = wait4(p, &st, 0, &ru);
    report("no SA_RESTART wait4(pid, rusage)", r, p, st);
    r = wait4(p, &st, 0, &ru);
    report("then wait4 again", r, p, st);

    handler(SA_RESTART);
    /* Restarted: the handler runs, the wait goes on until the exit. */
    p = child(300, 8);
    hits = 0;
    alarm_in(50);
    errno = 0;
    r = waitpid(p, &st, 0);
    report("SA_RESTART waitpid(pid)", r, p, st);
    p = child(300, 9);
    hits = 0;
    alarm_in(50);
    r = wait(&st);
    report("SA_RESTART wait()", r, p, st);
    p = child(300, 10);
    hits = 0;
    alarm_in(50);
    r = wait4(p, &st, 0, &ru);
    report("SA_RESTART wait4(pid, rusage)", r, p, st);
    return 0;
}
