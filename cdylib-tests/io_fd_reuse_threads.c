/* A number closed by one thread and reused for a new pipe: another
 * thread that had waited on the old fd under that number, and now reads
 * the new one, must wake when the new pipe gets data (the hub of the
 * reading thread must not take the number for registered already). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static int rfd, wfd;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase = 0;
static void pause_ms(int ms) { struct timespec ts = {0, ms * 1000000L}; nanosleep(&ts, NULL); }
static void *reader(void *a) {
    char c;
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&m); while (phase != i * 2 + 1) pthread_cond_wait(&cv, &m); int fd = rfd; pthread_mutex_unlock(&m);
        ssize_t n = read(fd, &c, 1);
        printf("round %d: fd %d read %zd '%c'\n", i, fd, n, c); fflush(stdout);
        pthread_mutex_lock(&m); phase++; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&m);
    }
    return NULL;
}
int main(void) {
    pthread_t t; pthread_create(&t, NULL, reader, NULL);
    for (int i = 0; i < 2; i++) {
        int p[2]; pipe(p);
        pthread_mutex_lock(&m); rfd = p[0]; wfd = p[1]; phase = i * 2 + 1; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&m);
        pause_ms(50);
        write(p[1], "ab" + i, 1);
        pthread_mutex_lock(&m); while (phase != i * 2 + 2) pthread_cond_wait(&cv, &m); pthread_mutex_unlock(&m);
        close(p[0]); close(p[1]);
    }
    pthread_join(t, NULL);
    return 0;
}
