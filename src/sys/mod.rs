//! Operating-system mechanisms behind the hub: pollers, the cross-thread
//! waker, and the one way to turn a libc result into `io::Result`.
//!
//! # The poller contract
//!
//! Every backend implements [`Poller`]. The hub tells the backend the
//! *current* interest of each fd whenever the set of greenlets waiting on it
//! changes ([`Poller::set_interest`]); a backend may ignore changes that it
//! does not need (epoll registers each fd once, edge-triggered, for both
//! directions, so that a wait costs no syscall). [`Poller::wait`] blocks until
//! at least one fd is ready or the timeout passes and reports readiness as
//! [`Event`]s. Spurious readiness is allowed: callers always retry the
//! operation and wait again on `EAGAIN`. [`Poller::forget`] drops every trace
//! of an fd before it is closed, so that a reused fd number never inherits a
//! stale registration.
//!
//! A kqueue backend would be one more file beside these, chosen by `cfg`.

pub(crate) mod epoll;
pub(crate) mod fd_epochs;
pub(crate) mod fd_gate;
pub(crate) mod fds;
pub(crate) mod poll;
pub(crate) mod signo;
pub(crate) mod waker;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Turns a libc call's `-1`/errno convention into `io::Result`.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: each call site passes arguments that satisfy the libc
        // function's contract; the macro only checks the result.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Like [`syscall!`], but enters the kernel directly with `syscall(2)`,
/// never through libc's (possibly hooked) wrapper: the runtime's own
/// waits, wakeups and closes must not re-enter the `LD_PRELOAD` hooks
/// (DESIGN rule 5), whichever copy of the runtime installed them.
macro_rules! raw_syscall {
    ($nr:ident $(, $arg:expr)* $(,)?) => {{
        // SAFETY: each call site passes arguments that satisfy the system
        // call's contract; the macro only checks the result.
        let res = unsafe { libc::syscall(libc::$nr $(, $arg)*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use raw_syscall;

/// Closes an fd the runtime owns, bypassing any hook.
pub(crate) fn close_raw(fd: RawFd) {
    let _ = raw_syscall!(SYS_close, fd);
}

/// `ppoll` on a set of pollfds with a millisecond timeout (-1: forever),
/// bypassing any hook (the runtime's own poll).
pub(crate) fn ppoll_raw(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    let ts;
    let tsp = if timeout_ms < 0 {
        std::ptr::null()
    } else {
        ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as libc::time_t,
            tv_nsec: ((timeout_ms % 1000) as libc::c_long) * 1_000_000,
        };
        &ts as *const libc::timespec
    };
    let n = raw_syscall!(
        SYS_ppoll,
        fds.as_mut_ptr(),
        fds.len() as libc::nfds_t,
        tsp,
        std::ptr::null::<libc::sigset_t>(),
        0usize
    )?;
    Ok(n as usize)
}

/// Which directions a waiter cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    /// Wake when the fd is readable (or hung up / in error).
    pub readable: bool,
    /// Wake when the fd is writable (or hung up / in error).
    pub writable: bool,
}

impl Interest {
    /// Interest in reading only.
    pub const READ: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Interest in writing only.
    pub const WRITE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Interest in both directions.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
    /// No interest.
    pub const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };

    /// True when neither direction is wanted.
    pub fn is_empty(self) -> bool {
        !self.readable && !self.writable
    }

    /// The `poll(2)` events that mean this interest, as every poller reads
    /// readiness (urgent data and a peer's shutdown count as readable).
    pub(crate) fn poll_events(self) -> i16 {
        let mut events = 0;
        if self.readable {
            events |= libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP;
        }
        if self.writable {
            events |= libc::POLLOUT;
        }
        events
    }
}

/// Whether `fd` is ready for `interest` now: a zero-timeout `ppoll` made
/// with a raw syscall (never through the preload's poll hook). True when
/// ready, hung up or in error; `EBADF` for an fd that is not open. The
/// one answer to "is this fd ready now" for the level-triggered waits
/// built on the hubs' edge-triggered registrations.
pub(crate) fn ready_now(fd: RawFd, interest: Interest) -> io::Result<bool> {
    let mut p = [libc::pollfd {
        fd,
        events: interest.poll_events(),
        revents: 0,
    }];
    let n = loop {
        match ppoll_raw(&mut p, 0) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    if n == 1 && p[0].revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(n == 1)
}

/// Readiness reported by a poller for one fd.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub fd: RawFd,
    pub readable: bool,
    pub writable: bool,
}

/// The [`Event::fd`] that reports the hub's waker (see
/// [`Poller::watch_waker`]), whatever number the waker has.
pub(crate) const WAKER_TOKEN: RawFd = -2;

/// The contract every poller backend meets (see the module docs).
pub(crate) trait Poller {
    /// Declares the interest currently wanted for `fd`. `Interest::NONE`
    /// means nobody waits now; the fd may stay registered.
    fn set_interest(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;
    /// Removes every trace of `fd` (call before the fd is closed).
    fn forget(&mut self, fd: RawFd);
    /// Forgets what the backend remembers about `fd` without touching the
    /// kernel, so that the next `set_interest` registers it afresh: for
    /// raw fds the program may have closed and reopened behind our back.
    fn revalidate(&mut self, _fd: RawFd) {}
    /// Waits for readiness; `None` waits without limit. A signal handler
    /// that interrupts the wait is reported as `ErrorKind::Interrupted`
    /// (with whatever `events` were collected: none).
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
    /// Watches the hub's waker for readability from now on, reported as
    /// an event on [`WAKER_TOKEN`]: by the waker's current number at each
    /// wait, so that it may move (`fds::relocate`).
    fn watch_waker(&mut self, waker: fds::RuntimeFdRef) -> io::Result<()>;
    /// Gives up the backend's own fd without closing it: the program
    /// closed it behind the hooks' back, and the number may be its file
    /// now. The backend is dropped next.
    fn abandon(&mut self) {}
    /// The backend's name, as accepted by `GREENRT_BACKEND`.
    fn name(&self) -> &'static str;
}

/// Converts a timeout to the milliseconds that epoll_wait and poll take,
/// rounding up so that a timer never fires early.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// The poller backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Linux epoll, edge-triggered (the default).
    Epoll,
    /// poll(2), the portable fallback.
    Poll,
}

/// Creates the poller named by the configuration.
pub(crate) fn new_poller(backend: Backend) -> io::Result<Box<dyn Poller>> {
    Ok(match backend {
        Backend::Epoll => Box::new(epoll::Epoll::new()?),
        Backend::Poll => Box::new(poll::Poll::new()),
    })
}
