//! Process-wide close epochs of fd numbers.
//!
//! A hub's poller remembers which fd numbers it has registered, so that a
//! wait costs no syscall. A number closed and reused *on another thread*
//! names another file, which that cache would take for registered: a wait
//! on it would never wake. So every close the runtime is told of
//! (`io::cancel_wait`, the preload's `close`, `dup2` and `close_range`
//! hooks through `RuntimeV1::cancel_wait`) ends the number's epoch here,
//! in one table all hubs read, and a cached registration counts only in
//! the epoch it was made in.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

/// Numbers below this have an epoch; above, every wait registers afresh.
const TRACKED: usize = 65536;

static EPOCHS: [AtomicU32; TRACKED] = [const { AtomicU32::new(0) }; TRACKED];

/// The current epoch of `fd` (`None`: not tracked).
#[inline]
pub(crate) fn current(fd: RawFd) -> Option<u32> {
    let i = usize::try_from(fd).ok().filter(|&i| i < TRACKED)?;
    Some(EPOCHS[i].load(Ordering::Acquire))
}

/// `fd` is being closed or replaced: registrations made so far are stale.
/// Async-signal-safe (one atomic add).
#[inline]
pub(crate) fn end(fd: RawFd) {
    if let Some(i) = usize::try_from(fd).ok().filter(|&i| i < TRACKED) {
        EPOCHS[i].fetch_add(1, Ordering::AcqRel);
    }
}
