//! The hub's registration list: what runs on a thread right after its hub
//! starts. The hub names nothing built on it; observers add themselves
//! (the stack-overflow handler, the blocking monitor's auto-start, the
//! signal watcher, the ABI table's registration with the preload):
//!
//! ```ignore
//! #[linkme::distributed_slice(crate::hub::HUB_STARTED)]
//! static ON_HUB_STARTED: fn() = on_hub_started;
//! ```
//!
//! The list is assembled by the linker (`linkme`), so an observer is
//! registered by being compiled in, before any code runs. Observers run in
//! no particular order, on the new hub's thread, with the hub already
//! reachable (they may spawn greenlets on it).

/// Functions run on a thread right after its hub starts.
#[linkme::distributed_slice]
pub(crate) static HUB_STARTED: [fn()];

/// Runs every registered observer (from hub creation).
pub(super) fn hub_started() {
    for f in HUB_STARTED {
        f();
    }
}
