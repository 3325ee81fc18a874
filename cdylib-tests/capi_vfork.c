/* A child made with vfork runs on the parent's memory and thread-locals
 * until it execs or exits: its hooked calls must pass straight through,
 * never park on the parent's hub and run the parent's greenlets inside
 * the child. Here the child blocks in read() until another thread of the
 * parent writes, while a greenlet of the parent is due to run: it must
 * run in the parent, after the child is gone. And vfork's own contract:
 * it returns 0 in the child and the child's pid in the parent, which then
 * reaps it; a vfork + exec still runs the program. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capi_util.h"

static volatile pid_t ran_in = 0;
static int p[2];

static void *greenlet(void *arg) {
    (void)arg;
    CHECK(greenrt_sleep_ms(20) == 0);
    ran_in = getpid();
    return NULL;
}

static void *write_later(void *arg) {
    (void)arg;
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    CHECK(write(p[1], "x", 1) == 1);
    return NULL;
}

int main(void) {
    CHECK(pipe(p) == 0);
    greenrt_t g = greenrt_spawn(greenlet, NULL);
    CHECK(g != 0);
    CHECK(greenrt_yield() == 0); /* the greenlet is now sleeping */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, write_later, NULL) == 0);
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0) {
        char c;
        /* Blocks (the real read) until the other thread writes. */
        _exit(read(p[0], &c, 1) == 1 && c == 'x' ? 0 : 3);
    }
    CHECK(pid > 0);
    CHECK(ran_in == 0); /* nothing of the parent's ran in the child */
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(greenrt_join(g, 5000, NULL) == 0);
    CHECK(ran_in == parent);
    pthread_join(t, NULL);

    /* vfork + exec. */
    pid = vfork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 5", (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
    printf("vfork ok\n");
    return 0;
}
