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
//!   panic, reports it once on stderr, and falls back to the real call.
//! - **One router** ([`route`]) and **one way to define a hook**
//!   ([`forward_hooks!`]): the `#[no_mangle]` libc symbol forwards to the
//!   family's hook function (the variadic `fcntl`/`ioctl` are the one
//!   exception: `shim.c`, since stable Rust cannot define a variadic).

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use crate::config::{self, Hooks};
use crate::errno::write_stderr;
use crate::handlers;
use crate::runtime::rt;

thread_local! {
    static BYPASS: Cell<bool> = const { Cell::new(false) };
}

/// True while the calling thread is inside a hook's cooperative path (or
/// its TLS is gone: thread teardown), so nested calls must pass through.
#[inline]
pub fn bypassed() -> bool {
    BYPASS.try_with(|b| b.get()).unwrap_or(true)
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
/// is reported and replaced by the real call's behaviour (`fallback`).
#[inline]
pub fn guarded<R>(name: &str, coop: impl FnOnce() -> R, fallback: impl FnOnce() -> R) -> R {
    let prev = BYPASS.with(|b| b.replace(true));
    let r = panic::catch_unwind(AssertUnwindSafe(coop));
    BYPASS.with(|b| b.set(prev));
    match r {
        Ok(v) => v,
        Err(_) => {
            write_stderr(b"greenrt: internal error in the ");
            write_stderr(name.as_bytes());
            write_stderr(b" hook; passing the call through\n");
            fallback()
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
pub fn route<R>(name: &str, coop: impl FnOnce() -> R, real: impl FnOnce() -> R) -> R {
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
                        $hook($($arg),*)
                    }
                }
            )*
        }
    };
}
pub(crate) use forward_hooks;
