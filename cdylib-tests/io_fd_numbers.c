/* Every fd number below the limit is the program's: dup2, dup3, dup and
 * F_DUPFD onto the numbers where the runtime keeps its own fds (epoll fd,
 * eventfd, from 1024 up, or the top of a low RLIMIT_NOFILE) give the
 * program exactly the number it would get without the preload, and
 * close_range/closefrom over them leave the runtime working. Some of it
 * runs while the main thread is parked in a read (its hub's fds move under
 * its wait). The plain run is the oracle: every line must match. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct writer {
    int fd;
    int delay_ms;
    int grab_from, grab_to; /* dup2 onto these numbers first (if any) */
    int grabbed;
};

static void *write_later(void *arg) {
    struct writer *w = arg;
    pause_ms(w->delay_ms);
    for (int n = w->grab_from; n < w->grab_to; n++)
        if (dup2(w->fd, n) == n) w->grabbed++;
    pause_ms(w->delay_ms);
    write(w->fd, "x", 1);
    return NULL;
}

/* A read that parks until another thread writes (after `grab` dup2s). */
static void read_parked(const char *what, int grab_from, int grab_to) {
    int p[2];
    if (pipe(p) != 0) {
        printf("%s: pipe: %s\n", what, strerror(errno));
        return;
    }
    struct writer w = {p[1], 30, grab_from, grab_to, 0};
    pthread_t t;
    pthread_create(&t, NULL, write_later, &w);
    char c = 0;
    ssize_t n = read(p[0], &c, 1);
    pthread_join(t, NULL);
    printf("%s: pipe %d,%d read %zd '%c', dup2s by the writer %d/%d\n", what, p[0], p[1], n, c,
           w.grabbed, grab_to - grab_from);
    for (int fd = grab_from; fd < grab_to; fd++) close(fd);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    /* Hubs on this thread and a writer thread (under always). */
    read_parked("warm-up", 0, 0);

    int src = open("/dev/null", O_RDONLY);
    printf("F_DUPFD 1024: %d\n", fcntl(src, F_DUPFD, 1024));
    printf("F_DUPFD_CLOEXEC 1024: %d\n", fcntl(src, F_DUPFD_CLOEXEC, 1024));
    close(1024);
    close(1025);
    int ok = 0;
    for (int n = 1020; n < 1040; n++) ok += dup2(src, n) == n;
    printf("dup2 onto 1020..1039: %d of 20\n", ok);
    ok = 0;
    for (int n = 1040; n < 1050; n++) ok += dup3(src, n, O_CLOEXEC) == n;
    printf("dup3 onto 1040..1049: %d of 10\n", ok);
    printf("cloexec of 1045: %d\n", fcntl(1045, F_GETFD) & FD_CLOEXEC);
    for (int n = 1020; n < 1050; n++) close(n);
    read_parked("after dup2", 0, 0);

    /* dup() hands out the lowest free number: fill everything below 1030. */
    int first = dup(src), last = first, skipped = 0;
    while (last < 1030) {
        int d = dup(src);
        if (d != last + 1) skipped++;
        last = d;
    }
    printf("dup from %d up to %d, %d numbers skipped\n", first, last, skipped);
    for (int fd = first; fd <= last; fd++) close(fd);

    /* Another thread takes the numbers while this one is parked. */
    read_parked("parked while the writer dup2s onto 1020..1100", 1020, 1100);

    /* close_range and closefrom over everything. */
    printf("close_range(3, ~0): %d\n", close_range(3, ~0U, 0));
    errno = 0;
    int r = fcntl(src, F_GETFD);
    printf("src after close_range: %d (%s)\n", r, strerror(errno));
    read_parked("after close_range", 0, 0);
    src = open("/dev/null", O_RDONLY);
    printf("reopened /dev/null as %d\n", src);
    closefrom(3);
    read_parked("after closefrom", 0, 0);

    /* A low limit: the runtime's next fds live at its top. */
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = 256;
    printf("setrlimit 256: %d\n", setrlimit(RLIMIT_NOFILE, &lim));
    src = open("/dev/null", O_RDONLY);
    read_parked("low limit, writer dup2s onto 150..256", 150, 256);
    ok = 0;
    for (int n = 150; n < 256; n++) ok += dup2(src, n) == n;
    printf("dup2 onto 150..255 by the main thread: %d of 106\n", ok);
    errno = 0;
    r = dup2(src, 256);
    printf("dup2 onto 256: %d (%s)\n", r, strerror(errno));
    for (int n = 150; n < 256; n++) close(n);
    read_parked("low limit, after", 0, 0);
    return 0;
}
