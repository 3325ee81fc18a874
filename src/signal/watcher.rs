//! The watcher greenlet on the signal hub, and what a new hub does for it.

use std::panic::Location;
use std::sync::Once;

use libc::c_int;

use super::delivery::poke;
use super::registry::{registry, Callback};
use crate::config::{self, LogLevel};
use crate::sys::fds::RuntimeFdRef;
use crate::sys::signo::display;
use crate::sys::Interest;

/// The watcher greenlet's name, as shown in run info.
pub(super) const WATCHER_NAME: &str = "greenrt-signal-watcher";

/// Clears the watcher record if its greenlet ends abnormally (it is never
/// killed by greenrt, but its end must not leave handlers without one),
/// and drops the pipe from its hub's poller.
struct WatchExit {
    gen: u64,
    read: RuntimeFdRef,
}

impl Drop for WatchExit {
    fn drop(&mut self) {
        let mut reg = registry();
        if reg.is_current(self.gen) {
            reg.clear_watcher();
        }
        drop(reg);
        crate::io::cancel_wait(self.read.number());
        // A wakeup this watcher consumed may belong to its successor.
        poke();
    }
}

/// The watcher greenlet's loop: drains the pipe, takes the counters and
/// runs the handlers, until it is retired or no handler is left.
pub(super) fn watch(gen: u64, read: RuntimeFdRef) {
    let _exit = WatchExit { gen, read };
    loop {
        let batch = {
            let mut reg = registry();
            if !reg.is_current(gen) {
                return; // retired: another hub watches now
            }
            if reg.sigs.is_empty() {
                reg.clear_watcher(); // decided under the lock `handler` takes
                return;
            }
            // Drains the pipe before taking the counters: a signal that
            // arrives after the drain leaves a byte that wakes the wait below.
            reg.take_pending(read)
        };
        for due in batch {
            for _ in 0..due.times {
                for (f, site) in &due.handlers {
                    run_callback(due.sig, f.clone(), site);
                }
            }
        }
        // By the read end's number now: the program may have taken the
        // old one (`fds::relocate`), which ends a wait with EBADF.
        if let Err(e) = crate::io::wait(read.number(), Interest::READ, None) {
            // EBADF: someone called `cancel_wait` on the pipe; wait again.
            config::log(
                LogLevel::Debug,
                format_args!("signal watcher: wait on the pipe failed: {e}"),
            );
        }
    }
}

/// Starts one handler run in a new greenlet.
fn run_callback(sig: c_int, f: Callback, site: &Location<'_>) {
    let name = format!("{} handler (installed at {site})", display(sig));
    if let Err(e) = crate::greenlet::Builder::new().name(name).spawn(move || f()) {
        config::log(
            LogLevel::Error,
            format_args!("cannot start the {} handler installed at {site}: {e}", display(sig)),
        );
    }
}

#[linkme::distributed_slice(crate::hub::HUB_STARTED)]
static ON_HUB_STARTED: fn() = on_hub_created;

/// Called by the hub right after it is created (on its thread): installs
/// the `GREENRT_RUN_INFO_SIGNAL` handler once per process, and moves the
/// signal watcher to this hub when it should run here (this is the main
/// thread's hub, or the old signal hub has exited).
fn on_hub_created() {
    if let Some(sig) = config::get().run_info_signal {
        static RUN_INFO: Once = Once::new();
        RUN_INFO.call_once(|| {
            if let Err(e) = super::handler(sig, crate::run_info::print_run_info) {
                eprintln!(
                    "greenrt: cannot install the GREENRT_RUN_INFO_SIGNAL handler for {}: {e}",
                    display(sig)
                );
            }
        });
    }
    let mut reg = registry();
    if reg.sigs.is_empty() {
        return;
    }
    if let Err(e) = reg.ensure_watcher() {
        config::log(LogLevel::Error, format_args!("cannot start the signal watcher: {e}"));
    }
}
