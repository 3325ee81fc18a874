//! Signal handlers that run in greenlets (gevent's `gevent.signal_handler`).
//!
//! [`handler`] hands one signal to greenrt: each time it arrives, the
//! callback runs in a **new greenlet** on the *signal hub*, where it may
//! block, sleep, take locks and talk to other greenlets like any other
//! greenlet. [`Handle::cancel`] removes it; when the last greenrt handler
//! for a signal goes, the disposition that was there before the first one
//! (a handler, `SIG_IGN` or `SIG_DFL`) is restored exactly.
//!
//! ```no_run
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//!
//! let stop = Arc::new(AtomicBool::new(false));
//! let s = stop.clone();
//! // Ctrl-C asks the server loop to finish instead of killing the process.
//! let h = greenrt::signal::handler(libc::SIGINT, move || s.store(true, Ordering::Relaxed)).unwrap();
//! while !stop.load(Ordering::Relaxed) {
//!     greenrt::sleep(std::time::Duration::from_millis(50)); // serve...
//! }
//! h.cancel(); // Ctrl-C kills again
//! ```
//!
//! # How it works
//!
//! The handler greenrt installs with `sigaction` (`SA_SIGINFO | SA_RESTART
//! | SA_ONSTACK`) is async-signal-safe: it adds one to the signal's pending
//! counter (a lock-free atomic) and writes one byte to a non-blocking,
//! close-on-exec self-pipe, with raw syscalls (never through the preload's
//! hooks) and `errno` saved and restored. One internal greenlet on the
//! signal hub, `greenrt-signal-watcher`, waits for the pipe, takes the
//! counters, and spawns one greenlet per delivery for each handler of that
//! signal. The counters, not the bytes, say what arrived, so a full pipe
//! loses nothing; like the kernel, greenrt does not merge deliveries that
//! it has seen (two `raise`s run each handler twice), but the kernel itself
//! merges a standard signal that arrives while the same one is pending.
//!
//! # Which hub runs the handlers
//!
//! The signal hub is the **main thread's hub** whenever it exists, as in
//! gevent and Python, where signal handlers run in the main thread. If the
//! main thread has no hub (its `main()` never used greenrt, as in Rust's
//! test harness, or it only waits for worker threads), the hub of the
//! thread that installs the first handler serves instead, and keeps
//! serving until the main thread creates its hub (the handlers then move
//! there) or its thread exits (the next hub to be created, or the next
//! call to [`handler`], takes over; signals that arrive meanwhile are
//! counted and delivered then). Handlers only run while the signal hub
//! runs its event loop, that is, while its thread waits cooperatively.
//!
//! The watcher waits on an fd, so while any handler is installed the signal
//! hub never reports "this operation would block forever"
//! ([`LoopExit`](crate::LoopExit)): a wait there that nothing else could end
//! waits for a signal instead. Once the last handler is cancelled the
//! watcher exits and that check works again.
//!
//! # Rules
//!
//! - Signals never handed to greenrt keep their dispositions: greenrt only
//!   touches the signals passed to [`handler`].
//! - `SIGKILL` and `SIGSTOP` cannot be caught (`EINVAL`), and the signals
//!   glibc reserves for itself (32 and 33) are refused by `sigaction`. The
//!   synchronous fault signals `SIGSEGV`, `SIGBUS`, `SIGILL` and `SIGFPE`
//!   are refused too (`InvalidInput`): their handler must act before it
//!   returns, or the faulting instruction runs again, forever.
//! - `SIGCHLD`: greenrt's handler does not reap anything (the disposition
//!   is a handler, never `SIG_IGN`, which would make the kernel discard
//!   exit statuses). A callback should `waitpid` the pids it knows, never
//!   `waitpid(-1)`, which would steal statuses other code waits for.
//! - `SIGINT`/`SIGTERM`: while a handler is installed the signal no longer
//!   ends the process; the callback decides (for example it sets a flag or
//!   kills the server greenlets). Cancel the handle to get the old
//!   behaviour back.
//! - If the program itself changes a signal's disposition after greenrt
//!   installed its handler, cancelling the last greenrt handler leaves the
//!   program's choice in place instead of restoring the older one.
//! - After `fork`, the child keeps the handlers: the child's main-thread
//!   hub (created lazily) gets its own pipe and watcher.

mod delivery;
mod disposition;
mod pending;
mod registry;
mod watcher;

use std::collections::btree_map;
use std::io;
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use libc::c_int;

use crate::config::{self, LogLevel};
use crate::hub;
use crate::sys::signo::{check_signum, display};
pub use crate::sys::signo::{from_name, name};
use delivery::{handler_address, install, poke, PENDING};
use registry::{registry, Installed, SigState, NEXT_ID};

/// A greenrt signal handler, returned by [`handler`] (gevent's
/// `signal_handler` object).
///
/// Dropping it does **not** cancel the handler, so `let _ =
/// signal::handler(...)` installs one for the life of the process; call
/// [`cancel`](Handle::cancel) to remove it. It is `Send` and `Sync`:
/// any thread may cancel it.
#[derive(Debug)]
pub struct Handle {
    signum: c_int,
    id: u64,
}

impl Handle {
    /// The signal this handler is for.
    pub fn signum(&self) -> c_int {
        self.signum
    }

    /// True until [`cancel`](Self::cancel) is called.
    pub fn is_active(&self) -> bool {
        registry()
            .sigs
            .get(&self.signum)
            .is_some_and(|st| st.handlers.iter().any(|e| e.id == self.id))
    }

    /// Removes this handler (gevent's `cancel()`); idempotent. Deliveries
    /// not yet dispatched no longer run it. When it was the last greenrt
    /// handler for its signal, the disposition from before the first one
    /// is restored exactly (unless the program has installed its own
    /// since), and when it was the last of all, the watcher greenlet exits.
    pub fn cancel(&self) {
        let mut reg = registry();
        let Some(st) = reg.sigs.get_mut(&self.signum) else {
            return;
        };
        let before = st.handlers.len();
        st.handlers.retain(|e| e.id != self.id);
        if st.handlers.len() == before || !st.handlers.is_empty() {
            return;
        }
        let Some(st) = reg.sigs.remove(&self.signum) else {
            return;
        };
        // SAFETY: all-zero is a valid `sigaction` (no handler, empty mask,
        // no flags) and only serves as the out-parameter.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a query of a valid signal into a valid out-parameter.
        let queried = unsafe { libc::sigaction(self.signum, std::ptr::null(), &mut now) } == 0;
        if queried && now.sa_sigaction == handler_address() {
            if let Err(e) = disposition::set(self.signum, &st.prev) {
                config::log(
                    LogLevel::Error,
                    format_args!("cannot restore the disposition of {}: {e}", display(self.signum)),
                );
            }
        }
        // Deliveries counted before the restore have no handler left.
        PENDING.clear(self.signum);
        if reg.sigs.is_empty() {
            poke(); // the watcher wakes and exits
        }
    }
}

/// Runs `f` in a new greenlet on the signal hub each time `signum`
/// arrives (gevent's `gevent.signal_handler(signum, handler)`).
///
/// The signal hub is the main thread's hub, or while the main thread has
/// none, the hub of the thread that installed the first handler (see the
/// [module docs](self)). Several handlers for one signal all run, in
/// the order they were installed. Callable from any thread.
///
/// Errors: `EINVAL` for `SIGKILL`, `SIGSTOP`, numbers outside 1..=64 and
/// the C library's reserved signals; `InvalidInput` for the fault
/// signals `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`; the `sigaction` or
/// `pipe2` error otherwise.
#[track_caller]
pub fn handler<F>(signum: c_int, f: F) -> io::Result<Handle>
where
    F: Fn() + Send + Sync + 'static,
{
    check_signum(signum)?;
    let site = Location::caller();
    let mut reg = registry();
    while !reg.ensure_watcher()? {
        // No hub anywhere to run the watcher: this thread's becomes the
        // signal hub. Creating it calls `on_hub_created`, which takes the
        // registry lock, so it must not be held here.
        drop(reg);
        hub::with(|_| ());
        reg = registry();
    }
    // If this fails, a watcher started just now finds no signal to watch
    // on its first look and exits.
    let st = match reg.sigs.entry(signum) {
        btree_map::Entry::Occupied(o) => o.into_mut(),
        btree_map::Entry::Vacant(v) => {
            let prev = install(signum)?;
            PENDING.clear(signum);
            v.insert(SigState {
                prev,
                handlers: Vec::new(),
            })
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    st.handlers.push(Installed {
        id,
        f: Arc::new(f),
        site,
    });
    Ok(Handle { signum, id })
}
