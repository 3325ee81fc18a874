/* Process-directed signals land where they would without the preload:
 * the runtime's own threads (the thread pool that a cooperative
 * getaddrinfo starts, ...) block every signal. So a signal the main thread
 * blocks and waits for with sigtimedwait is taken there (its handler never
 * runs on another thread), and a SIGCHLD read through a signalfd is never
 * swallowed by a thread that does not block it. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c, strerrorname_np(errno)); exit(1); } } while (0)

static volatile sig_atomic_t handled;

/* True if every thread of this process other than the calling one blocks
 * every signal a thread can block (all but SIGKILL, SIGSTOP and glibc's
 * own 32 and 33), by /proc/self/task/N/status. Without the preload there
 * is no other thread: true. */
static int other_threads_block_everything(void) {
    unsigned long long want = ~0ULL;
    int never[] = { SIGKILL, SIGSTOP, 32, 33 };
    for (int i = 0; i < 4; i++) want &= ~(1ULL << (never[i] - 1));
    DIR *d = opendir("/proc/self/task");
    CHECK(d);
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d))) {
        int tid = atoi(e->d_name);
        if (tid <= 0 || tid == gettid()) continue;
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* exited meanwhile */
        while (fgets(line, sizeof line, f)) {
            unsigned long long blk;
            if (sscanf(line, "SigBlk: %llx", &blk) == 1 && (blk & want) != want) {
                fprintf(stderr, "thread %d blocks only %llx\n", tid, blk);
                ok = 0;
            }
        }
        fclose(f);
    }
    closedir(d);
    return ok;
}

static void on_usr1(int sig) { (void)sig; handled++; }

int main(void) {
    alarm(20);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    struct sigaction sa = { .sa_handler = on_usr1 };
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

    /* Under GREENRT_HOOKS=always this runs on the runtime's thread pool,
     * whose worker then stays alive for a while. */
    struct addrinfo *res;
    CHECK(getaddrinfo("localhost", "80", NULL, &res) == 0);
    freeaddrinfo(res);
    printf("every other thread blocks every signal: %s\n", other_threads_block_everything() ? "yes" : "no");

    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    int taken = 0;
    for (int i = 0; i < 20; i++) {
        CHECK(kill(getpid(), SIGUSR1) == 0);
        struct timespec t = { 2, 0 };
        if (sigtimedwait(&usr1, NULL, &t) == SIGUSR1) taken++;
    }
    printf("sigtimedwait took SIGUSR1 %d of 20 times; the handler ran %d times\n", taken, (int)handled);

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
    CHECK(sfd >= 0);
    int seen = 0;
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(0);
        struct pollfd p = { sfd, POLLIN, 0 };
        if (poll(&p, 1, 2000) == 1) {
            struct signalfd_siginfo si;
            CHECK(read(sfd, &si, sizeof si) == sizeof si);
            if (si.ssi_signo == SIGCHLD) seen++;
        }
        CHECK(waitpid(pid, NULL, 0) == pid);
    }
    printf("signalfd saw SIGCHLD for %d of 20 children\n", seen);
    alarm(0);
    return 0;
}
