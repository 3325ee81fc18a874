/* The program's view of its fds never changes (rule 2): O_NONBLOCK set
 * with fcntl or FIONBIO makes calls return EAGAIN as usual, F_GETFL shows
 * exactly the flags the program set (also while another thread is inside
 * a blocking accept or connect, when the preload sets O_NONBLOCK for the
 * call), a dup shares the flag with its original, and a child the program
 * execs inherits exactly those flags (this program re-executes itself with
 * "child FD..." and prints what it sees). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static const char *en(int e) { return e ? strerrorname_np(e) : "0"; }

static int nb(int fd) { return !!(fcntl(fd, F_GETFL) & O_NONBLOCK); }

static int child(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        int fd = atoi(argv[i]);
        int fl = fcntl(fd, F_GETFL);
        printf("child: fd %d nonblock=%d accmode=%d\n", i - 2, !!(fl & O_NONBLOCK), fl & O_ACCMODE);
    }
    return 0;
}

static int listen_fd;

static void *acceptor(void *arg) {
    (void)arg;
    int c = accept(listen_fd, NULL, NULL);
    CHECK(c >= 0);
    close(c);
    return NULL;
}

static void run_child(int fds[], int n) {
    char args[8][16];
    char *argv[12] = { "/proc/self/exe", "child" };
    for (int i = 0; i < n; i++) {
        snprintf(args[i], sizeof args[i], "%d", fds[i]);
        argv[2 + i] = args[i];
    }
    argv[2 + n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("child exit: %d\n", WEXITSTATUS(st));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child(argc, argv);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    printf("socketpair nonblock: %d %d\n", nb(sv[0]), nb(sv[1]));
    char c;
    /* fcntl O_NONBLOCK: EAGAIN at once. */
    CHECK(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) == 0);
    errno = 0;
    ssize_t r = read(sv[0], &c, 1);
    printf("read nonblocking socket: %zd %s, F_GETFL nonblock=%d\n", r, en(errno), nb(sv[0]));
    errno = 0;
    r = recv(sv[0], &c, 1, 0);
    printf("recv nonblocking socket: %zd %s\n", r, en(errno));
    /* FIONBIO on the other end. */
    int on = 1;
    CHECK(ioctl(sv[1], FIONBIO, &on) == 0);
    errno = 0;
    r = recv(sv[1], &c, 1, 0);
    printf("recv after FIONBIO: %zd %s, F_GETFL nonblock=%d\n", r, en(errno), nb(sv[1]));
    on = 0;
    CHECK(ioctl(sv[1], FIONBIO, &on) == 0);
    printf("FIONBIO off: F_GETFL nonblock=%d\n", nb(sv[1]));

    /* A dup shares the description: O_NONBLOCK set on the dup shows on
     * the original, and the original's read returns EAGAIN. */
    int d = dup(sv[1]);
    CHECK(d >= 0);
    CHECK(fcntl(d, F_SETFL, O_NONBLOCK) == 0);
    errno = 0;
    r = read(sv[1], &c, 1);
    printf("read original after O_NONBLOCK on its dup: %zd %s, nonblock=%d\n", r, en(errno), nb(sv[1]));
    CHECK(fcntl(d, F_SETFL, 0) == 0);
    close(d);
    /* Blocking again: data written by the peer is read. */
    CHECK(write(sv[0], "z", 1) == 1);
    r = read(sv[1], &c, 1);
    printf("blocking read back: %zd %c nonblock=%d\n", r, c, nb(sv[1]));

    /* Pipes: one end non-blocking, the other not. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);

    /* F_GETFL while another thread waits in accept (the preload may set
     * O_NONBLOCK for that call and must hide it). */
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(listen_fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(listen_fd, 4) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(listen_fd, (struct sockaddr *)&a, &l) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, acceptor, NULL) == 0);
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    printf("listener nonblock while a thread accepts: %d\n", nb(listen_fd));
    int fds[5] = { sv[0], sv[1], p[0], p[1], listen_fd };
    run_child(fds, 5);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == 0);
    printf("connected socket nonblock: %d\n", nb(s));
    pthread_join(t, NULL);
    printf("listener nonblock after accept: %d\n", nb(listen_fd));
    close(s);
    close(listen_fd);
    /* Everything again, after the calls. */
    run_child(fds, 4);
    return 0;
}
