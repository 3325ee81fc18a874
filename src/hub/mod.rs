//! The hub: one per OS thread, created lazily on first use, never shared.
//!
//! Like gevent's hub it owns the event loop (a poller, timers, a ready
//! queue) and every greenlet of its thread. Unlike gevent's it has no stack
//! of its own: the scheduler runs on the thread's own stack (the *root*
//! greenlet) whenever the root blocks, so a switch from one greenlet to
//! another is one suspend and one resume, and `main()` needs no setup call.
//!
//! Scheduling is FIFO. Fairness: after every 64 greenlet runs the hub polls
//! fds (without blocking) and fires due timers, so a greenlet that loops on
//! `yield_now` cannot starve I/O or timers; when nothing is runnable it
//! blocks in the poller until the next timer.
//!
//! Other threads reach a hub through a [`HubHandle`] (an eventfd plus a
//! queue), like libev's async watcher.

mod fd_waiters;
mod local;
mod mailbox;
mod observers;
mod remote;
mod scheduler;
mod shared;
pub(crate) mod task;
mod task_lifecycle;
pub(crate) mod timer;
pub(crate) mod wait;

pub(crate) use fd_waiters::FdWait;
pub(crate) use local::*;
pub(crate) use observers::HUB_STARTED;
pub(crate) use remote::RemoteWaker;
pub use remote::{HubGone, HubHandle};
pub(crate) use scheduler::Hub;
pub(crate) use shared::{all_hubs, HubShared};
pub(crate) use task::next_id;
pub use task_lifecycle::GreenletExit;
pub(crate) use task_lifecycle::{check, deliver, finish, payload_message, spawn_link, spawn_task, TimeoutUnwind};

/// Number of greenlet switches this thread's hub has performed: a
/// test-visible proof of cooperation.
pub fn switch_count() -> u64 {
    with(|h| h.switches())
}

/// The poller backend this thread's hub uses (`"epoll"` or `"poll"`).
pub fn backend() -> &'static str {
    with(|h| h.backend_name())
}

/// Greenlets spawned on this thread's hub that have not finished yet.
pub fn live_greenlets() -> usize {
    with(|h| h.live_greenlets())
}
