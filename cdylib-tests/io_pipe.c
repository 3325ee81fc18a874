/* Pipes with plain blocking calls: a writer thread sends 3 MiB through a
 * pipe in uneven write()/writev() pieces while the main thread reads it
 * with read() and readv(); every byte arrives in order. A blocking write
 * larger than the pipe returns the full count. Then: EOF after the writer
 * closes, EPIPE (SIGPIPE ignored) once the reader is gone, pipe2 with
 * O_NONBLOCK (EAGAIN, F_GETFL view), a zero-length read, and __read_chk
 * under _FORTIFY_SOURCE. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)
#define SIZE (3 << 20)

static int p[2];
static unsigned char *src;
static ssize_t big_write;

static void *writer(void *arg) {
    (void)arg;
    size_t off = 0, step = 1;
    while (off < SIZE / 2) {
        size_t n = step % 70001;
        if (n > SIZE / 2 - off) n = SIZE / 2 - off;
        if (n == 0) n = 1;
        ssize_t r;
        if (step % 2) {
            r = write(p[1], src + off, n);
        } else {
            struct iovec v[3] = { { src + off, n / 3 }, { src + off + n / 3, 0 }, { src + off + n / 3, n - n / 3 } };
            r = writev(p[1], v, 3);
        }
        CHECK(r == (ssize_t)n);
        off += n;
        step = step * 3 + 1;
    }
    /* One write far larger than the pipe: all of it, in one call. */
    big_write = write(p[1], src + off, SIZE - off);
    close(p[1]);
    return NULL;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    src = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++) src[i] = (unsigned char)(i * 13 + (i >> 9));
    CHECK(pipe(p) == 0);
    printf("pipe F_GETFL: read end %#x, write end %#x\n", fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, writer, NULL) == 0);
    unsigned char *dst = malloc(SIZE);
    size_t got = 0, calls = 0;
    for (;;) {
        ssize_t r;
        if (calls++ % 2) {
            r = read(p[0], dst + got, SIZE - got < 50000 ? SIZE - got : 50000);
        } else {
            size_t n = SIZE - got < 30000 ? SIZE - got : 30000;
            struct iovec v[2] = { { dst + got, n / 2 }, { dst + got + n / 2, n - n / 2 } };
            r = readv(p[0], v, 2);
        }
        CHECK(r >= 0);
        if (r == 0) break;
        got += r;
    }
    pthread_join(t, NULL);
    printf("big write returned all: %s\n", big_write == SIZE - SIZE / 2 ? "yes" : "no");
    printf("read %zu bytes, byte-exact: %s\n", got, got == SIZE && memcmp(src, dst, SIZE) == 0 ? "yes" : "no");
    char c;
    errno = 0;
    printf("read at EOF: %zd %s\n", read(p[0], &c, 1), errno ? strerrorname_np(errno) : "0");
    close(p[0]);

    /* Writer with no reader: EPIPE. */
    CHECK(pipe(p) == 0);
    close(p[0]);
    errno = 0;
    ssize_t r = write(p[1], "x", 1);
    printf("write without reader: %zd %s\n", r, strerrorname_np(errno));
    close(p[1]);

    /* pipe2(O_NONBLOCK): the program's choice is kept. */
    CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    printf("pipe2 F_GETFL nonblock: %d, F_GETFD cloexec: %d\n", !!(fcntl(p[0], F_GETFL) & O_NONBLOCK),
           !!(fcntl(p[0], F_GETFD) & FD_CLOEXEC));
    errno = 0;
    r = read(p[0], &c, 1);
    printf("read empty nonblocking pipe: %zd %s\n", r, strerrorname_np(errno));
    size_t filled = 0;
    static char chunk[4096];
    while ((r = write(p[1], chunk, sizeof chunk)) > 0) filled += r;
    printf("fill nonblocking pipe: stopped with %s, filled some: %s\n", strerrorname_np(errno), filled > 0 ? "yes" : "no");
    /* Clear O_NONBLOCK: now blocking reads cooperate again. */
    CHECK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) & ~O_NONBLOCK) == 0);
    printf("after F_SETFL: nonblock %d\n", !!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
    r = read(p[0], chunk, sizeof chunk);
    printf("blocking read of a full pipe: %zd\n", r);
    errno = 0;
    r = read(p[0], chunk, 0);
    printf("zero-length read: %zd %s\n", r, errno ? strerrorname_np(errno) : "0");
    close(p[0]);
    close(p[1]);
    return 0;
}
