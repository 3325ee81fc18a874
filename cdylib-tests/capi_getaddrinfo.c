/* Cooperation proof, getaddrinfo: 20 greenlets resolve "localhost" with the
 * plain blocking getaddrinfo at once. With the default thread resolver each
 * call parks only its greenlet while a pool thread resolves, so all 20 are
 * inside getaddrinfo together (one after another, never more than one
 * would be); every answer is 127.0.0.1 (from /etc/hosts: no DNS traffic).
 * Needs the preload's DNS hooks. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <sys/socket.h>

#include "capi_util.h"

static void *resolve(void *arg) {
    (void)arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    enter_call();
    int r = getaddrinfo("localhost", "80", &hints, &res);
    leave_call();
    CHECK(r == 0);
    CHECK(res != NULL && res->ai_family == AF_INET);
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    CHECK(ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK);
    CHECK(ntohs(sin->sin_port) == 80);
    freeaddrinfo(res);
    return (void *)1;
}

int main(void) {
    enum { N = 20 };
    greenrt_t g[N];
    uint64_t sw0 = greenrt_switch_count();
    for (int i = 0; i < N; i++)
        CHECK((g[i] = greenrt_spawn(resolve, NULL)) != 0);
    for (int i = 0; i < N; i++) {
        void *res;
        CHECK(greenrt_join(g[i], -1, &res) == 0 && res == (void *)1);
    }
    uint64_t switches = greenrt_switch_count() - sw0;
    printf("%d greenlets x getaddrinfo(\"localhost\"): %d inside at once, %llu switches\n", N,
           max_inflight, (unsigned long long)switches);
    const char *resolver = getenv("GREENRT_RESOLVER");
    if (resolver == NULL || strcmp(resolver, "thread") == 0) {
        CHECK(max_inflight == N);
        CHECK(switches >= N);
    }
    return 0;
}
