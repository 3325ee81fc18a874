/* Datagrams and message calls with plain blocking calls: a UDP echo thread
 * on 127.0.0.1 answers sendto/recvfrom, sendmsg/recvmsg and
 * sendmmsg/recvmmsg (blocking recvmmsg waits for all vlen messages, or one
 * with MSG_WAITFORONE); every datagram comes back byte-exact with its
 * boundaries. Then over an AF_UNIX stream pair: writev/readv, sendmsg with
 * SCM_RIGHTS (the passed fd works), recvmsg with MSG_WAITALL gathering
 * several writes, and __recv_chk / __recvfrom_chk under _FORTIFY_SOURCE. */
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
#include <sys/uio.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static int srv;

static void *echo(void *arg) {
    (void)arg;
    char buf[70000];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        CHECK(r >= 0);
        if (r == 4 && memcmp(buf, "quit", 4) == 0) return NULL;
        CHECK(sendto(srv, buf, r, 0, (struct sockaddr *)&from, fl) == r);
    }
}

static void fill(char *b, size_t n, int seed) {
    for (size_t i = 0; i < n; i++) b[i] = (char)(seed + i * 5);
}

int main(void) {
    srv = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(srv, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(srv, (struct sockaddr *)&a, &l) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, echo, NULL) == 0);

    int c = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    static char out[65000], in[65536];
    int ok = 1;
    size_t sizes[] = { 1, 100, 1472, 9000, 65000 };
    for (int i = 0; i < 5; i++) {
        fill(out, sizes[i], i);
        CHECK(send(c, out, sizes[i], 0) == (ssize_t)sizes[i]);
        ssize_t r = recv(c, in, sizeof in, 0);
        if (r != (ssize_t)sizes[i] || memcmp(in, out, r) != 0) ok = 0;
    }
    printf("udp send/recv 5 sizes byte-exact: %s\n", ok ? "yes" : "no");

    /* sendmsg / recvmsg with two iovecs each, and a truncated receive. */
    char h[3] = "abc", body[5] = "defgh";
    struct iovec ov[2] = { { h, 3 }, { body, 5 } };
    struct msghdr m = { .msg_iov = ov, .msg_iovlen = 2 };
    CHECK(sendmsg(c, &m, 0) == 8);
    char r1[2], r2[4];
    struct iovec iv[2] = { { r1, 2 }, { r2, 4 } };
    struct msghdr rm = { .msg_iov = iv, .msg_iovlen = 2 };
    ssize_t r = recvmsg(c, &rm, 0);
    printf("recvmsg: %zd bytes \"%.2s%.4s\" truncated=%d\n", r, r1, r2, !!(rm.msg_flags & MSG_TRUNC));

    /* sendmmsg 4 datagrams; blocking recvmmsg waits for all 4. */
    char d[4][8];
    struct iovec dv[4];
    struct mmsghdr mm[4];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 4; i++) {
        snprintf(d[i], sizeof d[i], "msg-%d", i);
        dv[i].iov_base = d[i];
        dv[i].iov_len = 6;
        mm[i].msg_hdr.msg_iov = &dv[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    printf("sendmmsg: %d\n", sendmmsg(c, mm, 4, 0));
    char rd[4][16];
    struct iovec rv[4];
    struct mmsghdr rmm[4];
    memset(rmm, 0, sizeof rmm);
    for (int i = 0; i < 4; i++) {
        rv[i].iov_base = rd[i];
        rv[i].iov_len = sizeof rd[i];
        rmm[i].msg_hdr.msg_iov = &rv[i];
        rmm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(c, rmm, 4, 0, NULL);
    printf("recvmmsg: %d:", n);
    for (int i = 0; i < n; i++) printf(" %.*s", (int)rmm[i].msg_len, rd[i]);
    printf("\n");
    /* MSG_WAITFORONE: returns after the first (one more is in flight). */
    CHECK(send(c, "solo", 4, 0) == 4);
    n = recvmmsg(c, rmm, 4, MSG_WAITFORONE, NULL);
    printf("recvmmsg WAITFORONE: %d: %.*s\n", n, (int)rmm[0].msg_len, rd[0]);

    CHECK(send(c, "quit", 4, 0) == 4);
    pthread_join(t, NULL);
    close(c);
    close(srv);

    /* AF_UNIX stream: writev/readv, SCM_RIGHTS, MSG_WAITALL. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char x1[] = "hello ", x2[] = "world";
    struct iovec wv[2] = { { x1, 6 }, { x2, 5 } };
    printf("writev: %zd\n", writev(sv[0], wv, 2));
    char y1[4], y2[20];
    struct iovec yv[2] = { { y1, 4 }, { y2, 20 } };
    r = readv(sv[1], yv, 2);
    printf("readv: %zd \"%.4s%.*s\"\n", r, y1, (int)(r - 4), y2);

    int p[2];
    CHECK(pipe(p) == 0);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec one = { "F", 1 };
    struct msghdr fm = { .msg_iov = &one, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&fm);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    printf("sendmsg with SCM_RIGHTS: %zd\n", sendmsg(sv[0], &fm, 0));
    char f;
    char rcb[CMSG_SPACE(sizeof(int))];
    struct iovec ri = { &f, 1 };
    struct msghdr gm = { .msg_iov = &ri, .msg_iovlen = 1, .msg_control = rcb, .msg_controllen = sizeof rcb };
    r = recvmsg(sv[1], &gm, 0);
    struct cmsghdr *gc = CMSG_FIRSTHDR(&gm);
    int passed = -1;
    if (gc && gc->cmsg_type == SCM_RIGHTS) memcpy(&passed, CMSG_DATA(gc), sizeof(int));
    printf("recvmsg: %zd '%c' got an fd: %s\n", r, f, passed >= 0 ? "yes" : "no");
    CHECK(write(passed, "via", 3) == 3);
    char via[3];
    CHECK(read(p[0], via, 3) == 3);
    printf("passed fd writes into the pipe: %.3s\n", via);

    /* MSG_WAITALL gathers three separate writes into one receive. */
    CHECK(write(sv[0], "ab", 2) == 2);
    CHECK(write(sv[0], "cd", 2) == 2);
    CHECK(write(sv[0], "ef", 2) == 2);
    char w6[6];
    struct iovec w6v[2] = { { w6, 1 }, { w6 + 1, 5 } };
    struct msghdr wm = { .msg_iov = w6v, .msg_iovlen = 2 };
    r = recvmsg(sv[1], &wm, MSG_WAITALL);
    printf("recvmsg MSG_WAITALL: %zd \"%.6s\"\n", r, w6);
    CHECK(write(sv[0], "0123456789", 10) == 10);
    char fb[10];
    r = recv(sv[1], fb, sizeof fb, MSG_WAITALL);
    printf("recv MSG_WAITALL: %zd \"%.10s\"\n", r, fb);
    CHECK(write(sv[0], "tail", 4) == 4);
    r = recvfrom(sv[1], fb, sizeof fb, 0, NULL, NULL);
    printf("recvfrom: %zd \"%.*s\"\n", r, (int)r, fb);
    close(sv[0]);
    errno = 0;
    r = recv(sv[1], fb, sizeof fb, 0);
    printf("recv after peer close: %zd %s\n", r, errno ? strerrorname_np(errno) : "0");
    return 0;
}
