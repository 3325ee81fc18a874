/* Name resolution with plain blocking calls: getaddrinfo for a good name
 * ("localhost", from /etc/hosts), a numeric host, a NULL node with
 * AI_PASSIVE, a service name, bad names in the reserved .invalid TLD (which
 * must fail), bad arguments; gethostbyname and gethostbyname_r, good and
 * bad; and several threads resolving at once. Output is the same with and
 * without the preload. Addresses are printed sorted, so the test does not
 * depend on the resolver's order; failures print their EAI_ / h_errno
 * names.
 *
 * No DNS traffic: the bad names cannot be put in a DNS query at all (a
 * label longer than 63 bytes, an empty label), so the resolver refuses
 * them without asking a nameserver, and the answer (EAI_NONAME) does not
 * depend on the network the test runs in. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *eai_name(int e) {
    switch (e) {
    case 0: return "0";
    case EAI_BADFLAGS: return "EAI_BADFLAGS";
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
    case EAI_SERVICE: return "EAI_SERVICE";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_SYSTEM: return "EAI_SYSTEM";
    case EAI_NODATA: return "EAI_NODATA";
    case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
    default: return "EAI_?";
    }
}

/* A label of 70 bytes: longer than DNS allows (63). */
#define LONG_LABEL "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const char *herr_name(int e) {
    switch (e) {
    case 0: return "0";
    case HOST_NOT_FOUND: return "HOST_NOT_FOUND";
    case TRY_AGAIN: return "TRY_AGAIN";
    case NO_RECOVERY: return "NO_RECOVERY";
    case NO_DATA: return "NO_DATA";
    default: return "?";
    }
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Prints the sorted "family socktype address port" lines of a result. */
static void print_list(const char *what, struct addrinfo *res) {
    char *lines[64];
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < 64; ai = ai->ai_next) {
        char host[INET6_ADDRSTRLEN] = "?", line[160];
        int port = -1;
        if (ai->ai_family == AF_INET) {
            struct sockaddr_in *s = (struct sockaddr_in *)ai->ai_addr;
            inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
            port = ntohs(s->sin_port);
        } else if (ai->ai_family == AF_INET6) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)ai->ai_addr;
            inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
            port = ntohs(s->sin6_port);
        }
        snprintf(line, sizeof line, "  %s %s %s %d", ai->ai_family == AF_INET ? "inet" : "inet6",
                 ai->ai_socktype == SOCK_STREAM ? "stream" : ai->ai_socktype == SOCK_DGRAM ? "dgram" : "raw", host,
                 port);
        lines[n++] = strdup(line);
    }
    qsort(lines, n, sizeof *lines, cmp);
    printf("%s: %d entries\n", what, n);
    for (int i = 0; i < n; i++) {
        printf("%s\n", lines[i]);
        free(lines[i]);
    }
}

static int gai(const char *what, const char *node, const char *service, int family, int socktype, int flags) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_flags = flags;
    int r = getaddrinfo(node, service, &hints, &res);
    if (r == 0) {
        print_list(what, res);
        if (flags & AI_CANONNAME)
            printf("  canonname set=%d\n", res->ai_canonname != NULL);
        freeaddrinfo(res);
    } else {
        printf("%s: %s\n", what, eai_name(r));
    }
    return r;
}

static void *resolver_thread(void *arg) {
    long ok = 0;
    for (int i = 0; i < 20; i++) {
        struct addrinfo hints, *res;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo("localhost", "80", &hints, &res) == 0) {
            struct sockaddr_in *s = (struct sockaddr_in *)res->ai_addr;
            ok += s->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(s->sin_port) == 80;
            freeaddrinfo(res);
        }
    }
    (void)arg;
    return (void *)ok;
}

static void print_hostent(const char *what, struct hostent *h) {
    char addr[INET_ADDRSTRLEN] = "?";
    if (h->h_addr_list[0])
        inet_ntop(h->h_addrtype, h->h_addr_list[0], addr, sizeof addr);
    printf("%s: name=%s type=%s len=%d first=%s\n", what, h->h_name, h->h_addrtype == AF_INET ? "inet" : "?",
           h->h_length, addr);
}

int main(void) {
    gai("localhost stream v4", "localhost", "80", AF_INET, SOCK_STREAM, 0);
    gai("localhost any v4", "localhost", "8080", AF_INET, 0, 0);
    gai("localhost canonname", "localhost", NULL, AF_INET, SOCK_STREAM, AI_CANONNAME);
    gai("numeric v4", "127.0.0.1", "443", AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST);
    gai("numeric v6", "::1", "443", AF_INET6, SOCK_DGRAM, 0);
    gai("passive", NULL, "9000", AF_INET, SOCK_STREAM, AI_PASSIVE);
    gai("service name", "127.0.0.1", "http", AF_INET, SOCK_STREAM, 0);
    gai("numeric service", "127.0.0.1", "12345", AF_INET, SOCK_DGRAM, AI_NUMERICSERV);

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int r = getaddrinfo(LONG_LABEL ".invalid", "80", &hints, &res);
    printf("bad name (long label): %s\n", eai_name(r));
    r = getaddrinfo("empty..label.invalid", NULL, NULL, &res);
    printf("bad name (empty label), null hints: %s\n", eai_name(r));

    gai("bad flags", "localhost", "80", AF_INET, SOCK_STREAM, 0x10000);
    gai("bad family", "localhost", "80", 12345, SOCK_STREAM, 0);
    gai("bad service", "127.0.0.1", "no-such-service-name", AF_INET, SOCK_STREAM, 0);
    gai("numeric host with a name", "localhost", "80", AF_INET, SOCK_STREAM, AI_NUMERICHOST);
    gai("no node, no service", NULL, NULL, AF_INET, SOCK_STREAM, 0);

    /* errno is not checked after a successful getaddrinfo: glibc may leave
     * it changed (as it does without the preload). */

    /* gethostbyname */
    struct hostent *h = gethostbyname("localhost");
    if (h)
        print_hostent("gethostbyname localhost", h);
    else
        printf("gethostbyname localhost: h_errno=%d\n", h_errno);
    h = gethostbyname("127.0.0.1");
    if (h)
        print_hostent("gethostbyname 127.0.0.1", h);
    h_errno = 0;
    h = gethostbyname(LONG_LABEL ".invalid");
    printf("gethostbyname bad: %s h_errno=%s\n", h ? "found?!" : "NULL", herr_name(h_errno));

    /* gethostbyname_r: a buffer that is too small, then a big one. */
    struct hostent he, *result = NULL;
    char small[8], big[4096];
    int herr = 0;
    r = gethostbyname_r("localhost", &he, small, sizeof small, &result, &herr);
    printf("gethostbyname_r small buffer: %s result=%s\n", r ? strerrorname_np(r) : "0", result ? "set" : "NULL");
    r = gethostbyname_r("localhost", &he, big, sizeof big, &result, &herr);
    printf("gethostbyname_r: %d result is he=%d\n", r, result == &he);
    if (result)
        print_hostent("gethostbyname_r localhost", result);
    r = gethostbyname_r("empty..label.invalid", &he, big, sizeof big, &result, &herr);
    printf("gethostbyname_r bad: %d result=%s herr=%s\n", r, result ? "set" : "NULL", herr_name(herr));

    /* Several threads resolving at once. */
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, resolver_thread, NULL);
    long total = 0;
    for (int i = 0; i < 4; i++) {
        void *v;
        pthread_join(th[i], &v);
        total += (long)v;
    }
    printf("4 threads x 20 lookups: %ld ok\n", total);
    return 0;
}
