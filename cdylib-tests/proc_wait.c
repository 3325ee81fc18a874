/* fork + waitpid / wait / wait4: exit codes, death by a signal, WNOHANG,
 * stop and continue reports, a specific pid while another child exits
 * first (its status is not taken), wait for any child, wait4's rusage,
 * process-group waits, and the errors. Output is the same with and
 * without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    return e ? strerrorname_np(e) : "0";
}

static void describe(const char *what, pid_t got, pid_t want, int st) {
    printf("%s: pid ok=%d ", what, got == want);
    if (got <= 0)
        printf("ret=%d %s\n", (int)got, ename(errno));
    else if (WIFEXITED(st))
        printf("exited %d\n", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("killed by %s\n", sigabbrev_np(WTERMSIG(st)));
    else if (WIFSTOPPED(st))
        printf("stopped by %s\n", sigabbrev_np(WSTOPSIG(st)));
    else if (WIFCONTINUED(st))
        printf("continued\n");
    else
        printf("status %#x\n", st);
}

/* A child that sleeps ms milliseconds and exits with code. */
static pid_t child(int ms, int code) {
    pid_t p = fork();
    if (p == 0) {
        if (ms)
            usleep(ms * 1000);
        _exit(code);
    }
    return p;
}

/* Uses 30 ms of CPU time (not wall time: the machine may be busy). */
static void burn(void) {
    volatile unsigned long x = 0;
    struct timespec t;
    do {
        for (int i = 0; i < 100000; i++)
            x += i;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while (t.tv_sec == 0 && t.tv_nsec < 30 * 1000000L);
}

int main(void) {
    int st = 0;
    pid_t p, r;

    /* Exit codes, waited for before and after the child exits. */
    p = child(50, 3);
    errno = 999;
    r = waitpid(p, &st, 0);
    describe("waitpid exit 3 (child still running)", r, p, st);
    printf("errno kept: %d\n", errno);
    p = child(0, 7);
    usleep(100000);
    r = waitpid(p, &st, 0);
    describe("waitpid exit 7 (child already gone)", r, p, st);

    /* A NULL status. */
    p = child(20, 1);
    r = waitpid(p, NULL, 0);
    printf("waitpid NULL status: pid ok=%d\n", r == p);

    /* Killed by a signal. */
    p = fork();
    if (p == 0) {
        pause();
        _exit(0);
    }
    usleep(20000);
    kill(p, SIGKILL);
    r = waitpid(p, &st, 0);
    describe("waitpid SIGKILL", r, p, st);
    p = fork();
    if (p == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    r = waitpid(p, &st, 0);
    describe("waitpid SIGTERM", r, p, st);

    /* WNOHANG while it runs, then the wait. */
    p = child(80, 5);
    r = waitpid(p, &st, WNOHANG);
    printf("waitpid WNOHANG running: %d\n", (int)r);
    r = waitpid(p, &st, 0);
    describe("waitpid after WNOHANG", r, p, st);

    /* A specific pid while another child exits first: the other one's
     * status is still there afterwards. */
    pid_t a = child(0, 11), b = child(100, 12);
    r = waitpid(b, &st, 0);
    describe("waitpid the later child", r, b, st);
    r = waitpid(a, &st, 0);
    describe("waitpid the earlier child, not stolen", r, a, st);

    /* wait(): any child. */
    p = child(50, 21);
    r = wait(&st);
    describe("wait", r, p, st);
    /* waitpid(-1) */
    p = child(30, 22);
    r = waitpid(-1, &st, 0);
    describe("waitpid(-1)", r, p, st);
    /* waitpid(0): our process group. */
    p = child(30, 23);
    r = waitpid(0, &st, 0);
    describe("waitpid(0)", r, p, st);
    /* waitpid(-pgid) */
    p = child(30, 24);
    r = waitpid(-getpgrp(), &st, 0);
    describe("waitpid(-pgrp)", r, p, st);

    /* Stop and continue reports (the child exits only when told, so the
     * continue report cannot be overtaken by its exit). */
    int go[2];
    if (pipe(go))
        return 1;
    p = fork();
    if (p == 0) {
        char c;
        close(go[1]);
        raise(SIGSTOP);
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(31);
    }
    close(go[0]);
    r = waitpid(p, &st, WUNTRACED);
    describe("waitpid WUNTRACED", r, p, st);
    kill(p, SIGCONT);
    r = waitpid(p, &st, WCONTINUED);
    describe("waitpid WCONTINUED", r, p, st);
    close(go[1]);
    r = waitpid(p, &st, 0);
    describe("waitpid after continue", r, p, st);

    /* wait4 with rusage: the child's CPU time is reported. */
    p = fork();
    if (p == 0) {
        burn();
        _exit(41);
    }
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    r = wait4(p, &st, 0, &ru);
    describe("wait4 rusage", r, p, st);
    long cpu_ms = ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 + ru.ru_stime.tv_sec * 1000 +
                  ru.ru_stime.tv_usec / 1000;
    printf("wait4 rusage: cpu >= 20 ms=%d maxrss>0=%d\n", cpu_ms >= 20, ru.ru_maxrss > 0);
    p = child(30, 42);
    r = wait4(-1, &st, 0, &ru);
    describe("wait4(-1) rusage", r, p, st);
    p = child(30, 43);
    r = wait4(p, &st, 0, NULL);
    describe("wait4 no rusage", r, p, st);
    p = fork();
    if (p == 0) {
        raise(SIGSTOP);
        _exit(44);
    }
    r = wait4(p, &st, WUNTRACED, &ru);
    describe("wait4 WUNTRACED rusage", r, p, st);
    kill(p, SIGCONT);
    r = wait4(p, &st, 0, &ru);
    describe("wait4 after continue", r, p, st);

    /* Errors. */
    errno = 0;
    r = waitpid(-1, &st, 0);
    describe("waitpid no children", r, -1, st);
    r = waitpid(1, &st, 0);
    describe("waitpid not our child", r, -1, st);
    r = wait(&st);
    describe("wait no children", r, -1, st);
    r = wait4(12345678, &st, 0, &ru);
    describe("wait4 no such pid", r, -1, st);
    p = child(10, 0);
    r = waitpid(p, &st, 0x1000);
    describe("waitpid bad options", r, -1, st);
    waitpid(p, &st, 0);
    return 0;
}
