//! The bottom of the preload: the calling thread's errno, and a raw write
//! to stderr that never goes through a hook nor allocates (every layer
//! reports through it, from the constructor on).

/// Writes to fd 2 with a raw syscall (never through a hook, never
/// allocating).
pub fn write_stderr(b: &[u8]) {
    // SAFETY: writes `b.len()` bytes from a valid slice to fd 2.
    unsafe { libc::syscall(libc::SYS_write, 2, b.as_ptr(), b.len()) };
}

/// The calling thread's errno.
#[inline]
pub fn errno() -> i32 {
    // SAFETY: errno is thread-local; reading it is always fine.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's errno.
#[inline]
pub fn set_errno(e: i32) {
    // SAFETY: errno is thread-local; writing it is always fine.
    unsafe { *libc::__errno_location() = e };
}
