/*
 * The variadic hooks: fcntl, fcntl64 and ioctl.
 *
 * Rust cannot define a C-variadic function on stable (c_variadic), so these
 * three are defined here and hand their one optional argument to the Rust
 * side (io.rs), which keeps every rule. Every fcntl command's argument is
 * an int or a pointer and every ioctl's a pointer or an int, so reading it
 * as a long / pointer is what glibc's own wrappers do; for commands that
 * take none the value is unused.
 *
 * They are exported from the cdylib through shim.map (build.rs), since
 * rustc's version script exports only Rust symbols.
 */
#include <stdarg.h>

/* Hidden: bound inside this library, so that a second copy of it loaded
 * in the same process (preloaded and linked from different paths) calls
 * its own Rust side, never the first copy's (which would loop). */
__attribute__((visibility("hidden"))) extern int greenrt_preload_fcntl(int fd, int cmd, long arg, int is64);
__attribute__((visibility("hidden"))) extern int greenrt_preload_ioctl(int fd, unsigned long request, void *arg);

__attribute__((visibility("default"))) int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return greenrt_preload_fcntl(fd, cmd, arg, 0);
}

__attribute__((visibility("default"))) int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return greenrt_preload_fcntl(fd, cmd, arg, 1);
}

__attribute__((visibility("default"))) int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return greenrt_preload_ioctl(fd, request, arg);
}
