/* close() and dup2() over an fd other greenlets wait on (rule 4): a
 * greenlet blocked in read() on a pipe and one blocked in recv() on a
 * socket wake with EBADF when a third greenlet closes or dup2()s over their
 * fd, and the fd number reused right after does not inherit the old wait
 * (data on the new pipe is read by a new reader, not lost). Also several
 * greenlets reading one socket at once (rule 13): each message is read by
 * exactly one of them. Needs the preload's io and net hooks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capi_util.h"

struct job { int fd; ssize_t r; int e; };

static void *reader(void *arg) {
    struct job *j = arg;
    char b[16];
    errno = 0;
    j->r = read(j->fd, b, sizeof b);
    j->e = errno;
    return NULL;
}

static void *receiver(void *arg) {
    struct job *j = arg;
    char b[16];
    errno = 0;
    j->r = recv(j->fd, b, sizeof b, 0);
    j->e = errno;
    return NULL;
}

enum { M = 6 };
static int shared[2];
static int seen[M];

static void *many(void *arg) {
    (void)arg;
    char b;
    ssize_t r = read(shared[0], &b, 1);
    CHECK(r == 1 && b >= 0 && b < M);
    seen[(int)b]++;
    return NULL;
}

int main(void) {
    int p[2], sv[2];
    CHECK(pipe(p) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct job jr = { p[0], 0, 0 }, js = { sv[0], 0, 0 };
    greenrt_t gr = greenrt_spawn(reader, &jr);
    greenrt_t gs = greenrt_spawn(receiver, &js);
    CHECK(gr && gs);
    uint64_t sw = greenrt_switch_count();
    greenrt_sleep_ms(50); /* both are parked now */
    CHECK(greenrt_switch_count() > sw);
    CHECK(close(p[0]) == 0);
    int other[2];
    CHECK(pipe(other) == 0);
    CHECK(dup2(other[0], sv[0]) == sv[0]);
    CHECK(greenrt_join(gr, 2000, NULL) == 0);
    CHECK(greenrt_join(gs, 2000, NULL) == 0);
    printf("read after close: %zd %s\n", jr.r, strerrorname_np(jr.e));
    printf("recv after dup2: %zd %s\n", js.r, strerrorname_np(js.e));
    CHECK(jr.r == -1 && jr.e == EBADF);
    CHECK(js.r == -1 && js.e == EBADF);

    /* The reused number: a fresh pipe likely takes p[0]'s number. */
    int q[2];
    CHECK(pipe(q) == 0);
    struct job jq = { q[0], 0, 0 };
    greenrt_t gq = greenrt_spawn(reader, &jq);
    greenrt_sleep_ms(20);
    CHECK(write(q[1], "new", 3) == 3);
    CHECK(greenrt_join(gq, 2000, NULL) == 0);
    CHECK(jq.r == 3);
    /* The dup2'd fd now reads the other pipe. */
    CHECK(write(other[1], "o", 1) == 1);
    char c;
    CHECK(read(sv[0], &c, 1) == 1 && c == 'o');

    /* Several greenlets on one fd: each byte read once. */
    CHECK(pipe(shared) == 0);
    greenrt_t g[M];
    for (int i = 0; i < M; i++) CHECK((g[i] = greenrt_spawn(many, NULL)) != 0);
    greenrt_sleep_ms(20);
    for (char i = 0; i < M; i++) CHECK(write(shared[1], &i, 1) == 1);
    for (int i = 0; i < M; i++) CHECK(greenrt_join(g[i], 2000, NULL) == 0);
    for (int i = 0; i < M; i++) CHECK(seen[i] == 1);
    printf("ok\n");
    return 0;
}
