//! Hooks for waiting on several fds: `poll`, `__poll`, `ppoll`, `select`,
//! `pselect`, `epoll_wait`, `epoll_pwait`, and the fortified `__poll_chk`
//! and `__ppoll_chk`.
//!
//! One family at ~780 lines (plus tests): nine entry points that share one
//! wait loop, one temporary epoll set and one signal-mask rule.
//!
//! # The cooperative path
//!
//! Where the calling greenlet should cooperate (DESIGN rule 1), a wait with
//! a non-zero timeout goes like this:
//!
//! 1. The **real call with a zero timeout** runs first. If anything is
//!    ready, or the call fails (a bad fd, a bad pointer, `EINVAL`), that is
//!    the answer: the kernel validated the arguments and filled in the
//!    results itself, so they are exact (rule 7).
//! 2. Otherwise the greenlet **parks on one fd** through the runtime's
//!    level-triggered `wait_fd_level`:
//!    - for `epoll_wait`, the program's own epoll fd (an epoll fd is
//!      pollable: readable when one of its entries is ready);
//!    - for `poll`/`select` on a single fd that only asks for reading or
//!      writing, that fd;
//!    - for anything else, a **temporary epoll fd** holding the program's
//!      fds, level-triggered, with the events the call asked for (epoll
//!      always adds `EPOLLERR`/`EPOLLHUP`, as poll does). It lives for the
//!      call only: created with `epoll_create1`, dropped from the hub's
//!      poller and closed (with a raw syscall) before the call returns, so
//!      no registration outlives the call and a fork never shares it.
//!      Creating one costs three syscalls plus one `epoll_ctl` per fd, on
//!      the path that is about to park anyway (measured here: 4 to 6 µs
//!      for two fds, against 2.4 µs to add them to and remove them from a
//!      cached per-thread epoll fd; the saving is not worth a cached fd,
//!      which a forked child would share with the parent, interest list
//!      and all).
//! 3. When the hub wakes the greenlet, the real call with a zero timeout
//!    runs again and its result is returned: `revents`, the fd sets and
//!    the epoll events are exactly what the kernel reports. A wake-up with
//!    nothing ready (another greenlet or thread took the data first)
//!    rebuilds the temporary set and waits again, until the deadline.
//! 4. At the deadline, one last zero-timeout call decides (normally `0`).
//!
//! A zero timeout never parks: the call passes straight through. The
//! deadline is the one the program asked for, measured on the monotonic
//! clock from the start of the call (rule 17); a negative `poll` timeout
//! or a null `ppoll`/`pselect`/`select` timeout waits without limit.
//!
//! `select` keeps Linux's behaviour of writing the time not slept back to
//! the `timeval` (0 on a timeout), as glibc's wrapper does; `ppoll` and
//! `pselect` leave their `timespec` alone, like glibc. `select` waits
//! cooperatively for `nfds` up to `FD_SETSIZE`; larger sets (hand-made
//! bigger `fd_set`s) pass through to the real call.
//!
//! # Signal masks
//!
//! `ppoll`, `pselect` and `epoll_pwait` with a signal mask that differs
//! from the thread's current one pass through to the real call (it blocks
//! the thread): the mask must be in force atomically for exactly the wait,
//! and changing the thread's mask while other greenlets run on it would
//! change theirs too. A null mask, or one equal to the current mask, is
//! the plain wait and cooperates.
//!
//! # Signals
//!
//! The real calls never restart after a signal handler: they fail with
//! `EINTR` (rule 16). A parked greenlet sleeps in the hub's own poller
//! wait, so every park here (`park`) asks the runtime to end it with
//! `-EINTR` when a signal handler interrupts that wait on this thread
//! (`RuntimeV1::set_signal_interruptible`); a kill ends it the same way.
//! The hook then returns `-1`/`EINTR` (`interrupted` tells a kill, a
//! handler, and a mere stop-and-continue apart). A real `EINTR` from the
//! zero-timeout calls is returned as it is.
//!
//! What cannot be exact: the runtime learns of a handler only when it
//! interrupts the hub's poller wait. A signal handled while this thread
//! runs another greenlet's code interrupts no wait, as it would interrupt
//! no blocking call of a thread that was running; and with several
//! greenlets parked in hooked calls, one handler interrupts them all.
//!
//! # Errors that cannot cooperate
//!
//! If the temporary set cannot be built (`epoll_ctl` refuses an fd with
//! something other than `EPERM`, for example `ENOSPC` from
//! `max_user_watches`, or the runtime's wait fails), the call falls back to
//! the real call with the time that is left: a correct answer, blocking
//! the thread. Regular files (which `epoll_ctl` refuses with `EPERM`) are
//! always ready, so step 1 already answered for them.

use std::ffi::c_int;
use std::time::Duration;

use greenrt::abi::HookFd;
use greenrt::abi::{WAIT_READ, WAIT_WRITE};
use libc::{epoll_event, fd_set, nfds_t, pollfd, sigset_t, size_t, timespec, timeval};

use crate::errno::{errno, set_errno};
use crate::handlers::Mark;
use crate::hook::{self, park_interruptibly};
use crate::real;
use crate::runtime::rt;
use crate::user_mem;
use crate::wait::{interrupted, timespec_duration, Deadline};

/// What a parked greenlet waits on.
enum Watch {
    /// One fd, for `WAIT_READ` / `WAIT_WRITE`.
    One(c_int, c_int),
    /// A temporary epoll fd holding the call's fds.
    Set(TempEpoll),
    /// Nothing: only the deadline (or an interruption) ends the wait.
    Sleep,
}

impl Watch {
    /// Parks until the watch may be ready; the runtime's code (`0` ready,
    /// `-ETIMEDOUT`, `-EINTR`, `-EBADF`, other `-errno`), and where the
    /// park began in this thread's handler history.
    fn wait(&self, deadline: &Deadline) -> (c_int, Mark) {
        let ns = deadline.left_ns();
        park_interruptibly(|| match self {
            // SAFETY: runtime entry points; no pointer arguments.
            Watch::One(fd, ev) => unsafe { (rt().wait_fd_level)(*fd, *ev, ns) },
            Watch::Set(ep) => loop {
                let n = ep.0.number();
                // SAFETY: as above.
                let r = unsafe { (rt().wait_fd_level)(n, WAIT_READ, deadline.left_ns()) };
                // The program took the number (`HookFd`): wait on the new one.
                if r == -libc::EBADF && ep.0.number() != n {
                    continue;
                }
                break r;
            },
            Watch::Sleep => {
                // Without limit: park for as long as a sleep can last; a
                // kill (or an interrupting signal) ends it.
                let ns = if ns < 0 { i64::MAX } else { ns };
                // SAFETY: runtime entry point; null `remaining` is allowed.
                match unsafe { (rt().sleep_ns)(ns, std::ptr::null_mut()) } {
                    0 => -libc::ETIMEDOUT,
                    e => e,
                }
            }
        })
    }
}

/// A per-call epoll fd holding the program's fds (see the module docs).
struct TempEpoll(HookFd);

impl TempEpoll {
    fn new() -> Result<TempEpoll, c_int> {
        // SAFETY: plain syscall wrapper, no pointers.
        HookFd::create(|| unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).map(TempEpoll)
    }

    /// Adds `fd` for `events`; `merged` gives the union of every event set
    /// asked for `fd` so far when the fd is listed twice. An fd epoll
    /// refuses with `EPERM` (regular files: always ready) is left out.
    fn add(&self, fd: c_int, events: u32, merged: impl FnOnce() -> u32) -> Result<(), c_int> {
        let mut ev = epoll_event { events, u64: fd as u64 };
        if self.ctl(libc::EPOLL_CTL_ADD, fd, &mut ev) == 0 {
            return Ok(());
        }
        match errno() {
            libc::EPERM => Ok(()),
            libc::EEXIST => {
                ev.events = merged();
                if self.ctl(libc::EPOLL_CTL_MOD, fd, &mut ev) == 0 {
                    Ok(())
                } else {
                    Err(errno())
                }
            }
            e => Err(e),
        }
    }

    /// `epoll_ctl` on this epoll fd.
    fn ctl(&self, op: c_int, fd: c_int, ev: &mut epoll_event) -> c_int {
        // SAFETY: a valid epoll_event for the duration of the call.
        self.0.with(|ep| unsafe { libc::epoll_ctl(ep, op, fd, ev) })
    }
}

impl Drop for TempEpoll {
    fn drop(&mut self) {
        // Out of the hub's poller before the number can be reused (rule 4).
        // SAFETY: runtime entry point; no pointers.
        unsafe { (rt().cancel_wait)(self.0.number()) };
        // Dropping the HookFd closes it.
    }
}

/// How one cooperative wait ended.
enum Outcome {
    /// The real zero-timeout call answered (its return value; errno set
    /// by it on `-1`).
    Done(c_int),
    /// The deadline passed and the last check found nothing.
    TimedOut,
    /// The runtime reported an interruption (`EINTR`).
    Interrupted,
    /// Cooperation failed; the caller falls back to the real call with the
    /// time that is left.
    Fallback,
}

/// The cooperative wait shared by every hook here: `check` is the real
/// call with a zero timeout (non-zero: done), `build` says what to park on.
/// errno is restored to its value at entry unless the outcome is a failure
/// of the real call (rule 7: other greenlets may have run meanwhile).
fn wait_loop(deadline: Deadline, check: impl FnMut() -> c_int, build: impl FnMut() -> Result<Watch, c_int>) -> Outcome {
    let saved = errno();
    let out = wait_loop_inner(deadline, check, build);
    if !matches!(out, Outcome::Done(r) if r < 0) {
        set_errno(saved);
    }
    out
}

fn wait_loop_inner(
    deadline: Deadline,
    mut check: impl FnMut() -> c_int,
    mut build: impl FnMut() -> Result<Watch, c_int>,
) -> Outcome {
    let r = check();
    if r != 0 {
        return Outcome::Done(r);
    }
    loop {
        if deadline.passed() {
            return Outcome::TimedOut;
        }
        let Ok(watch) = build() else {
            return Outcome::Fallback;
        };
        let (w, since) = watch.wait(&deadline);
        // Free the temporary set before the check: a spurious wake-up
        // rebuilds it from the fds as they are now.
        drop(watch);
        match w {
            // Ready, or the watched fd was closed (by another greenlet's
            // close): the real call says what that means for the program.
            0 => {}
            e if e == -libc::EBADF => {}
            e if e == -libc::ETIMEDOUT => {
                let r = check();
                return if r != 0 { Outcome::Done(r) } else { Outcome::TimedOut };
            }
            // Never restarted after a handler, whatever SA_RESTART says.
            e if e == -libc::EINTR && interrupted(since, false) => return Outcome::Interrupted,
            e if e == -libc::EINTR => {}
            _ => return Outcome::Fallback,
        }
        let r = check();
        if r != 0 {
            return Outcome::Done(r);
        }
    }
}

/// True if `mask` (null: none) is the calling thread's signal mask, so
/// that a wait under it is the same as one under the current mask. False
/// too for a mask the kernel cannot read (the real call says EFAULT).
fn mask_is_current(mask: *const sigset_t) -> bool {
    if mask.is_null() {
        return true;
    }
    let Ok(want) = user_mem::read(mask) else {
        return false;
    };
    // SAFETY: an all-zero sigset_t is a valid (empty) set.
    let mut cur: sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: reads the calling thread's mask into a local set.
    if unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut cur) } != 0 {
        return false;
    }
    (1..libc::SIGRTMAX() + 1)
        .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
        // SAFETY: both sets are local and valid; `s` is a valid signal.
        .all(|s| unsafe { libc::sigismember(&want, s) == libc::sigismember(&cur, s) })
}

/// The wait a `timespec` timeout asks for: `Some(None)` for none (null),
/// `Some(Some(d))` for a non-zero `d`, `None` where the hook must make the
/// real call instead (zero never parks; an invalid time or a bad pointer
/// is the kernel's error).
fn timeout_of(t: *const timespec) -> Option<Option<Duration>> {
    if t.is_null() {
        return Some(None);
    }
    match user_mem::read(t).ok().and_then(|ts| timespec_duration(&ts)) {
        Some(d) if !d.is_zero() => Some(Some(d)),
        _ => None,
    }
}

// ===== poll =====

/// The `epoll` events for a `poll` events mask (the bits have the same
/// values).
fn poll_to_epoll(events: i16) -> u32 {
    let mask = libc::POLLIN
        | libc::POLLPRI
        | libc::POLLOUT
        | libc::POLLRDNORM
        | libc::POLLRDBAND
        | libc::POLLWRNORM
        | libc::POLLWRBAND
        | libc::POLLRDHUP;
    (events & mask) as u16 as u32
}

/// What to park on for a `poll` set.
///
/// # Safety
/// `fds` points at `nfds` valid pollfds (the zero-timeout call checked).
unsafe fn poll_watch(fds: *const pollfd, nfds: usize) -> Result<Watch, c_int> {
    if nfds == 0 {
        // `fds` may be null: poll(NULL, 0, ms) is a sleep.
        return Ok(Watch::Sleep);
    }
    // SAFETY: the caller guarantees the slice (non-null, as nfds > 0 and
    // the real call accepted it).
    let set = unsafe { std::slice::from_raw_parts(fds, nfds) };
    let mut live = set.iter().filter(|p| p.fd >= 0);
    let (Some(first), None) = (live.next(), live.next()) else {
        if set.iter().all(|p| p.fd < 0) {
            return Ok(Watch::Sleep);
        }
        return poll_set(set).map(Watch::Set);
    };
    let read = libc::POLLIN | libc::POLLRDNORM | libc::POLLRDHUP;
    let write = libc::POLLOUT | libc::POLLWRNORM;
    if first.events != 0 && first.events & !(read | write) == 0 {
        let mut ev = 0;
        if first.events & read != 0 {
            ev |= WAIT_READ;
        }
        if first.events & write != 0 {
            ev |= WAIT_WRITE;
        }
        return Ok(Watch::One(first.fd, ev));
    }
    poll_set(set).map(Watch::Set)
}

fn poll_set(set: &[pollfd]) -> Result<TempEpoll, c_int> {
    let ep = TempEpoll::new()?;
    for (i, p) in set.iter().enumerate() {
        if p.fd < 0 {
            continue;
        }
        ep.add(p.fd, poll_to_epoll(p.events), || {
            set[..=i]
                .iter()
                .filter(|q| q.fd == p.fd)
                .fold(0, |acc, q| acc | poll_to_epoll(q.events))
        })?;
    }
    Ok(ep)
}

/// The cooperative `poll`/`ppoll` wait for `fds` until `deadline`.
///
/// # Safety
/// The libc contract of `poll`.
unsafe fn poll_coop(fds: *mut pollfd, nfds: nfds_t, deadline: Deadline) -> c_int {
    // SAFETY: the real poll with a zero timeout validates `fds` itself.
    let check = || unsafe { real::poll(fds, nfds, 0) };
    // SAFETY: only reached after `check` accepted `fds`/`nfds`.
    let build = || unsafe { poll_watch(fds, nfds as usize) };
    match wait_loop(deadline, check, build) {
        Outcome::Done(r) => r,
        Outcome::TimedOut => 0,
        Outcome::Interrupted => {
            set_errno(libc::EINTR);
            -1
        }
        // SAFETY: the program's own arguments.
        Outcome::Fallback => unsafe { real::poll(fds, nfds, deadline.left_ms()) },
    }
}

/// `poll` with an `int` millisecond timeout (shared by `poll`, `__poll`
/// and `__poll_chk`).
///
/// # Safety
/// The libc contract of `poll`.
unsafe fn poll_ms(name: &str, fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::poll(fds, nfds, timeout) };
    if timeout == 0 {
        return real();
    }
    let d = (timeout > 0).then(|| Duration::from_millis(timeout as u64));
    // SAFETY: forwarded contract.
    hook::route(name, || unsafe { poll_coop(fds, nfds, Deadline::after(d)) }, real)
}

/// The `poll` hook.
///
/// # Safety
/// The libc contract of `poll`.
pub unsafe fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    // SAFETY: forwarded libc contract.
    unsafe { poll_ms("poll", fds, nfds, timeout) }
}

/// The `__poll` hook.
///
/// # Safety
/// The libc contract of `__poll`.
pub unsafe fn __poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    // SAFETY: forwarded libc contract.
    unsafe { poll_ms("__poll", fds, nfds, timeout) }
}

extern "C" {
    /// glibc's "buffer overflow detected" abort.
    fn __chk_fail() -> !;
}

/// The `__poll_chk` hook.
///
/// # Safety
/// The libc contract of `__poll_chk`.
pub unsafe fn __poll_chk(fds: *mut pollfd, nfds: nfds_t, timeout: c_int, fdslen: size_t) -> c_int {
    if fdslen / std::mem::size_of::<pollfd>() < nfds as usize {
        // SAFETY: glibc's own reaction to the overflow it checks for.
        unsafe { __chk_fail() };
    }
    // SAFETY: forwarded libc contract.
    unsafe { poll_ms("__poll_chk", fds, nfds, timeout) }
}

/// `ppoll` (shared by `ppoll` and `__ppoll_chk`).
///
/// # Safety
/// The libc contract of `ppoll`.
unsafe fn ppoll_impl(fds: *mut pollfd, nfds: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::ppoll(fds, nfds, t, mask) };
    let coop = || {
        // Zero (never parks), EINVAL, another signal mask or a bad
        // pointer: the real call.
        let d = match timeout_of(t) {
            Some(d) if mask_is_current(mask) => d,
            _ => return real(),
        };
        // SAFETY: forwarded contract.
        unsafe { poll_coop(fds, nfds, Deadline::after(d)) }
    };
    hook::route("ppoll", coop, real)
}

/// The `ppoll` hook.
///
/// # Safety
/// The libc contract of `ppoll`.
pub unsafe fn ppoll(fds: *mut pollfd, nfds: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int {
    // SAFETY: forwarded libc contract.
    unsafe { ppoll_impl(fds, nfds, t, mask) }
}

/// The `__ppoll_chk` hook.
///
/// # Safety
/// The libc contract of `__ppoll_chk`.
pub unsafe fn __ppoll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
    fdslen: size_t,
) -> c_int {
    if fdslen / std::mem::size_of::<pollfd>() < nfds as usize {
        // SAFETY: glibc's own reaction to the overflow it checks for.
        unsafe { __chk_fail() };
    }
    // SAFETY: forwarded libc contract.
    unsafe { ppoll_impl(fds, nfds, t, mask) }
}

// ===== select =====

/// Words of an `fd_set` (as the kernel reads them: longs).
const SET_WORDS: usize = libc::FD_SETSIZE / (8 * std::mem::size_of::<libc::c_ulong>());
/// Bits per word.
const WORD_BITS: usize = 8 * std::mem::size_of::<libc::c_ulong>();

/// A copy of the part of one of the program's fd sets that `nfds` covers
/// (only that part: the program's set may be shorter than `fd_set`).
#[derive(Clone, Copy)]
struct SetCopy {
    ptr: *mut libc::c_ulong,
    words: [libc::c_ulong; SET_WORDS],
}

impl SetCopy {
    /// Copies `nw` words of `set` (null: an absent set); `Err` where the
    /// kernel would answer `EFAULT` (`nw` is at most `SET_WORDS`).
    fn take(set: *mut fd_set, nw: usize) -> Result<SetCopy, i32> {
        let mut c = SetCopy {
            ptr: set as *mut libc::c_ulong,
            words: [0; SET_WORDS],
        };
        if !set.is_null() {
            user_mem::read_into(c.ptr, &mut c.words[..nw])?;
        }
        Ok(c)
    }

    /// Puts the copy back into the program's set before a real call.
    fn restore(&self, nw: usize) {
        if !self.ptr.is_null() {
            // The set was readable at `take`; one the kernel cannot write
            // shows up as the real call's EFAULT.
            let _ = user_mem::write_from(self.ptr, &self.words[..nw]);
        }
    }

    fn has(&self, fd: usize) -> bool {
        !self.ptr.is_null() && self.words[fd / WORD_BITS] & (1 << (fd % WORD_BITS)) != 0
    }
}

/// What to park on for a `select` set.
fn select_watch(nfds: usize, r: &SetCopy, w: &SetCopy, e: &SetCopy) -> Result<Watch, c_int> {
    let rd = (libc::EPOLLIN | libc::EPOLLRDNORM | libc::EPOLLRDBAND) as u32;
    let wr = (libc::EPOLLOUT | libc::EPOLLWRNORM | libc::EPOLLWRBAND) as u32;
    let ex = libc::EPOLLPRI as u32;
    let events = |fd: usize| {
        (if r.has(fd) { rd } else { 0 }) | (if w.has(fd) { wr } else { 0 }) | (if e.has(fd) { ex } else { 0 })
    };
    let mut wanted = (0..nfds).filter(|&fd| events(fd) != 0);
    match (wanted.next(), wanted.next()) {
        (None, _) => return Ok(Watch::Sleep),
        (Some(fd), None) if !e.has(fd) => {
            let ev = (if r.has(fd) { WAIT_READ } else { 0 }) | (if w.has(fd) { WAIT_WRITE } else { 0 });
            return Ok(Watch::One(fd as c_int, ev));
        }
        _ => {}
    }
    let ep = TempEpoll::new()?;
    for fd in (0..nfds).filter(|&fd| events(fd) != 0) {
        ep.add(fd as c_int, events(fd), || events(fd))?;
    }
    Ok(Watch::Set(ep))
}

/// The cooperative `select`/`pselect` wait; `Err(())` when cooperation
/// failed and the caller must make the real call with the time left.
///
/// # Safety
/// The libc contract of `select`, with `0 <= nfds <= FD_SETSIZE`.
unsafe fn select_coop(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    deadline: Deadline,
) -> Result<c_int, ()> {
    let nw = (nfds as usize).div_ceil(WORD_BITS);
    // A set the kernel cannot read: its EFAULT, from the real call.
    let (Ok(rc), Ok(wc), Ok(ec)) = (SetCopy::take(r, nw), SetCopy::take(w, nw), SetCopy::take(e, nw)) else {
        return Err(());
    };
    let check = || {
        // The program's sets back, then the real select with a zero
        // timeout on its own arguments.
        rc.restore(nw);
        wc.restore(nw);
        ec.restore(nw);
        let mut zero = timeval { tv_sec: 0, tv_usec: 0 };
        // SAFETY: the program's own sets, a local timeout.
        unsafe { real::select(nfds, r, w, e, &mut zero) }
    };
    let build = || select_watch(nfds as usize, &rc, &wc, &ec);
    match wait_loop(deadline, check, build) {
        Outcome::Done(n) => Ok(n),
        // The last check cleared the sets, as the kernel's timeout does.
        Outcome::TimedOut => Ok(0),
        Outcome::Interrupted => {
            set_errno(libc::EINTR);
            Ok(-1)
        }
        Outcome::Fallback => {
            rc.restore(nw);
            wc.restore(nw);
            ec.restore(nw);
            Err(())
        }
    }
}

/// A `select` `timeval` as a `Duration` the way glibc and the kernel read
/// it (microseconds beyond a second carry over); `None` for `EINVAL`.
fn timeval_duration(tv: &timeval) -> Option<Duration> {
    if tv.tv_sec < 0 || tv.tv_usec < 0 {
        return None;
    }
    let us = tv.tv_usec as u64;
    Some(Duration::from_secs(tv.tv_sec as u64).saturating_add(Duration::from_micros(us)))
}

/// `select`: see the module docs.
///
/// # Safety
/// The libc contract of `select`.
unsafe fn select_impl(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *mut timeval) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::select(nfds, r, w, e, t) };
    if !(0..=libc::FD_SETSIZE as c_int).contains(&nfds) {
        return real();
    }
    let coop = || {
        // Zero (never parks), EINVAL or a bad pointer: the real call.
        let d = if t.is_null() {
            None
        } else {
            match user_mem::read(t).ok().and_then(|tv| timeval_duration(&tv)) {
                Some(d) if !d.is_zero() => Some(d),
                _ => return real(),
            }
        };
        let deadline = Deadline::after(d);
        // SAFETY: forwarded contract; `nfds` is in range.
        let n = match unsafe { select_coop(nfds, r, w, e, deadline) } {
            Ok(n) => n,
            Err(()) => {
                let mut left = deadline.left().map(|d| timeval {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_usec: d.subsec_micros() as libc::suseconds_t,
                });
                let lp = left.as_mut().map_or(std::ptr::null_mut(), |l| l as *mut timeval);
                // SAFETY: the program's sets, a local timeout.
                unsafe { real::select(nfds, r, w, e, lp) }
            }
        };
        if !t.is_null() {
            // Linux writes back the time not slept (0 once it ran out),
            // truncated to microseconds, on every return.
            let left = deadline.left().unwrap_or_default();
            let tv = timeval {
                tv_sec: left.as_secs() as libc::time_t,
                tv_usec: left.subsec_micros() as libc::suseconds_t,
            };
            if user_mem::write(t, &tv).is_err() {
                set_errno(libc::EFAULT);
                return -1;
            }
        }
        n
    };
    hook::route("select", coop, real)
}

/// The `select` hook.
///
/// # Safety
/// The libc contract of `select`.
pub unsafe fn select(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *mut timeval) -> c_int {
    // SAFETY: forwarded libc contract.
    unsafe { select_impl(nfds, r, w, e, t) }
}

/// `pselect`: see the module docs.
///
/// # Safety
/// The libc contract of `pselect`.
unsafe fn pselect_impl(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::pselect(nfds, r, w, e, t, mask) };
    if !(0..=libc::FD_SETSIZE as c_int).contains(&nfds) {
        return real();
    }
    let coop = || {
        // Zero (never parks), EINVAL, another signal mask or a bad
        // pointer: the real call.
        let d = match timeout_of(t) {
            Some(d) if mask_is_current(mask) => d,
            _ => return real(),
        };
        let deadline = Deadline::after(d);
        // SAFETY: forwarded contract; `nfds` is in range.
        match unsafe { select_coop(nfds, r, w, e, deadline) } {
            Ok(n) => n,
            Err(()) => {
                let left = deadline.left_timespec();
                let lp = left.as_ref().map_or(std::ptr::null(), |l| l as *const timespec);
                // SAFETY: the program's sets and mask, a local timeout.
                unsafe { real::pselect(nfds, r, w, e, lp, mask) }
            }
        }
    };
    hook::route("pselect", coop, real)
}

/// The `pselect` hook.
///
/// # Safety
/// The libc contract of `pselect`.
pub unsafe fn pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: forwarded libc contract.
    unsafe { pselect_impl(nfds, r, w, e, t, mask) }
}

// ===== epoll_wait =====

/// `epoll_wait`/`epoll_pwait` on the program's epoll fd.
///
/// # Safety
/// The libc contract of `epoll_pwait` (`mask` may be null).
unsafe fn epoll_impl(
    name: &str,
    epfd: c_int,
    ev: *mut epoll_event,
    n: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe {
        if mask.is_null() {
            real::epoll_wait(epfd, ev, n, timeout)
        } else {
            real::epoll_pwait(epfd, ev, n, timeout, mask)
        }
    };
    // SAFETY: `mask` is null or a valid set, per epoll_pwait's contract.
    if timeout == 0 || !mask_is_current(mask) {
        return real();
    }
    let coop = || {
        let d = (timeout > 0).then(|| Duration::from_millis(timeout as u64));
        let deadline = Deadline::after(d);
        // SAFETY: the real call with a zero timeout validates everything.
        let check = || unsafe { real::epoll_wait(epfd, ev, n, 0) };
        match wait_loop(deadline, check, || Ok(Watch::One(epfd, WAIT_READ))) {
            Outcome::Done(r) => r,
            Outcome::TimedOut => 0,
            Outcome::Interrupted => {
                set_errno(libc::EINTR);
                -1
            }
            // SAFETY: the program's own arguments, the time that is left.
            Outcome::Fallback => unsafe { real::epoll_wait(epfd, ev, n, deadline.left_ms()) },
        }
    };
    hook::route(name, coop, real)
}

/// The `epoll_wait` hook.
///
/// # Safety
/// The libc contract of `epoll_wait`.
pub unsafe fn epoll_wait(epfd: c_int, ev: *mut epoll_event, n: c_int, timeout: c_int) -> c_int {
    // SAFETY: forwarded libc contract.
    unsafe { epoll_impl("epoll_wait", epfd, ev, n, timeout, std::ptr::null()) }
}

/// The `epoll_pwait` hook.
///
/// # Safety
/// The libc contract of `epoll_pwait`.
pub unsafe fn epoll_pwait(epfd: c_int, ev: *mut epoll_event, n: c_int, timeout: c_int, mask: *const sigset_t) -> c_int {
    // SAFETY: forwarded libc contract.
    unsafe { epoll_impl("epoll_pwait", epfd, ev, n, timeout, mask) }
}

crate::hook::forward_hooks! {
    fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int => greenrt_poll calls super::poll;
    fn __poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int => greenrt_poll_alias calls super::__poll;
    fn __poll_chk(fds: *mut pollfd, nfds: nfds_t, timeout: c_int, fdslen: size_t) -> c_int => greenrt_poll_chk calls super::__poll_chk;
    fn ppoll(fds: *mut pollfd, nfds: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int => greenrt_ppoll calls super::ppoll;
    fn __ppoll_chk(fds: *mut pollfd, nfds: nfds_t, t: *const timespec, mask: *const sigset_t, fdslen: size_t) -> c_int => greenrt_ppoll_chk calls super::__ppoll_chk;
    fn select(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *mut timeval) -> c_int => greenrt_select calls super::select;
    fn pselect(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *const timespec, mask: *const sigset_t) -> c_int => greenrt_pselect calls super::pselect;
    fn epoll_wait(epfd: c_int, ev: *mut epoll_event, n: c_int, timeout: c_int) -> c_int => greenrt_epoll_wait calls super::epoll_wait;
    fn epoll_pwait(epfd: c_int, ev: *mut epoll_event, n: c_int, timeout: c_int, mask: *const sigset_t) -> c_int => greenrt_epoll_pwait calls super::epoll_pwait;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespec_validation() {
        let ts = |s, n| timespec { tv_sec: s, tv_nsec: n };
        assert_eq!(timespec_duration(&ts(1, 5)), Some(Duration::new(1, 5)));
        assert_eq!(
            timespec_duration(&ts(0, 999_999_999)),
            Some(Duration::new(0, 999_999_999))
        );
        assert_eq!(timespec_duration(&ts(0, 1_000_000_000)), None);
        assert_eq!(timespec_duration(&ts(-1, 0)), None);
        assert_eq!(timespec_duration(&ts(0, -1)), None);
    }

    #[test]
    fn timeval_normalised() {
        let tv = |s, u| timeval { tv_sec: s, tv_usec: u };
        assert_eq!(timeval_duration(&tv(0, 1_500_000)), Some(Duration::from_millis(1500)));
        assert_eq!(timeval_duration(&tv(-1, 0)), None);
        assert_eq!(timeval_duration(&tv(0, -1)), None);
    }

    #[test]
    fn deadline_rounding() {
        let d = Deadline::after(Some(Duration::from_micros(1500)));
        assert!(d.left_ms() == 2 || d.left_ms() == 1);
        assert_eq!(Deadline::after(None).left_ms(), -1);
        assert_eq!(Deadline::after(None).left_ns(), -1);
        assert!(Deadline::after(Some(Duration::ZERO)).passed());
    }

    #[test]
    fn poll_bits_map_to_epoll() {
        assert_eq!(poll_to_epoll(libc::POLLIN), libc::EPOLLIN as u32);
        assert_eq!(
            poll_to_epoll(libc::POLLOUT | libc::POLLPRI),
            (libc::EPOLLOUT | libc::EPOLLPRI) as u32
        );
        assert_eq!(poll_to_epoll(libc::POLLRDHUP), libc::EPOLLRDHUP as u32);
        // POLLNVAL is an output bit only.
        assert_eq!(poll_to_epoll(libc::POLLNVAL), 0);
    }

    #[test]
    fn current_mask_is_recognised() {
        // SAFETY: local sets.
        unsafe {
            assert!(mask_is_current(std::ptr::null()));
            let mut cur: sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut cur);
            assert!(mask_is_current(&cur));
            let mut other = cur;
            if libc::sigismember(&cur, libc::SIGUSR2) == 1 {
                libc::sigdelset(&mut other, libc::SIGUSR2);
            } else {
                libc::sigaddset(&mut other, libc::SIGUSR2);
            }
            assert!(!mask_is_current(&other));
            // SIGKILL cannot be blocked: asking for it changes nothing.
            let mut k = cur;
            libc::sigaddset(&mut k, libc::SIGKILL);
            assert!(mask_is_current(&k));
        }
    }
}
