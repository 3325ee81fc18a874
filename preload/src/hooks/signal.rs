//! Hooks for installing signal handlers: `sigaction`, `signal`,
//! `bsd_signal`, `sysv_signal`, `__sysv_signal` and `sigset`.
//!
//! Each handler the program installs for a signal that can interrupt a
//! parked call goes in through `handlers`' trampoline, so the cooperative
//! path knows which handler ran while a call was parked and can end or
//! restart it as the kernel would (signal(7)); the program's own handler
//! then runs with the same arguments. Everything the program can observe
//! is as without the preload: a query (`oldact`, the return value of
//! `signal`) reports the program's handler and flags, never the
//! trampoline or the `SA_SIGINFO` it adds. Default and ignore dispositions
//! and the fault signals pass straight through.
//!
//! `signal`, `sigset` and the like install through glibc's internal
//! `sigaction`, which no hook sees: they run as they are, and the handler
//! they installed is then moved behind the trampoline with the same mask
//! and flags (a signal arriving in between runs the handler directly and
//! is only missing from the record: the call it interrupts is restarted).
//!
//! Known limit: greenrt's own `greenrt::signal` saves and restores
//! dispositions with the raw system call; a program that installs its
//! own handler for a signal, then a greenrt handler for it, and then
//! cancels the greenrt one under the preload gets its disposition back
//! with the greenrt handler's record behind the trampoline.

use std::ffi::c_int;

use libc::sighandler_t;

use crate::config::{self, Hooks};
use crate::errno::{errno, set_errno};
use crate::handlers;
use crate::real;
use crate::user_mem;

/// Whether handlers are moved behind the trampoline at all: not with
/// `GREENRT_HOOKS=off`, which must change nothing, nor in a `vfork` child,
/// which shares the parent's record until it execs.
fn wrapping() -> bool {
    config::hooks() != Hooks::Off && !handlers::in_vfork_child()
}

/// The `sigaction` hook.
///
/// # Safety
/// The libc contract of `sigaction`.
pub unsafe fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::sigaction(sig, act, old) };
    if !wrapping() {
        return real();
    }
    let new = if act.is_null() {
        None
    } else {
        match user_mem::read(act) {
            Ok(a) => Some(a),
            Err(_) => return real(), // the kernel's EFAULT
        }
    };
    match new {
        Some(a) if handlers::wraps(sig, a.sa_sigaction) => {
            let mut w = a;
            w.sa_sigaction = handlers::trampoline_address();
            w.sa_flags |= libc::SA_SIGINFO;
            let prev = handlers::record(sig, a.sa_sigaction, a.sa_flags & libc::SA_SIGINFO != 0);
            // SAFETY: our copy of the program's action; the program's `old`.
            let r = unsafe { real::sigaction(sig, &w, old) };
            if r != 0 {
                let e = errno();
                handlers::record(sig, prev.0, prev.1);
                set_errno(e);
                return r;
            }
            report_old(old, prev);
            r
        }
        _ => {
            let prev = handlers::program_handler(sig);
            let r = real();
            if r == 0 {
                report_old(old, prev);
                if new.is_some() {
                    // A default, ignore or fault disposition now: no record.
                    handlers::record(sig, 0, false);
                }
            }
            r
        }
    }
}

/// Rewrites what the kernel reported in `old` as the program installed
/// it: its handler (`prev`) instead of the trampoline, without the
/// `SA_SIGINFO` the trampoline needs unless the program asked for it.
fn report_old(old: *mut libc::sigaction, prev: (sighandler_t, bool)) {
    if old.is_null() {
        return;
    }
    let Ok(mut o) = user_mem::read(old) else { return };
    if o.sa_sigaction == handlers::trampoline_address() {
        o.sa_sigaction = prev.0;
        if !prev.1 {
            o.sa_flags &= !libc::SA_SIGINFO;
        }
        let _ = user_mem::write(old, &o);
    }
}

/// After a `signal`-like call installed `handler` for `sig`: moves it
/// behind the trampoline, with the mask and flags it got.
fn rewrap(sig: c_int, handler: sighandler_t) {
    if !handlers::wraps(sig, handler) {
        // A default or ignore disposition replaced the handler; `SIG_HOLD`
        // (sigset's "block it") and errors leave it in place.
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            handlers::record(sig, 0, false);
        }
        return;
    }
    let saved = errno();
    // SAFETY: all-zero is a valid out-parameter.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a query into a local.
    if unsafe { real::sigaction(sig, std::ptr::null(), &mut cur) } == 0 && cur.sa_sigaction == handler {
        handlers::record(sig, handler, cur.sa_flags & libc::SA_SIGINFO != 0);
        let mut w = cur;
        w.sa_sigaction = handlers::trampoline_address();
        w.sa_flags |= libc::SA_SIGINFO;
        // SAFETY: a local action.
        unsafe { real::sigaction(sig, &w, std::ptr::null_mut()) };
    }
    set_errno(saved);
}

/// A `signal`-like hook: the real call, then the handler behind the
/// trampoline; the previous handler reported as the program's.
fn signal_like(sig: c_int, handler: sighandler_t, call: impl FnOnce() -> sighandler_t) -> sighandler_t {
    if !wrapping() {
        return call();
    }
    let prev = handlers::program_handler(sig);
    let r = call();
    if r == libc::SIG_ERR {
        return r;
    }
    rewrap(sig, handler);
    if r == handlers::trampoline_address() {
        prev.0
    } else {
        r
    }
}

/// The `signal` hook.
///
/// # Safety
/// The libc contract of `signal`.
pub unsafe fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: the program's own arguments.
    signal_like(sig, handler, || unsafe { real::signal(sig, handler) })
}

/// The `bsd_signal` hook.
///
/// # Safety
/// The libc contract of `bsd_signal`.
pub unsafe fn bsd_signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: the program's own arguments.
    signal_like(sig, handler, || unsafe { real::bsd_signal(sig, handler) })
}

/// The `sysv_signal` hook.
///
/// # Safety
/// The libc contract of `sysv_signal`.
pub unsafe fn sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: the program's own arguments.
    signal_like(sig, handler, || unsafe { real::sysv_signal(sig, handler) })
}

/// The `__sysv_signal` hook.
///
/// # Safety
/// The libc contract of `__sysv_signal`.
pub unsafe fn __sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: the program's own arguments.
    signal_like(sig, handler, || unsafe { real::__sysv_signal(sig, handler) })
}

/// The `sigset` hook (`SIG_HOLD` passes through: it only blocks).
///
/// # Safety
/// The libc contract of `sigset`.
pub unsafe fn sigset(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: the program's own arguments.
    signal_like(sig, handler, || unsafe { real::sigset(sig, handler) })
}

crate::hook::forward_hooks! {
    fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int => sigaction_hook calls super::sigaction;
    fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t => signal_hook calls super::signal;
    fn bsd_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => bsd_signal_hook calls super::bsd_signal;
    fn sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => sysv_signal_hook calls super::sysv_signal;
    fn __sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => sysv_signal_alias_hook calls super::__sysv_signal;
    fn sigset(sig: c_int, handler: sighandler_t) -> sighandler_t => sigset_hook calls super::sigset;
}
