//! The part of every hub that other threads may read (the blocking monitor,
//! run info), and the process-wide list of hubs.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, Weak};

use super::remote::*;

/// The part of a hub that other threads may read: what the blocking
/// monitor and run info need. Updated with relaxed stores on every switch
/// (a few nanoseconds), read only by observers.
pub(crate) struct HubShared {
    /// Greenlet switches so far.
    pub(crate) switches: AtomicU64,
    /// Id of the greenlet running now (the root's id when none).
    pub(crate) running: AtomicU64,
    /// Spawn site of the greenlet running now (null for the root).
    pub(crate) running_site: AtomicPtr<Location<'static>>,
    /// True while the hub waits in its poller (idle, not blocked).
    pub(crate) idle: AtomicBool,
    /// Blocking waits in the poller so far: lets the monitor see that the
    /// loop ran between two samples even when no greenlet switched (the
    /// root sleeping while the others wait on fds).
    pub(crate) polls: AtomicU64,
    /// Greenlets spawned and not yet dead.
    pub(crate) live: AtomicUsize,
    /// Id of the thread's root greenlet.
    pub(crate) root_id: u64,
    /// Kernel thread id and name of the hub's thread.
    pub(crate) tid: i32,
    pub(crate) thread_name: String,
    /// Names given to live greenlets (only named ones are listed).
    pub(crate) names: Mutex<HashMap<u64, String>>,
    pub(super) remote: Weak<Remote>,
}

impl HubShared {
    /// A handle to post work to this hub, while it is alive.
    pub(crate) fn handle(&self) -> Option<HubHandle> {
        let remote = self.remote.upgrade()?;
        if remote.is_closed() {
            return None;
        }
        Some(HubHandle { remote })
    }
}

/// Every hub of the process, for the monitor and run info.
pub(super) static HUBS: Mutex<Vec<Weak<HubShared>>> = Mutex::new(Vec::new());

/// The shared state of every live hub.
pub(crate) fn all_hubs() -> Vec<Arc<HubShared>> {
    let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
    hubs.retain(|w| w.strong_count() > 0);
    hubs.iter().filter_map(Weak::upgrade).collect()
}
