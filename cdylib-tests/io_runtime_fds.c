/* The runtime's own fds (epoll fd, eventfd) are invisible to the program:
 * a program that closes every fd number it did not open (like bash does
 * with numbers it used before, or closefrom()) must keep working, and
 * closing those numbers fails with EBADF as it would without the preload.
 * Even a close loop through raw system calls, which no hook sees, leaves
 * the runtime working: the hub makes new fds and waits on. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case 0: return "0";
    case EBADF: return "EBADF";
    default: return "other";
    }
}

static int q[2];

static void *write_later(void *arg) {
    (void)arg;
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    write(q[1], "y", 1);
    return NULL;
}

/* A read parked until another thread writes. */
static void read_parked(const char *what) {
    pthread_t t;
    pthread_create(&t, NULL, write_later, NULL);
    char c = 0;
    ssize_t n = read(q[0], &c, 1);
    pthread_join(t, NULL);
    printf("%s: read %zd '%c'\n", what, n, c);
}

int main(void) {
    int p[2];
    struct timespec ts = {0, 1000000};
    /* Make the hub exist (under GREENRT_HOOKS=always) before the sweep. */
    nanosleep(&ts, NULL);
    if (pipe(p) != 0) return 1;
    int bad = 0;
    for (int fd = 3; fd < 4096; fd++) {
        if (fd == p[0] || fd == p[1]) continue;
        errno = 0;
        if (close(fd) == 0 || errno != EBADF) bad++;
    }
    printf("closes of unopened fds that did not fail with EBADF: %d\n", bad);
    printf("dup2 onto a high number: %s\n", dup2(p[1], 1500) == 1500 ? "ok" : errname(errno));
    close(1500);
    /* The runtime still works: a child writes, the parent waits and reads. */
    pid_t pid = fork();
    if (pid == 0) {
        nanosleep(&ts, NULL);
        const char *m = "hello from child\n";
        write(p[1], m, strlen(m));
        _exit(7);
    }
    close(p[1]);
    char buf[64] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    int st = 0;
    waitpid(pid, &st, 0);
    printf("read %zd bytes: %s", n, buf);
    printf("child exit %d\n", WEXITSTATUS(st));
    nanosleep(&ts, NULL);
    printf("sleep after sweep: ok\n");

    if (pipe(q) != 0) return 1;
    read_parked("before the raw close loop");
    for (int fd = 3; fd < 4096; fd++)
        if (fd != q[0] && fd != q[1]) syscall(SYS_close, fd);
    read_parked("after the raw close loop");
    nanosleep(&ts, NULL);
    printf("sleep after the raw close loop: ok\n");
    return 0;
}
