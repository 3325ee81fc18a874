//! The guard every hook runs under.
//!
//! - **Bypass** (DESIGN rule 5): while a hook is on its cooperative path,
//!   libc calls made underneath it (the runtime logging to stderr, a thread
//!   pool job, ...) pass straight through. The flag is a const-initialised,
//!   Drop-free thread-local `Cell`, safe in signal handlers and during
//!   thread teardown.
//! - **Routing** (rule 1): [`should_cooperate`] asks the serving runtime
//!   whether another greenlet could run here; `GREENRT_HOOKS` decides the
//!   rest.
//! - **No panic crosses the C boundary** (rule 10): [`guarded`] catches a
//!   panic, reports it once on stderr, and falls back to the real call,
//!   unless the call had already had an effect (see [`progressed`]): then
//!   it fails with `EIO` instead of repeating it.
//! - **One router** ([`route`]) and **one way to define a hook**
//!   ([`forward_hooks!`]): the `#[no_mangle]` libc symbol forwards to the
//!   family's hook function (the variadic `fcntl`/`ioctl` are the one
//!   exception: `shim.c`, since stable Rust cannot define a variadic).

use std::cell::Cell;
use std::ffi::c_int;
use std::panic::{self, AssertUnwindSafe};

use crate::config::{self, Hooks};
use crate::errno::{set_errno, write_stderr};
use crate::handlers;
use crate::runtime::rt;

thread_local! {
    static BYPASS: Cell<bool> = const { Cell::new(false) };
    /// Set by [`progressed`] during the running hook's cooperative path.
    static PROGRESS: Cell<bool> = const { Cell::new(false) };
}

/// Notes that the running hook's call has had an effect that making the
/// real call would repeat (bytes moved, a connect started, a connection
/// accepted): after a panic, [`guarded`] then fails the call with `EIO`
/// instead of making the real call again.
#[inline]
pub fn progressed() {
    let _ = PROGRESS.try_with(|p| p.set(true));
}

/// What a hooked call returns when it fails after a panic (errno is set).
pub trait Failure {
    /// The failure value of the call's return type, errno set to `e`.
    fn failure(e: c_int) -> Self;
}

macro_rules! failure_minus_one {
    ($($t:ty),*) => {$(
        impl Failure for $t {
            fn failure(e: c_int) -> Self {
                set_errno(e);
                -1
            }
        }
    )*};
}
failure_minus_one!(i32, i64, isize);

/// `sleep`'s unslept seconds: none left to report.
impl Failure for u32 {
    fn failure(e: c_int) -> Self {
        set_errno(e);
        0
    }
}

/// `sighandler_t`: `SIG_ERR`.
impl Failure for usize {
    fn failure(e: c_int) -> Self {
        set_errno(e);
        libc::SIG_ERR
    }
}

impl Failure for () {
    fn failure(e: c_int) {
        set_errno(e);
    }
}

impl<T> Failure for *mut T {
    fn failure(e: c_int) -> Self {
        set_errno(e);
        std::ptr::null_mut()
    }
}

/// True while the calling thread is inside a hook's cooperative path (or
/// its TLS is gone: thread teardown), so nested calls must pass through.
#[inline]
pub fn bypassed() -> bool {
    BYPASS.try_with(|b| b.get()).unwrap_or(true)
}

/// Sets the bypass flag for this thread, returning its previous value:
/// for `vfork`, whose child runs on this thread's memory until it execs.
#[inline]
pub fn set_bypass(on: bool) -> bool {
    BYPASS.try_with(|b| b.replace(on)).unwrap_or(true)
}

/// Whether a hooked call made now should take the cooperative path.
#[inline]
pub fn should_cooperate() -> bool {
    let always = match config::hooks() {
        Hooks::Off => return false,
        Hooks::Auto => 0,
        Hooks::Always => 1,
    };
    if bypassed() {
        return false;
    }
    // SAFETY: a runtime table entry point; no preconditions.
    unsafe { (rt().should_cooperate)(always) != 0 }
}

/// Runs a hook's cooperative path with the bypass flag set; a panic inside
/// is reported and replaced by the real call's behaviour (`fallback`) if
/// the call had no effect yet, else by a failure with `EIO` (a write that
/// sent half its bytes must not send them again).
#[inline]
pub fn guarded<R: Failure>(name: &str, coop: impl FnOnce() -> R, fallback: impl FnOnce() -> R) -> R {
    let prev = BYPASS.with(|b| b.replace(true));
    let prev_progress = PROGRESS.with(|p| p.replace(false));
    let r = panic::catch_unwind(AssertUnwindSafe(coop));
    BYPASS.with(|b| b.set(prev));
    let progressed = PROGRESS.with(|p| p.replace(prev_progress));
    match r {
        Ok(v) => v,
        Err(_) => {
            write_stderr(b"greenrt: internal error in the ");
            write_stderr(name.as_bytes());
            if progressed {
                write_stderr(b" hook after the call had an effect; failing it with EIO\n");
                R::failure(libc::EIO)
            } else {
                write_stderr(b" hook; passing the call through\n");
                fallback()
            }
        }
    }
}

/// Runs a whole hook (`hook`, called by its `#[no_mangle]` symbol): a
/// panic outside its [`guarded`] cooperative path (in the bookkeeping
/// around the real call) is reported, then answered by the real call
/// (`real`) if no real call had been made yet, else by a failure with
/// `EIO`: an `accept` whose connection was taken, or a `write` whose bytes
/// went out, is never made twice. No panic reaches redhook's wrapper,
/// which would make the real call again whatever had happened.
#[inline]
pub fn contained<R: Failure>(name: &str, hook: impl FnOnce() -> R, real: impl FnOnce() -> R) -> R {
    let before = crate::real::calls_made();
    match panic::catch_unwind(AssertUnwindSafe(hook)) {
        Ok(v) => v,
        Err(_) => {
            write_stderr(b"greenrt: internal error in the ");
            write_stderr(name.as_bytes());
            if crate::real::calls_made() != before {
                write_stderr(b" hook after its real call; failing it with EIO\n");
                R::failure(libc::EIO)
            } else {
                write_stderr(b" hook; passing the call through\n");
                real()
            }
        }
    }
}

/// Runs a hook's park (the switch to the hub, while other greenlets of
/// this thread run) with the bypass flag cleared: the flag belongs to the
/// thread, so left set it would make every other greenlet's hooked calls
/// pass straight through (and block the thread) until this one resumes.
/// Restores the flag afterwards.
#[inline]
pub fn unguarded<R>(f: impl FnOnce() -> R) -> R {
    let prev = BYPASS.with(|b| b.replace(false));
    let r = f();
    BYPASS.with(|b| b.set(prev));
    r
}

/// Runs a runtime wait (`f`) as a hooked call's park: with the bypass flag
/// cleared (other greenlets run meanwhile, and their hooked calls must
/// cooperate too) and with signal interruption on, so that a signal
/// handler interrupting the hub's wait ends it with `-EINTR`. Returns the
/// wait's result and the point in this thread's handler history where it
/// began, for `wait::interrupted`.
pub fn park_interruptibly<R>(f: impl FnOnce() -> R) -> (R, handlers::Mark) {
    let since = handlers::mark();
    let r = unguarded(|| {
        // SAFETY: runtime entry point; no pointers.
        let prev = unsafe { (rt().set_signal_interruptible)(1) };
        let r = f();
        // SAFETY: as above.
        unsafe { (rt().set_signal_interruptible)(prev) };
        r
    });
    (r, since)
}

/// Runs a hook's cooperative path if the calling greenlet should
/// cooperate, else (or after a panic inside it) the real call: the router
/// of every hook that is not about one fd (for those, `coop::hooked`).
#[inline]
pub fn route<R: Failure>(name: &str, coop: impl FnOnce() -> R, real: impl FnOnce() -> R) -> R {
    if should_cooperate() {
        guarded(name, coop, real)
    } else {
        real()
    }
}

/// Defines the module `defs` of a hook family's `#[no_mangle]` libc
/// symbols (redhook), each one forwarding its arguments to the family's
/// hook function:
///
/// ```ignore
/// forward_hooks! {
///     fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => read_hook calls super::read;
/// }
/// ```
///
/// (the libc name and signature, redhook's name for the wrapper, the
/// hook). The types resolve in the calling module.
macro_rules! forward_hooks {
    ($( fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty => $wrapper:ident calls $hook:path; )*) => {
        /// The `#[no_mangle]` definitions (redhook), each calling the hook above.
        #[allow(
            static_mut_refs,
            missing_abi,
            non_camel_case_types,
            non_upper_case_globals,
            unused_unsafe,
            clippy::all,
            clippy::missing_safety_doc,
            missing_docs
        )]
        mod defs {
            #[allow(unused_imports)]
            use super::*;

            $(
                redhook::hook! {
                    unsafe fn $name($($arg: $ty),*) -> $ret => $wrapper {
                        $crate::hook::contained(
                            stringify!($name),
                            || $hook($($arg),*),
                            || redhook::real!($name)($($arg),*),
                        )
                    }
                }
            )*
        }
    };
}
pub(crate) use forward_hooks;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::errno;

    #[test]
    fn a_panic_before_any_effect_makes_the_real_call() {
        let mut fell_back = false;
        let r: isize = guarded(
            "test",
            || panic!("injected"),
            || {
                fell_back = true;
                7
            },
        );
        assert_eq!(r, 7);
        assert!(fell_back);
    }

    #[test]
    fn a_panic_after_an_effect_fails_with_eio_and_never_repeats_the_call() {
        let mut fell_back = false;
        let r: isize = guarded(
            "test",
            || {
                progressed();
                panic!("injected after progress")
            },
            || {
                fell_back = true;
                7
            },
        );
        assert_eq!((r, errno()), (-1, libc::EIO));
        assert!(!fell_back);
        // The mark belongs to that call only.
        let r: i32 = guarded("test", || panic!("again"), || 3);
        assert_eq!(r, 3);
    }
}
