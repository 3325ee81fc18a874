/* Cooperation proof, connect: a listener whose accept queue is full drops
 * incoming SYNs, so a plain blocking connect to it waits for the client's
 * SYN retransmission (about 1 s). 8 greenlets connect to such a listener
 * while a ticker greenlet counts 20 ms ticks and, after 300 ms, raises the
 * listener's backlog so that the retransmitted SYNs are accepted. All 8
 * connects succeed, all were waiting at once, and the ticker kept ticking
 * meanwhile. Without cooperation the first connect would hold the thread
 * and the backlog would never be raised: it would time out after minutes.
 * Needs the preload's net hooks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capi_util.h"

enum { N = 8 };

static struct sockaddr_in addr;
static int lfd;
static int ticks, ticks_during_connect, done;

static void *connector(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    enter_call();
    int r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    leave_call();
    CHECK(r == 0);
    if (ticks_during_connect == 0)
        ticks_during_connect = ticks;
    done++;
    close(fd);
    return (void *)1;
}

static void *ticker(void *arg) {
    (void)arg;
    double t0 = now_ms();
    int raised = 0;
    while (done < N && now_ms() - t0 < 20000) {
        CHECK(greenrt_sleep_ms(20) == 0);
        ticks++;
        if (!raised && now_ms() - t0 >= 300) {
            CHECK(listen(lfd, 128) == 0);
            raised = 1;
        }
    }
    return (void *)1;
}

int main(void) {
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&addr, sizeof addr) == 0);
    socklen_t alen = sizeof addr;
    CHECK(getsockname(lfd, (struct sockaddr *)&addr, &alen) == 0);
    /* Backlog 0: one queued connection fills the accept queue. */
    CHECK(listen(lfd, 0) == 0);
    int filler = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(filler >= 0);
    CHECK(connect(filler, (struct sockaddr *)&addr, sizeof addr) == 0);

    greenrt_t g[N + 1];
    uint64_t sw0 = greenrt_switch_count();
    double t0 = now_ms();
    CHECK((g[N] = greenrt_spawn(ticker, NULL)) != 0);
    for (int i = 0; i < N; i++)
        CHECK((g[i] = greenrt_spawn(connector, NULL)) != 0);
    for (int i = 0; i <= N; i++) {
        void *res;
        CHECK(greenrt_join(g[i], -1, &res) == 0 && res == (void *)1);
    }
    double wall = now_ms() - t0;
    uint64_t switches = greenrt_switch_count() - sw0;
    printf("%d greenlets x connect to a full accept queue: %.0f ms wall, %d connecting at once, "
           "%d ticks before the first connect returned, %llu switches\n",
           N, wall, max_inflight, ticks_during_connect, (unsigned long long)switches);
    CHECK(done == N);
    CHECK(max_inflight == N);
    CHECK(ticks_during_connect >= 10);
    CHECK(wall < 10000);
    CHECK(switches >= N);
    close(filler);
    close(lfd);
    return 0;
}
