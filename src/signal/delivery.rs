//! What runs in the signal handler itself, and installing it: the
//! pending counters, the self-pipe's write end, `on_signal` (lock-free
//! atomics and a raw `write(2)` only: async-signal-safe), and the
//! `sigaction` that puts it in place.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::c_int;

use super::disposition;
use super::pending::{Pending, SelfPipe};
use crate::sys::fds::RuntimeFdRef;
use crate::sys::syscall;

/// Deliveries seen by the async-signal handler and not yet dispatched.
pub(super) static PENDING: Pending = Pending::new();

/// The self-pipe as [`Pending`] uses it: poked through [`WAKE`] (the
/// handler's side), drained through `read` (the watcher's side; the
/// handler never drains, and passes `None`).
pub(super) struct SignalPipe {
    pub(super) read: Option<RuntimeFdRef>,
}

impl SelfPipe for SignalPipe {
    fn poke(&self) {
        poke();
    }

    fn drain(&self) {
        if let Some(read) = &self.read {
            read.with(drain);
        }
    }
}

/// Write end of the self-pipe, as `RuntimeFdRef::into_raw` (null until
/// the first handler is installed): its number may move (`fds::relocate`).
pub(super) static WAKE: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// The async-signal handler: counts the delivery and wakes the watcher.
/// Only lock-free atomics and raw `write(2)`; `errno` is preserved.
extern "C" fn on_signal(signum: c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno slot, always
    // valid; saving and restoring it keeps the interrupted code's errno.
    let errno = unsafe { *libc::__errno_location() };
    PENDING.record(signum, &SignalPipe { read: None });
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// `on_signal` as `sigaction` stores it.
pub(super) fn handler_address() -> libc::sighandler_t {
    on_signal as *const () as libc::sighandler_t
}

/// Writes one byte to the self-pipe (errors ignored: a full pipe is
/// already readable, which is all the watcher needs). Async-signal-safe.
pub(super) fn poke() {
    let p = WAKE.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: WAKE only ever holds `RuntimeFdRef::into_raw` values.
    let wake = unsafe { RuntimeFdRef::from_raw(p) };
    let b = 0u8;
    wake.with(|fd| {
        // SAFETY: a raw write(2) of one byte from a valid local buffer; a
        // raw syscall so that no libc hook (the preload's) runs in a
        // signal handler.
        unsafe { libc::syscall(libc::SYS_write, fd, &b as *const u8, 1usize) };
    });
}

/// Empties the (non-blocking) read end of the self-pipe.
fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: a raw read(2) into a valid local buffer of its length.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) };
        if n > 0 {
            continue;
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return; // EAGAIN (empty), or an error nothing can fix here
    }
}

/// Installs `on_signal` for `signum`; returns the disposition it replaced.
pub(super) fn install(signum: c_int) -> io::Result<disposition::Disposition> {
    let prev = disposition::get(signum)?;
    // SAFETY: all-zero is a valid `sigaction`; the fields are set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler_address();
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: initialises the mask in place.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // Through the C library, which supplies the return trampoline
    // (SA_RESTORER) a handler needs.
    syscall!(sigaction(signum, &sa, std::ptr::null_mut()))?;
    Ok(prev)
}
