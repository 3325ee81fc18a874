/* Blocking reads and writes on character devices that never block return
 * what the kernel's do: a 1 MiB read from /dev/zero fills the buffer
 * (not a short count), /dev/urandom likewise, a 1 MiB write to /dev/null
 * takes all of it; and readv of several buffers from /dev/zero fills
 * every one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)
#define MIB (1 << 20)

int main(void) {
    char *buf = malloc(MIB);
    CHECK(buf);
    const char *devs[] = { "/dev/zero", "/dev/urandom" };
    for (int i = 0; i < 2; i++) {
        int fd = open(devs[i], O_RDONLY);
        CHECK(fd >= 0);
        for (int round = 0; round < 4; round++) {
            ssize_t r = read(fd, buf, MIB);
            printf("%s read %d: %zd\n", devs[i], round, r);
        }
        struct iovec v[3] = { { buf, 1000 }, { buf + 1000, 300000 }, { buf + 301000, 700000 } };
        printf("%s readv: %zd\n", devs[i], readv(fd, v, 3));
        close(fd);
    }
    int null = open("/dev/null", O_WRONLY);
    CHECK(null >= 0);
    printf("/dev/null write: %zd\n", write(null, buf, MIB));
    close(null);
    return 0;
}
