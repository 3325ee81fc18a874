//! Hooks for waiting on child processes: `waitpid`, `wait` and `wait4`
//! (DESIGN rule 12), and why `fork` needs no hook (rule 8).
//!
//! # waitpid, wait, wait4
//!
//! Where the calling greenlet should cooperate (rule 1), a wait that may
//! block parks only that greenlet:
//!
//! - `waitpid`, `wait`, and `wait4` without a `rusage` go to the runtime's
//!   cooperative `waitpid` (`RuntimeV1::waitpid`, greenrt's
//!   `os::waitpid`): it tries `waitpid(WNOHANG)` first; for one known pid
//!   (`pid > 0`) without `WUNTRACED`/`WCONTINUED` it parks on a **pidfd**,
//!   which the kernel makes readable when that process exits, and then
//!   reaps exactly that pid; for "any child" (`-1`), a process group
//!   (`0`, `< -1`) or stop/continue reports it polls `waitpid(WNOHANG)`
//!   with a short growing pause (1 ms doubling to 50 ms): the one way to be
//!   told about "any child" without an fd would be a `SIGCHLD` handler,
//!   and the program's signal dispositions are never changed.
//! - `wait4` with a `rusage` does the same with the real
//!   `wait4(WNOHANG, rusage)` as its try, so the resource usage comes from
//!   the kernel's own reaping call: a pidfd for a known pid, the growing
//!   pause otherwise.
//!
//! Nothing is reaped that the program did not ask for: only the pid (or
//! the set of children) named in the call is ever waited for, so an exit
//! status the program waits for elsewhere is never taken (rule 12).
//!
//! `WNOHANG` never blocks, so such calls pass straight through, as does
//! every call where the greenlet should not cooperate.
//!
//! Return values and errno are the real calls' (rule 7): the pid, with the
//! status (and rusage) filled in, or `-1` with `ECHILD`, `EINVAL`, ... from
//! the kernel's own try; on success errno keeps its value from the start of
//! the call.
//!
//! # Signals (rule 16)
//!
//! The real calls fail with `EINTR` when a handler installed without
//! `SA_RESTART` runs, and restart with it. A parked wait is told when a
//! signal handler interrupts the hub's wait (see `hooks/poll.rs`, "Signals"),
//! but not which signal it was: it returns `-1`/`EINTR` (the child left
//! unreaped, as the kernel does) if the greenlet was killed or some signal
//! has a handler without `SA_RESTART`, and waits on otherwise.
//!
//! # fork (rule 8)
//!
//! `fork` is not hooked: nothing more is needed than what the runtime does
//! already. When the runtime creates its first hub it registers a
//! `pthread_atfork` child handler, which runs after every `fork` the
//! program makes (through glibc's `fork`, hooked or not): the child gets a
//! fresh hub and poller on first use (the parent's epoll fd and eventfd are
//! closed in the child without touching the parent's registrations), the
//! parent's greenlets never run in the child, and the thread pool starts
//! afresh. A process that forks before any hub exists has nothing to reset.
//! The preload itself keeps no per-process state that a child must not
//! share: its temporary epoll, timer and pid fds live for one call, and a
//! child forked while another greenlet is parked in such a call only
//! inherits a copy of that fd, which it never uses.

use std::ffi::c_int;

use greenrt::abi::{HookFd, WAIT_READ};
use libc::{pid_t, rusage};

use crate::errno::{errno, set_errno};
use crate::hook::{self, park_interruptibly};
use crate::real;
use crate::runtime::rt;
use crate::wait::{close_raw, interrupted};

/// The `waitpid` hook.
///
/// # Safety
/// The libc contract of `waitpid`.
pub unsafe fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::waitpid(pid, status, options) };
    if options & libc::WNOHANG != 0 {
        return real();
    }
    // SAFETY: `status` is null or writable, per waitpid's contract.
    hook::route(
        "waitpid",
        || unsafe { wait_coop(pid, status, options, std::ptr::null_mut()) },
        real,
    )
}

/// The `wait` hook.
///
/// # Safety
/// The libc contract of `wait`.
pub unsafe fn wait(status: *mut c_int) -> pid_t {
    // SAFETY: (both closures) the program's own argument.
    let real = || unsafe { real::wait(status) };
    // SAFETY: `status` is null or writable, per wait's contract.
    hook::route(
        "wait",
        || unsafe { wait_coop(-1, status, 0, std::ptr::null_mut()) },
        real,
    )
}

/// The `wait4` hook.
///
/// # Safety
/// The libc contract of `wait4`.
pub unsafe fn wait4(pid: pid_t, status: *mut c_int, options: c_int, ru: *mut rusage) -> pid_t {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::wait4(pid, status, options, ru) };
    if options & libc::WNOHANG != 0 {
        return real();
    }
    // SAFETY: `status` and `ru` are null or writable, per the contract.
    hook::route("wait4", || unsafe { wait_coop(pid, status, options, ru) }, real)
}

/// First and last pause between two tries when no pidfd can say when a
/// child changes state (the runtime's `os::waitpid` uses the same).
const PAUSE_MIN_NS: i64 = 1_000_000;
const PAUSE_MAX_NS: i64 = 50_000_000;
/// Longest pidfd wait between two tries (see `wait_coop`).
const PIDFD_SLICE_MAX_NS: i64 = 1_000_000_000;

/// `pidfd_open(pid)`: `Ok(fd)`, or the errno (`ESRCH` for no such
/// process, `ENOSYS`, `EPERM` from a seccomp filter, `EMFILE`, ...).
fn pidfd_open(pid: pid_t) -> Result<HookFd, c_int> {
    // SAFETY: plain syscall; no pointers.
    HookFd::create(|| unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) } as c_int)
}

/// True if `pid` is being traced by this process (ptrace): its stops are
/// reported to our waits without `WUNTRACED`, and a pidfd says nothing
/// about them.
fn traced_by_us(pid: pid_t) -> bool {
    let path = format!("/proc/{pid}/status\0");
    // SAFETY: a NUL-terminated path; a raw syscall, never a hook.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    let fd = fd as c_int;
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        let tail = &mut buf[len..];
        // SAFETY: reads into the unused tail of a local buffer.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, tail.as_mut_ptr(), tail.len()) };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    close_raw(fd);
    let text = String::from_utf8_lossy(&buf[..len]);
    let tracer = text
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse::<pid_t>().ok());
    // SAFETY: getpid has no preconditions.
    tracer.is_some_and(|t| t != 0 && t == unsafe { libc::getpid() })
}

/// The cooperative wait behind `waitpid`, `wait` and `wait4`: the real
/// `wait4(WNOHANG)` (with the program's `rusage`, possibly null) is the
/// try; between tries the greenlet parks on a pidfd or pauses.
///
/// # Safety
/// `status` and `ru` are null or writable.
unsafe fn wait_coop(pid: pid_t, status: *mut c_int, options: c_int, ru: *mut rusage) -> pid_t {
    let saved = errno();
    // SAFETY: the program's own arguments; WNOHANG never blocks.
    let try_once = || unsafe { real::wait4(pid, status, options | libc::WNOHANG, ru) };
    let done = |r: pid_t| {
        if r > 0 {
            set_errno(saved);
        }
        r
    };
    // waitpid is restarted after a handler installed with SA_RESTART.
    let eintr = || {
        set_errno(libc::EINTR);
        -1
    };
    let r = try_once();
    if r != 0 {
        return done(r);
    }
    // A pidfd reports exit only: not stop/continue reports, nor the ptrace
    // stops a tracer (strace, gdb) waits for without WUNTRACED. A child
    // can start being traced after this check (PTRACE_TRACEME in the
    // child, or an attach): the pidfd wait wakes now and then (1 ms
    // doubling to 1 s) to try again and to look at that once more.
    let exit_only = options & (libc::WUNTRACED | libc::WCONTINUED) == 0;
    if pid > 0 && exit_only && !traced_by_us(pid) {
        if let Ok(pfd) = pidfd_open(pid) {
            let mut slice = PAUSE_MIN_NS;
            let r = loop {
                let n = pfd.number();
                // SAFETY: runtime entry point; no pointers.
                let (r, since) = park_interruptibly(|| unsafe { (rt().wait_fd_level)(n, WAIT_READ, slice) });
                let timed_out = match r {
                    0 => false,
                    // The program took the number (`HookFd`): try, then
                    // wait on the new one.
                    e if e == -libc::EBADF && pfd.number() != n => false,
                    e if e == -libc::ETIMEDOUT => true,
                    e if e == -libc::EINTR && interrupted(since, true) => break Some(eintr()),
                    e if e == -libc::EINTR => false,
                    // The poller refused the pidfd, or another failure:
                    // pause between tries instead.
                    _ => break None,
                };
                match try_once() {
                    0 if timed_out && traced_by_us(pid) => break None,
                    0 if timed_out => slice = (slice * 2).min(PIDFD_SLICE_MAX_NS),
                    0 => {}
                    r => break Some(done(r)),
                }
            };
            // SAFETY: runtime entry point; no pointers.
            unsafe { (rt().cancel_wait)(pfd.number()) };
            drop(pfd);
            if let Some(r) = r {
                return r;
            }
        }
        // ESRCH (no such process: the tries report ECHILD or a status),
        // ENOSYS, EPERM, EMFILE, or traced after all: pause between tries.
    }
    let mut pause = PAUSE_MIN_NS;
    loop {
        // SAFETY: runtime entry point; a null `remaining` is allowed.
        let (r, since) = park_interruptibly(|| unsafe { (rt().sleep_ns)(pause, std::ptr::null_mut()) });
        if r == -libc::EINTR && interrupted(since, true) {
            return eintr();
        }
        if r != 0 && r != -libc::EINTR {
            // The runtime cannot sleep: the real, blocking call.
            set_errno(saved);
            // SAFETY: the program's own arguments.
            return unsafe { real::wait4(pid, status, options, ru) };
        }
        match try_once() {
            0 => pause = (pause * 2).min(PAUSE_MAX_NS),
            r => return done(r),
        }
    }
}

crate::hook::forward_hooks! {
    fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t => greenrt_waitpid calls super::waitpid;
    fn wait(status: *mut c_int) -> pid_t => greenrt_wait calls super::wait;
    fn wait4(pid: pid_t, status: *mut c_int, options: c_int, ru: *mut rusage) -> pid_t => greenrt_wait4 calls super::wait4;
}
