//! The deliveries the async-signal handler has counted and the watcher
//! has not dispatched yet, and the order both sides keep with the
//! self-pipe so that none is lost.
//!
//! - The handler ([`Pending::record`]) adds one to the signal's counter,
//!   **then** pokes the pipe.
//! - The watcher ([`Pending::collect`]) drains the pipe, **then** takes
//!   the counters, then waits for the pipe: a delivery counted after the
//!   take pokes the pipe after the drain, so the wait ends at once.
//!
//! `loom-tests/` model-checks this very file (built against loom's
//! atomics under `cfg(loom)`); it uses nothing of the crate.

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, Ordering};

/// Signals 1..=64 on Linux, indexed by number (0 unused).
pub(crate) const SIGNALS: usize = 65;

/// The two ends of the self-pipe as the protocol sees them.
pub(crate) trait SelfPipe {
    /// Makes the pipe readable (the handler's side; async-signal-safe).
    fn poke(&self);
    /// Empties the pipe (the watcher's side).
    fn drain(&self);
}

/// One counter per signal.
pub(crate) struct Pending {
    counts: [AtomicU32; SIGNALS],
}

impl Pending {
    /// All zero.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Pending {
        Pending {
            counts: [const { AtomicU32::new(0) }; SIGNALS],
        }
    }

    /// All zero (loom's atomics are not `const`).
    #[cfg(loom)]
    pub(crate) fn new() -> Pending {
        Pending {
            counts: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Counts one delivery of `sig`, then pokes `pipe`. Lock-free:
    /// callable from a signal handler. Numbers out of range are ignored.
    pub(crate) fn record(&self, sig: i32, pipe: &impl SelfPipe) {
        if let Some(c) = usize::try_from(sig).ok().and_then(|i| self.counts.get(i)) {
            c.fetch_add(1, Ordering::AcqRel);
        }
        pipe.poke();
    }

    /// Drains `pipe`, then takes the counts of `sigs`: the deliveries to
    /// dispatch now, as (signal, times) for each signal that arrived.
    pub(crate) fn collect(&self, pipe: &impl SelfPipe, sigs: impl IntoIterator<Item = i32>) -> Vec<(i32, u32)> {
        pipe.drain();
        sigs.into_iter()
            .filter_map(|sig| {
                let times = self.counts.get(usize::try_from(sig).ok()?)?.swap(0, Ordering::AcqRel);
                (times > 0).then_some((sig, times))
            })
            .collect()
    }

    /// Forgets the deliveries of `sig` counted so far (its handlers are
    /// gone, or it is about to get its first one).
    pub(crate) fn clear(&self, sig: i32) {
        if let Some(c) = usize::try_from(sig).ok().and_then(|i| self.counts.get(i)) {
            c.store(0, Ordering::Release);
        }
    }
}
