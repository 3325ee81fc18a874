/* Cooperation proof, waitpid: 10 greenlets each fork a child that sleeps
 * 300 ms and exits with its own status, and wait for it with a plain
 * blocking waitpid. Together they take about 300 ms (3 s one after
 * another), every greenlet was waiting at once, and each got its own
 * child's status. Needs the preload's process hooks. */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capi_util.h"

static void *fork_and_wait(void *arg) {
    intptr_t i = (intptr_t)arg;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        _exit(10 + (int)i);
    }
    int st = 0;
    enter_call();
    pid_t r = waitpid(pid, &st, 0);
    leave_call();
    CHECK(r == pid);
    CHECK(WIFEXITED(st));
    return (void *)(intptr_t)WEXITSTATUS(st);
}

int main(void) {
    enum { N = 10 };
    greenrt_t g[N];
    uint64_t sw0 = greenrt_switch_count();
    double t0 = now_ms();
    for (intptr_t i = 0; i < N; i++)
        CHECK((g[i] = greenrt_spawn(fork_and_wait, (void *)i)) != 0);
    for (intptr_t i = 0; i < N; i++) {
        void *res;
        CHECK(greenrt_join(g[i], -1, &res) == 0);
        CHECK((intptr_t)res == 10 + i);
    }
    double wall = now_ms() - t0;
    uint64_t switches = greenrt_switch_count() - sw0;
    printf("%d greenlets x fork + waitpid (child sleeps 300 ms): %.0f ms wall, "
           "%d waiting at once, %llu switches\n",
           N, wall, max_inflight, (unsigned long long)switches);
    CHECK(wall >= 290);
    CHECK(wall < 2000);
    CHECK(max_inflight == N);
    CHECK(switches >= N);
    /* Nothing left to reap. */
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    return 0;
}
