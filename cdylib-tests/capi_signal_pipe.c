/* The signal pipe (here made by GREENRT_RUN_INFO_SIGNAL's handler) moves
 * out of the program's way too: dup2 onto every number where the runtime
 * keeps its fds succeeds, and the signal is still delivered through the
 * moved pipe (the run info appears on stderr). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "capi_util.h"

int main(int argc, char **argv) {
    if (!getenv("GREENRT_RUN_INFO_SIGNAL")) {
        /* The setting is read when the library loads: run again with it. */
        setenv("GREENRT_RUN_INFO_SIGNAL", "SIGUSR2", 1);
        execv("/proc/self/exe", argv);
        CHECK(!"execv");
    }
    (void)argc;
    CHECK(greenrt_sleep_ms(10) == 0); /* the hub, its signal watcher and the pipe */
    int src = open("/dev/null", O_RDONLY);
    for (int n = 1020; n < 1100; n++) CHECK(dup2(src, n) == n);
    char path[] = "/tmp/greenrt-signal-pipe-XXXXXX";
    int log = mkstemp(path);
    CHECK(log >= 0);
    unlink(path);
    int saved = dup(2);
    CHECK(dup2(log, 2) == 2);
    CHECK(raise(SIGUSR2) == 0);
    CHECK(greenrt_sleep_ms(200) == 0); /* the watcher runs the handler */
    CHECK(dup2(saved, 2) == 2);
    char buf[4096] = {0};
    CHECK(pread(log, buf, sizeof buf - 1, 0) > 0);
    CHECK(strstr(buf, "greenlet") != NULL || strstr(buf, "hub") != NULL);
    for (int n = 1020; n < 1100; n++) close(n);
    printf("ok\n");
    return 0;
}
