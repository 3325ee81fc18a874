/* A tracer's waitpid: a child that asks to be traced (PTRACE_TRACEME) and
 * stops reports its ptrace stops to waitpid(pid, &st, 0) without
 * WUNTRACED, as debuggers and strace rely on; the exit comes after
 * PTRACE_CONT. Output is the same with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static void describe(const char *what, pid_t got, pid_t want, int st) {
    printf("%s: pid ok=%d ", what, got == want);
    if (got <= 0)
        printf("ret=%d %s\n", (int)got, strerrorname_np(errno));
    else if (WIFEXITED(st))
        printf("exited %d\n", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("killed by %s\n", sigabbrev_np(WTERMSIG(st)));
    else if (WIFSTOPPED(st))
        printf("stopped by %s\n", sigabbrev_np(WSTOPSIG(st)));
    else
        printf("status %#x\n", st);
}

int main(void) {
    int st;
    pid_t p = fork();
    if (p == 0) {
        /* Some time passes before the child is traced. */
        usleep(30000);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(100);
        raise(SIGUSR1);
        _exit(9);
    }
    pid_t r = waitpid(p, &st, 0);
    describe("waitpid traced child", r, p, st);
    if (r == p && WIFSTOPPED(st)) {
        /* Continue without delivering the signal. */
        ptrace(PTRACE_CONT, p, NULL, NULL);
        r = waitpid(p, &st, 0);
        describe("waitpid after PTRACE_CONT", r, p, st);
    }
    /* A traced child that the tracer kills. */
    p = fork();
    if (p == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(100);
        raise(SIGSTOP);
        pause();
        _exit(0);
    }
    r = wait4(p, &st, 0, NULL);
    describe("wait4 traced child", r, p, st);
    kill(p, SIGKILL);
    r = waitpid(p, &st, 0);
    describe("waitpid killed traced child", r, p, st);
    return 0;
}
