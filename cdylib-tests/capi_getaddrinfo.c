/* Cooperation proof, getaddrinfo: 20 greenlets resolve "localhost" with the
 * plain blocking getaddrinfo at once. With the default thread resolver each
 * call runs on a pool thread while only its greenlet waits, so several
 * greenlets are inside getaddrinfo together — one after another, never more
 * than one would be. A lookup in /etc/hosts is so quick that the pool may
 * finish a call before its greenlet would even park (then nothing
 * switches), so up to 5 rounds run and one with two or more greenlets inside
 * at once is required (typically the first). Every answer is 127.0.0.1,
 * from /etc/hosts: no DNS traffic. Needs the preload's DNS hooks. */
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
    enum { N = 20, ROUNDS = 5 };
    const char *resolver = getenv("GREENRT_RESOLVER");
    int thread_resolver = resolver == NULL || strcmp(resolver, "thread") == 0;
    int best = 0, rounds = 0;
    uint64_t sw0 = greenrt_switch_count();
    while (rounds < ROUNDS && (best < 2 || rounds == 0)) {
        greenrt_t g[N];
        inflight = max_inflight = 0;
        for (int i = 0; i < N; i++)
            CHECK((g[i] = greenrt_spawn(resolve, NULL)) != 0);
        for (int i = 0; i < N; i++) {
            void *res;
            CHECK(greenrt_join(g[i], -1, &res) == 0 && res == (void *)1);
        }
        if (max_inflight > best)
            best = max_inflight;
        rounds++;
        if (!thread_resolver)
            break;
    }
    uint64_t switches = greenrt_switch_count() - sw0;
    printf("%d greenlets x getaddrinfo(\"localhost\"): %d inside at once (best of %d rounds), "
           "%llu switches\n",
           N, best, rounds, (unsigned long long)switches);
    if (thread_resolver) {
        CHECK(best >= 2);
        CHECK(switches > (uint64_t)N);
    }
    return 0;
}
