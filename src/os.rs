//! Low-level process and fd calls that cooperate with the hub (gevent's
//! `gevent.os`): [`fork`], [`waitpid`], and [`read()`] / [`write()`] on pipes
//! and other non-socket fds.
//!
//! ```
//! use std::time::Duration;
//! // A cooperative pipe: the reader parks while the pipe is empty and the
//! // writer's greenlet runs meanwhile.
//! let (r, w) = greenrt::os::pipe().unwrap();
//! let writer = greenrt::spawn(move || {
//!     greenrt::sleep(Duration::from_millis(10));
//!     greenrt::os::write_all(std::os::fd::AsRawFd::as_raw_fd(&w), b"hello").unwrap();
//! });
//! let mut buf = [0u8; 16];
//! let n = greenrt::os::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut buf).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! writer.join().unwrap();
//! ```
//!
//! # Waiting for a child
//!
//! [`waitpid`] for one known pid opens a *pidfd* (`pidfd_open(2)`, Linux
//! 5.3+) and parks the calling greenlet until the pidfd is readable, which
//! the kernel signals when that process exits; only then does it reap the
//! process with `waitpid(pid, WNOHANG)`. Nothing else is reaped: an exit
//! status is never taken from a `waitpid` the program makes elsewhere.
//!
//! Where pidfds are missing (older kernels, seccomp filters that refuse
//! the call), and for the requests a pidfd cannot express ("any child",
//! a process group, `WUNTRACED`/`WCONTINUED` stop and continue reports),
//! the wait polls `waitpid(..., WNOHANG)` with a growing sleep between
//! polls (1 ms doubling to 50 ms). The one way to be *notified* about "any
//! child" without an fd is `SIGCHLD`, and installing a handler for it would
//! change the program's signal dispositions (and can break code that
//! relies on `SIGCHLD` being default or ignored), which the runtime never
//! does.
//!
//! # Fork
//!
//! [`fork`] is `fork(2)`; what makes it safe for the runtime is a
//! `pthread_atfork` child handler, installed when the first hub is created,
//! that runs after *every* fork (also those the runtime did not make): the
//! child gets a fresh hub and poller on first use, the parent's greenlets
//! never run in the child, and the default thread pool starts afresh.
//! Forked from inside a spawned greenlet, the child carries on in that
//! greenlet as its main context and exits (status 0, or 101 if it panics)
//! when the greenlet returns. As with any fork of a multi-threaded
//! process, only the calling thread exists in the child.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::fds::PrivateFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::hub;
use crate::sys::{syscall, Interest};

// ===== fork =====

/// What [`fork`] returned in this process (nix's `ForkResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkResult {
    /// In the parent; `child` is the new process's pid.
    Parent {
        /// The child's pid.
        child: libc::pid_t,
    },
    /// In the child.
    Child,
}

/// Forks the process (gevent's `gevent.os.fork`, Python's `os.fork`).
///
/// In the child the runtime starts over: the first use of the runtime
/// creates a new hub and poller, the parent's greenlets (ready, sleeping or
/// waiting on fds) never run, and [`threadpool::default_pool`] is a new
/// pool (the parent's worker threads do not exist in the child). If called
/// from a spawned greenlet, the child continues in that greenlet as its
/// main context, and the child process exits when that greenlet returns
/// (status 0; 101 if it panics), because the parent's scheduler it would
/// return to is not in the child. Only the calling thread is copied into
/// the child, so, as after any fork of a multi-threaded program, locks
/// held by other threads at the time stay locked there.
///
/// Reap the child with [`waitpid`] (cooperative) in the parent.
///
/// [`threadpool::default_pool`]: crate::threadpool::default_pool
pub fn fork() -> io::Result<ForkResult> {
    // Make sure the pthread_atfork handler that resets the runtime in the
    // child is installed (it is registered with the first hub).
    hub::with(|_| ());
    let pid = syscall!(fork())?;
    Ok(if pid == 0 {
        ForkResult::Child
    } else {
        ForkResult::Parent { child: pid }
    })
}

// ===== waitpid =====

/// Waits for a child process cooperatively (gevent's `gevent.os.waitpid`,
/// Python's `os.waitpid`): only the calling greenlet blocks.
///
/// `pid` and `flags` mean what they mean to `waitpid(2)`: `pid > 0` is that
/// child, `-1` any child, `0` any child in the caller's process group,
/// `< -1` any child in group `-pid`. Returns the reaped pid and its raw
/// status (decode it with `libc::WIFEXITED` and friends, or
/// `std::os::unix::process::ExitStatusExt::from_raw`). With `WNOHANG` in
/// `flags` it never waits and returns `(0, 0)` when no child is ready, as
/// the system call does.
///
/// For `pid > 0` the wait parks on a pidfd; otherwise (and where pidfds are
/// unavailable, or `WUNTRACED`/`WCONTINUED` is asked for) it polls with a
/// short, growing sleep; see the [module docs](self) for why. Only the
/// process(es) the caller named are reaped. Kill and Timeout interrupt the
/// wait (the child is left unreaped).
pub fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<(libc::pid_t, libc::c_int)> {
    Ok(wait_pid_until(pid, flags, None)?.unwrap_or((0, 0)))
}

/// Like [`waitpid`], giving up after `timeout`: `Ok(None)` if no child it
/// asked for changed state by then (the child is not reaped and keeps
/// running).
pub fn waitpid_timeout(
    pid: libc::pid_t,
    flags: libc::c_int,
    timeout: Duration,
) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    wait_pid_until(pid, flags, Some(Instant::now() + timeout))
}

/// `waitpid(pid, flags | WNOHANG)`, retried on `EINTR`: `None` when nothing
/// is ready.
pub(crate) fn try_waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    let mut status: libc::c_int = 0;
    loop {
        match syscall!(waitpid(pid, &mut status, flags | libc::WNOHANG)) {
            Ok(0) => return Ok(None),
            Ok(p) => return Ok(Some((p, status))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Set once `pidfd_open` turned out to be missing or forbidden here.
static NO_PIDFD: AtomicBool = AtomicBool::new(false);

/// `pidfd_open(pid, 0)`: an fd (always `O_CLOEXEC`) that polls readable
/// once `pid` exits; `Ok(None)` where pidfds are unavailable (`ENOSYS`, or
/// `EPERM` from a seccomp filter).
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<Option<PrivateFd>> {
    if NO_PIDFD.load(Ordering::Relaxed) {
        return Ok(None);
    }
    match PrivateFd::create(|| syscall!(syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint)).map(|fd| fd as RawFd)) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
            NO_PIDFD.store(true, Ordering::Relaxed);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A pidfd that a greenlet waits on, removed from the hub's poller before
/// it is closed.
struct PidFd(PrivateFd);

impl Drop for PidFd {
    fn drop(&mut self) {
        forget_fd(self.0.as_raw_fd());
    }
}

/// Drops `fd` from this thread's poller (if a hub exists) before it is
/// closed, so a reused fd number never inherits the registration.
pub(crate) fn forget_fd(fd: RawFd) {
    hub::try_with_existing(|h| h.forget_fd(fd));
}

/// The waiting behind [`waitpid`], [`waitpid_timeout`] and
/// `process::Child`'s waits: `Ok(None)` when `deadline` passes (or, with
/// `WNOHANG`, when nothing is ready).
pub(crate) fn wait_pid_until(
    pid: libc::pid_t,
    flags: libc::c_int,
    deadline: Option<Instant>,
) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    // Try first: the child may be done already (and WNOHANG means "only try").
    if let Some(r) = try_waitpid(pid, flags)? {
        return Ok(Some(r));
    }
    if flags & libc::WNOHANG != 0 {
        return Ok(None);
    }
    // A pidfd reports exit only, so stop/continue reports need polling.
    let exit_only = flags & (libc::WUNTRACED | libc::WCONTINUED) == 0;
    if pid > 0 && exit_only {
        match pidfd_open(pid) {
            Ok(Some(fd)) => match wait_on_pidfd(&PidFd(fd), pid, flags, deadline) {
                // The poller refused the pidfd: poll below instead.
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                r => return r,
            },
            Ok(None) => {}
            // No such process any more: report what waitpid says (ECHILD,
            // or a status if it was reaped-able after all).
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return try_waitpid(pid, flags),
            Err(e) => return Err(e),
        }
    }
    poll_waitpid(pid, flags, deadline)
}

fn wait_on_pidfd(
    pfd: &PidFd,
    pid: libc::pid_t,
    flags: libc::c_int,
    deadline: Option<Instant>,
) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    loop {
        // Edge-triggered contract: the waitpid above (or in the previous
        // round) was the "try"; wait, then try again.
        match crate::io::wait(pfd.0.as_raw_fd(), Interest::READ, deadline) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(None),
            Err(e) => return Err(e),
        }
        if let Some(r) = try_waitpid(pid, flags)? {
            return Ok(Some(r));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// First and last pause between two polls of `waitpid(WNOHANG)`.
const POLL_MIN: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(50);

fn poll_waitpid(
    pid: libc::pid_t,
    flags: libc::c_int,
    deadline: Option<Instant>,
) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    let mut pause = POLL_MIN;
    loop {
        if let Some(r) = try_waitpid(pid, flags)? {
            return Ok(Some(r));
        }
        let mut nap = pause;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            nap = nap.min(left);
        }
        crate::sleep(nap);
        pause = (pause * 2).min(POLL_MAX);
    }
}

// ===== read / write =====

/// A new pipe `(read end, write end)`, both `O_NONBLOCK` and `O_CLOEXEC`:
/// made for [`read()`] and [`write()`] (gevent's `os.pipe` plus
/// `make_nonblocking`).
///
/// Before closing an end that a greenlet has waited on, call
/// [`cancel_wait`](crate::cancel_wait) on it: the hub's poller keeps an fd
/// it has waited on registered, and a reused fd number must not inherit
/// that registration.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    // SAFETY: pipe2 succeeded and returned two new fds nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets `O_NONBLOCK` on `fd` (gevent's `make_nonblocking`); returns whether
/// it was blocking before. Only do this to fds nobody else (another
/// process, a child you exec) expects to be blocking: the flag belongs to
/// the open file description, which they share.
pub fn make_nonblocking(fd: RawFd) -> io::Result<bool> {
    set_nonblocking(fd, true).map(|was| !was)
}

/// Sets or clears `O_NONBLOCK`; returns whether it was set before.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<bool> {
    let fl = syscall!(fcntl(fd, libc::F_GETFL))?;
    let was = fl & libc::O_NONBLOCK != 0;
    if was != on {
        let new = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        syscall!(fcntl(fd, libc::F_SETFL, new))?;
    }
    Ok(was)
}

/// Reads up to `buf.len()` bytes from `fd`, parking the calling greenlet
/// (not the thread) until data, end of file or an error is there
/// (gevent's `gevent.os.nb_read`; `read(2)`'s contract otherwise).
///
/// Meant for pipes, FIFOs, ttys, eventfds and other non-socket fds
/// (sockets work too; greenrt's socket types are the better fit):
///
/// - a **non-blocking** fd (see [`make_nonblocking`], [`pipe`]) is read
///   directly; on `EAGAIN` the greenlet parks until the fd is readable and
///   the read is retried. This is the recommended setup.
/// - a **blocking** fd is never switched to non-blocking behind the
///   program's back (its flags are shared with every process holding it):
///   the greenlet parks until `poll` reports it readable, then the one
///   read runs. A pipe read then returns what is there without blocking,
///   unless another *process* drains the pipe in between, in which case
///   the read blocks the thread as the plain call would.
/// - **regular files and block devices** are always ready: plain `read(2)`.
///
/// `EINTR` is retried (PEP 475). Kill and Timeout interrupt the wait.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    read_until(fd, buf, None)
}

/// Writes up to `buf.len()` bytes to `fd`, parking the calling greenlet
/// while the fd is full (gevent's `gevent.os.nb_write`); returns how many
/// were written. Same fd rules as [`read`]; on a blocking pipe the write is
/// capped at `PIPE_BUF` (4096) bytes, the amount `poll`'s writability
/// guarantees will not block.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    write_until(fd, buf, None)
}

/// Writes all of `buf` (the blocking `write(2)` loop, cooperatively):
/// parks while the fd is full, returns once every byte is written or on
/// the first error (`WriteZero` if the fd accepts nothing).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// How an fd has to be treated by [`read`] and [`write`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum FdKind {
    /// O_NONBLOCK: try, park on EAGAIN, retry.
    NonBlocking,
    /// Blocking, can be waited for: poll, then one call.
    Blocking,
    /// Regular file, directory or block device: always ready.
    AlwaysReady,
}

fn classify(fd: RawFd) -> io::Result<FdKind> {
    let fl = syscall!(fcntl(fd, libc::F_GETFL))?;
    if fl & libc::O_NONBLOCK != 0 {
        return Ok(FdKind::NonBlocking);
    }
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    syscall!(fstat(fd, &mut st))?;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK => FdKind::AlwaysReady,
        _ => FdKind::Blocking,
    })
}

/// Parks until a blocking fd polls ready (level-triggered on top of the
/// hub's edge-triggered wait: a stale edge may wake us early, so poll
/// again before trusting it).
fn wait_ready(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    while !crate::sys::ready_now(fd, interest)? {
        crate::io::wait(fd, interest, deadline)?;
    }
    Ok(())
}

/// Runs `op` (one read or write) with the retry loop for a non-blocking fd.
pub(crate) fn nonblocking_op(
    fd: RawFd,
    interest: Interest,
    deadline: Option<Instant>,
    mut op: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => crate::io::wait(fd, interest, deadline)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// One `read(2)`, as an `io::Result`.
pub(crate) fn raw_read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len())).map(|n| n as usize)
}

/// One `write(2)`, as an `io::Result`.
pub(crate) fn raw_write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    syscall!(write(fd, buf.as_ptr().cast(), buf.len())).map(|n| n as usize)
}

/// [`read`] with a deadline (`ErrorKind::TimedOut` when it passes).
pub(crate) fn read_until(fd: RawFd, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
    match classify(fd)? {
        FdKind::NonBlocking => nonblocking_op(fd, Interest::READ, deadline, || raw_read(fd, buf)),
        FdKind::AlwaysReady => nonblocking_op(fd, Interest::READ, deadline, || raw_read(fd, buf)),
        FdKind::Blocking => loop {
            wait_ready(fd, Interest::READ, deadline)?;
            match raw_read(fd, buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        },
    }
}

/// [`write`] with a deadline (`ErrorKind::TimedOut` when it passes).
pub(crate) fn write_until(fd: RawFd, buf: &[u8], deadline: Option<Instant>) -> io::Result<usize> {
    match classify(fd)? {
        FdKind::NonBlocking => nonblocking_op(fd, Interest::WRITE, deadline, || raw_write(fd, buf)),
        FdKind::AlwaysReady => nonblocking_op(fd, Interest::WRITE, deadline, || raw_write(fd, buf)),
        FdKind::Blocking => loop {
            wait_ready(fd, Interest::WRITE, deadline)?;
            let chunk = &buf[..buf.len().min(libc::PIPE_BUF)];
            match raw_write(fd, chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        },
    }
}
