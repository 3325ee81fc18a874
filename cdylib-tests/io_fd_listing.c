/* A program whose calls never block lists exactly its own fds (fstat over
 * every number, as CPython's fd_status.py does): the runtime makes a
 * thread's hub, and with it the hub's fds, at the first call that has to
 * wait, not at the first hooked call. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    int p[2];
    char c = 0;
    if (pipe(p) != 0) return 1;
    write(p[1], "x", 1);
    read(p[0], &c, 1);
    struct stat st;
    printf("open fds:");
    for (int fd = 0; fd < 4096; fd++)
        if (fstat(fd, &st) == 0) printf(" %d", fd);
    printf("\nread '%c'\n", c);
    return 0;
}
