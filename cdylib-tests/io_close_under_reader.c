/* Another thread closes (or dup2s over) the fd a thread is blocked
 * reading: natively the reader keeps the open file, so the writer's next
 * write succeeds and the reader gets the bytes. The same must hold when
 * the read is parked in a hub. Likewise for a blocked connect. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

struct reader {
    int fd;
    char buf[16];
    ssize_t n;
    int err;
};

static void *read_one(void *arg) {
    struct reader *r = arg;
    r->n = read(r->fd, r->buf, sizeof r->buf - 1);
    r->err = r->n < 0 ? errno : 0;
    return NULL;
}

/* `how`: 0 close, 1 dup2 /dev/null over it, 2 close_range over it. */
static void case_pipe(const char *what, int how) {
    int p[2];
    if (pipe(p) != 0) return;
    struct reader r = {p[0], {0}, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_one, &r);
    pause_ms(50);
    if (how == 0) {
        close(p[0]);
    } else if (how == 1) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, p[0]);
        close(null);
    } else {
        close_range(p[0], p[0], 0);
    }
    pause_ms(20);
    errno = 0;
    ssize_t w = write(p[1], "data", 4);
    int werr = errno;
    pthread_join(t, NULL);
    printf("%s: write %zd (%s), read %zd '%s' (%s)\n", what, w, w < 0 ? strerror(werr) : "ok", r.n, r.buf,
           r.n < 0 ? strerror(r.err) : "ok");
    if (how == 1) close(p[0]);
    close(p[1]);
}

static void *peek_all(void *arg) {
    struct reader *r = arg;
    r->n = recv(r->fd, r->buf, 4, MSG_PEEK | MSG_WAITALL);
    return NULL;
}

static void *recv_mmsg(void *arg) {
    struct reader *r = arg;
    struct iovec v = {r->buf, sizeof r->buf - 1};
    struct mmsghdr m = {{NULL, 0, &v, 1, NULL, 0, 0}, 0};
    int n = recvmmsg(r->fd, &m, 1, 0, NULL);
    r->n = n == 1 ? (ssize_t)m.msg_len : -1;
    return NULL;
}

/* `how`: 0 read, 1 recv(MSG_PEEK | MSG_WAITALL), 2 recvmmsg. */
static void case_socket(const char *what, int how, int type) {
    int sv[2];
    if (socketpair(AF_UNIX, type, 0, sv) != 0) return;
    struct reader r = {sv[0], {0}, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, how == 0 ? read_one : how == 1 ? peek_all : recv_mmsg, &r);
    pause_ms(50);
    close(sv[0]);
    pause_ms(20);
    ssize_t w = send(sv[1], "sock", 4, MSG_NOSIGNAL);
    pthread_join(t, NULL);
    printf("%s: send %zd, read %zd '%s'\n", what, w, r.n, r.buf);
    close(sv[1]);
}

/* A terminal (a pty's slave end): the level-triggered path. */
static void case_tty(void) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) return;
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (slave < 0) return;
    struct reader r = {slave, {0}, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_one, &r);
    pause_ms(50);
    close(slave);
    pause_ms(20);
    ssize_t w = write(master, "tty\n", 4);
    pthread_join(t, NULL);
    printf("tty closed under the reader: write %zd, read %zd '%.3s'\n", w, r.n, r.buf);
    close(master);
}

struct connector {
    int fd;
    struct sockaddr_in to;
    int r;
};

static void *connect_one(void *arg) {
    struct connector *c = arg;
    c->r = connect(c->fd, (struct sockaddr *)&c->to, sizeof c->to);
    return NULL;
}

/* A connect that waits (the listener's accept queue is full: the SYN is
 * dropped and sent again a second later) while another thread closes
 * its socket; room is made meanwhile, so the retried SYN gets through. */
static void case_connect(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 0) || getsockname(l, (struct sockaddr *)&a, &alen))
        return;
    int fill = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fill, (struct sockaddr *)&a, sizeof a) != 0) return;
    pause_ms(20);
    struct connector c = {socket(AF_INET, SOCK_STREAM, 0), a, -2};
    pthread_t t;
    pthread_create(&t, NULL, connect_one, &c);
    pause_ms(100);
    close(c.fd);
    int got = accept(l, NULL, NULL); /* room for the retried SYN */
    pthread_join(t, NULL);
    printf("socket closed under a waiting connect: connect %d\n", c.r);
    close(got);
    close(fill);
    close(l);
}

int main(void) {
    case_pipe("pipe closed under the reader", 0);
    case_pipe("pipe replaced by dup2 under the reader", 1);
    case_pipe("pipe closed by close_range under the reader", 2);
    case_socket("socket closed under the reader", 0, SOCK_STREAM);
    case_socket("socket closed under MSG_PEEK|MSG_WAITALL", 1, SOCK_STREAM);
    case_socket("datagram socket closed under recvmmsg", 2, SOCK_DGRAM);
    case_tty();
    case_connect();
    /* The numbers were freed: the next open gets the lowest again. */
    int fd = open("/dev/null", O_RDONLY);
    printf("next open: %d\n", fd);
    return 0;
}
