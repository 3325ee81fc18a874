/* Eight threads blocked in accept() on one listener, then eight clients:
 * every thread gets one connection, and the listener's flags end exactly
 * as the program left them (no O_NONBLOCK left behind for F_GETFL or for
 * a child to inherit), in every one of 20 rounds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)
#define THREADS 8

static int ls;

static void *acceptor(void *arg) {
    (void)arg;
    int c = accept(ls, NULL, NULL);
    CHECK(c >= 0);
    CHECK((fcntl(c, F_GETFL) & O_NONBLOCK) == 0);
    char b;
    CHECK(read(c, &b, 1) == 1);
    close(c);
    return NULL;
}

int main(void) {
    alarm(60);
    ls = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(ls >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(ls, 64) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(ls, (struct sockaddr *)&a, &l) == 0);
    int left_nonblocking = 0;
    for (int round = 0; round < 20; round++) {
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, acceptor, NULL) == 0);
        usleep(20 * 1000); /* let them block in accept */
        int cs[THREADS];
        for (int i = 0; i < THREADS; i++) {
            cs[i] = socket(AF_INET, SOCK_STREAM, 0);
            CHECK(connect(cs[i], (struct sockaddr *)&a, sizeof a) == 0);
            CHECK(write(cs[i], "x", 1) == 1);
        }
        for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
        for (int i = 0; i < THREADS; i++) close(cs[i]);
        if (fcntl(ls, F_GETFL) & O_NONBLOCK) left_nonblocking++;
    }
    printf("rounds that left the listener O_NONBLOCK: %d of 20\n", left_nonblocking);
    close(ls);
    return 0;
}
