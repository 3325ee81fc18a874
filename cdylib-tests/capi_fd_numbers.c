/* A greenlet parked in a multi-fd poll holds a per-call epoll fd high up;
 * another greenlet of the same thread dup2s onto every number there. The
 * runtime moves its fds out of the way, and the parked poll goes on: it
 * returns when the pipe gets data, with the right revents. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "capi_util.h"

static int p1[2], p2[2];
static int polled = -2;
static short revents2 = 0;

static void *poller(void *arg) {
    (void)arg;
    struct pollfd fds[2] = {{p1[0], POLLIN, 0}, {p2[0], POLLIN, 0}};
    polled = poll(fds, 2, 5000);
    revents2 = fds[1].revents;
    return NULL;
}

int main(void) {
    CHECK(pipe(p1) == 0 && pipe(p2) == 0);
    greenrt_t g = greenrt_spawn(poller, NULL);
    CHECK(g != 0);
    CHECK(greenrt_sleep_ms(20) == 0); /* the poller is parked */
    int src = open("/dev/null", O_RDONLY);
    for (int n = 1020; n < 1100; n++) CHECK(dup2(src, n) == n);
    CHECK(greenrt_sleep_ms(20) == 0);
    CHECK(polled == -2); /* still waiting */
    CHECK(write(p2[1], "x", 1) == 1);
    CHECK(greenrt_join(g, 5000, NULL) == 0);
    CHECK(polled == 1);
    CHECK(revents2 == POLLIN);
    for (int n = 1020; n < 1100; n++) close(n);
    printf("ok\n");
    return 0;
}
