/*
 * greenrt.h — the C API of greenrt: explicit greenlets from C, exported by
 * libgreenrt_preload.so (the same library that, loaded with LD_PRELOAD or
 * through `greenrt run`, makes blocking libc calls cooperate).
 *
 * Link with:   cc prog.c -I<prefix>/include -L<prefix>/lib -lgreenrt_preload
 *                 -Wl,-rpath,<prefix>/lib
 *
 * The model is gevent's (and libco's, libgo's): each OS thread has a hub
 * running an event loop; greenlets are stackful coroutines that switch to the
 * hub whenever they would block. Inside a greenlet spawned here, ordinary
 * blocking code — sleep/usleep/nanosleep, connect, read/recv, write/send,
 * accept, poll, getaddrinfo, waitpid, and libraries built on them — parks
 * only that greenlet while the others run. A program that spawns no greenlet
 * behaves exactly as without the library.
 *
 * Thread rules:
 *  - A greenlet runs on the OS thread that spawned it, and only there.
 *  - A handle is meaningful only on that thread: joining or killing it from
 *    another thread fails with ESRCH. Each thread has its own hub, created
 *    the first time it is needed.
 *  - The thread's main flow (main(), or a pthread's start routine) is a
 *    greenlet too: it has a handle (greenrt_current) and runs when every
 *    spawned greenlet is blocked or has yielded.
 *
 * Errors: functions returning int give 0 on success and -1 with errno set on
 * failure; on success errno is left unchanged. greenrt_spawn gives 0 with
 * errno set on failure.
 *
 * Kill: greenrt_kill wakes the target at its next switch point. In C code a
 * kill never unwinds anything: the blocking call the greenlet is in (a hooked
 * libc call or a greenrt_* call) fails with EINTR, and so does every later
 * one, and greenrt_killed() returns 1; the greenlet should clean up and
 * return.
 *
 * Configuration comes from the environment (GREENRT_BACKEND,
 * GREENRT_STACK_SIZE, GREENRT_THREADPOOL_SIZE, GREENRT_LOG, GREENRT_HOOKS,
 * ...; see `greenrt --help`). If the process also links greenrt as a Rust
 * library, the API uses that copy's runtime: one hub per thread, shared.
 */
#ifndef GREENRT_H
#define GREENRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A greenlet handle: non-zero, unique within the process. Valid on the
 * spawning thread until the greenlet has been joined. */
typedef uint64_t greenrt_t;

/* A greenlet's body: its return value is what greenrt_join hands back. */
typedef void *(*greenrt_fn)(void *arg);

/* `events` bits for greenrt_wait_fd (the values of POLLIN and POLLOUT). */
#define GREENRT_READ 0x001
#define GREENRT_WRITE 0x004

/* Spawns fn(arg) in a new greenlet on the calling thread, with the default
 * stack size (GREENRT_STACK_SIZE, 256 KiB unless set; a guard page below it
 * turns an overflow into a clear report, not corruption). The greenlet starts
 * the next time the caller blocks, yields or joins.
 * Returns its handle, or 0 with errno: ENOMEM (no memory or mappings left;
 * see vm.max_map_count), EINVAL. */
greenrt_t greenrt_spawn(greenrt_fn fn, void *arg);

/* Like greenrt_spawn with an explicit stack size in bytes (0: the default;
 * rounded up to whole pages). */
greenrt_t greenrt_spawn_ex(greenrt_fn fn, void *arg, size_t stack_size);

/* Waits at most timeout_ms milliseconds (negative: without limit) for
 * greenlet g to finish, running other greenlets meanwhile, then releases its
 * handle. If result is not NULL, *result receives fn's return value.
 * Returns 0, or -1 with errno:
 *   ETIMEDOUT  still running after timeout_ms; the handle stays valid
 *   ESRCH      unknown handle, already joined, or spawned on another thread
 *   EDEADLK    g is the caller, or nothing could ever finish g
 *   ECANCELED  g was killed before it started, so it has no result; the
 *              handle is released (a greenlet that returns after a kill is
 *              joined normally, with its return value)
 *   EINTR      the caller itself was killed while waiting */
int greenrt_join(greenrt_t g, long timeout_ms, void **result);

/* Kills greenlet g (see "Kill" above) and waits at most timeout_ms for it to
 * finish (negative: without limit; 0: do not wait). The handle stays valid
 * until joined; the join gives g's return value, or fails with ECANCELED if
 * g was killed before it started. Killing the caller itself
 * (greenrt_current()) returns 0 at once without waiting: the caller is now
 * killed, as above, and ends by returning.
 * Returns 0, or -1 with errno: ETIMEDOUT (not finished yet), ESRCH. */
int greenrt_kill(greenrt_t g, long timeout_ms);

/* Sleeps ms milliseconds / ns nanoseconds, letting other greenlets run
 * (plain sleep/usleep/nanosleep do the same inside greenlets under the
 * preload). 0 sleeps like greenrt_yield.
 * Returns 0, or -1 with errno EINTR (the caller was killed). */
int greenrt_sleep_ms(long ms);
int greenrt_sleep_ns(int64_t ns);

/* Lets every other ready greenlet run once, then returns.
 * Returns 0, or -1 with errno EINTR (the caller was killed). */
int greenrt_yield(void);

/* The running greenlet's handle (the thread's main flow has one too, which
 * cannot be joined or killed through this API). */
greenrt_t greenrt_current(void);

/* 1 if the running greenlet has been killed (it should return), else 0. */
int greenrt_killed(void);

/* Waits until fd is ready for `events` (GREENRT_READ | GREENRT_WRITE), at
 * most timeout_ms milliseconds (negative: without limit), running other
 * greenlets meanwhile. Level-triggered: returns at once if fd is ready now.
 * Returns 0, or -1 with errno:
 *   ETIMEDOUT  not ready within timeout_ms
 *   EBADF      fd is not open, or was closed by another greenlet meanwhile
 *   EINVAL     events is 0 or has other bits
 *   EPERM      fd cannot be polled (a regular file)
 *   EINTR      the caller was killed */
int greenrt_wait_fd(int fd, int events, long timeout_ms);

/* Switches the calling thread's hub has made so far. It moves only when
 * greenlets really take turns: tests read it to prove cooperation. */
uint64_t greenrt_switch_count(void);

#ifdef __cplusplus
}
#endif

#endif /* GREENRT_H */
