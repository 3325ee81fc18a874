/* Several threads blocking on sockets at once (each thread has its own hub
 * under the preload): a reader and a writer on one socket, a thread
 * blocked in recv woken by shutdown() from another thread (returns 0), a
 * thread blocked in accept woken by shutdown() of the listener (EINVAL),
 * and a thread blocked in read on a pipe woken by data from another.
 * Closing an fd another *thread* is blocked on is left out on purpose:
 * Linux keeps such a read waiting on the old file, which a cooperative
 * wait cannot reproduce (see preload/src/coop.rs). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static void ms(int n) {
    struct timespec ts = { n / 1000, (n % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

struct job { int fd; ssize_t r; int e; };

static void *do_recv(void *arg) {
    struct job *j = arg;
    char b[8];
    errno = 0;
    j->r = recv(j->fd, b, sizeof b, 0);
    j->e = errno;
    return NULL;
}

static void *do_accept(void *arg) {
    struct job *j = arg;
    errno = 0;
    j->r = accept(j->fd, NULL, NULL);
    j->e = errno;
    return NULL;
}

static void *do_read(void *arg) {
    struct job *j = arg;
    char b[8];
    errno = 0;
    j->r = read(j->fd, b, sizeof b);
    j->e = errno;
    return NULL;
}

#define ROUNDS 2000
static int pair[2];

static void *pinger(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK(write(pair[0], &i, sizeof i) == sizeof i);
        int back;
        CHECK(read(pair[0], &back, sizeof back) == sizeof back && back == i + 1);
    }
    return NULL;
}

int main(void) {
    /* Ping-pong between two threads over one socketpair. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pinger, NULL) == 0);
    for (int i = 0; i < ROUNDS; i++) {
        int v;
        CHECK(read(pair[1], &v, sizeof v) == sizeof v && v == i);
        v++;
        CHECK(write(pair[1], &v, sizeof v) == sizeof v);
    }
    pthread_join(t, NULL);
    printf("ping-pong rounds: %d\n", ROUNDS);

    /* shutdown wakes a reader in another thread. */
    struct job j = { pair[1], 0, 0 };
    CHECK(pthread_create(&t, NULL, do_recv, &j) == 0);
    ms(100);
    CHECK(shutdown(pair[1], SHUT_RDWR) == 0);
    pthread_join(t, NULL);
    printf("recv woken by shutdown: %zd %s\n", j.r, j.e ? strerrorname_np(j.e) : "0");
    close(pair[0]);
    close(pair[1]);

    /* shutdown of a listener wakes its acceptor. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(ls, 1) == 0);
    struct job ja = { ls, 0, 0 };
    CHECK(pthread_create(&t, NULL, do_accept, &ja) == 0);
    ms(100);
    CHECK(shutdown(ls, SHUT_RDWR) == 0);
    pthread_join(t, NULL);
    printf("accept woken by shutdown: %zd %s\n", ja.r, strerrorname_np(ja.e));
    close(ls);

    /* A pipe reader in another thread gets data written later. */
    int p[2];
    CHECK(pipe(p) == 0);
    struct job jr = { p[0], 0, 0 };
    CHECK(pthread_create(&t, NULL, do_read, &jr) == 0);
    ms(100);
    CHECK(write(p[1], "wake", 4) == 4);
    pthread_join(t, NULL);
    printf("pipe read woken by a write: %zd\n", jr.r);
    /* And by the writer's close: EOF. */
    CHECK(pthread_create(&t, NULL, do_read, &jr) == 0);
    ms(100);
    close(p[1]);
    pthread_join(t, NULL);
    printf("pipe read woken by the writer's close: %zd\n", jr.r);
    close(p[0]);
    return 0;
}
