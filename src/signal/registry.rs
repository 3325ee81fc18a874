//! The handlers greenrt holds, per signal, with the disposition each
//! replaced; the self-pipe's read end; and which hub runs the watcher.

use std::collections::BTreeMap;
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use libc::c_int;

use super::delivery::{SignalPipe, PENDING, WAKE};
use super::disposition;
use super::watcher::{watch, WATCHER_NAME};
use crate::hub::{self, HubShared};
use crate::sys::fds::{RuntimeFd, RuntimeFdRef};
use crate::sys::syscall;

/// Handle ids and watcher generations.
pub(super) static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A handler callback, shared by every delivery that runs it.
pub(super) type Callback = Arc<dyn Fn() + Send + Sync>;

/// One installed handler: its id, callback and where it was installed.
pub(super) struct Installed {
    pub(super) id: u64,
    pub(super) f: Callback,
    pub(super) site: &'static Location<'static>,
}

/// What greenrt holds for one signal.
pub(super) struct SigState {
    /// The disposition before greenrt's first handler for this signal.
    pub(super) prev: disposition::Disposition,
    pub(super) handlers: Vec<Installed>,
}

/// Deliveries of one signal to dispatch, and the handlers they run.
pub(super) struct Due {
    pub(super) sig: c_int,
    pub(super) times: u32,
    pub(super) handlers: Vec<(Callback, &'static Location<'static>)>,
}

/// The self-pipe's two ends, and the process that created it. Both are
/// runtime fds that move out of the program's way (`fds::relocate`).
struct Pipe {
    read: RuntimeFd,
    write: RuntimeFd,
    pid: i32,
}

/// The watcher greenlet now serving: its generation, process and hub.
struct Watcher {
    gen: u64,
    pid: i32,
    hub: Weak<HubShared>,
}

impl Watcher {
    /// Its hub, if it can still run (same process, hub alive).
    fn hub(&self) -> Option<Arc<HubShared>> {
        if self.pid != getpid() {
            return None;
        }
        self.hub.upgrade().filter(|s| s.handle().is_some())
    }
}

/// Every handled signal, the pipe and the watcher, under one lock.
pub(super) struct Registry {
    pub(super) sigs: BTreeMap<c_int, SigState>,
    pipe: Option<Pipe>,
    watcher: Option<Watcher>,
}

/// The process's one registry.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    sigs: BTreeMap::new(),
    pipe: None,
    watcher: None,
});

/// Locks the registry (a panic while it was held poisons nothing here).
pub(super) fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The main thread's hub, if it exists and runs.
pub(super) fn main_hub() -> Option<Arc<HubShared>> {
    let pid = getpid();
    hub::all_hubs()
        .into_iter()
        .find(|s| s.tid == pid && s.handle().is_some())
}

/// Where the watcher should run.
enum Target {
    Hub(Arc<HubShared>),
    /// Nothing better: this thread's hub, which does not exist yet.
    NeedOwnHub,
}

impl Registry {
    /// The read end of this process's self-pipe, created on first use
    /// (and again in the child of a fork, which must not share it).
    fn ensure_pipe(&mut self) -> io::Result<RuntimeFdRef> {
        let pid = getpid();
        if let Some(p) = &self.pipe {
            if p.pid == pid {
                return Ok(p.read.by_ref());
            }
        }
        let [read, write] = RuntimeFd::create_pair(|| {
            let mut fds = [0 as c_int; 2];
            syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
            Ok(fds)
        })?;
        let read_ref = read.by_ref();
        WAKE.store(write.by_ref().into_raw(), Ordering::Release);
        if let Some(old) = self.pipe.replace(Pipe { read, write, pid }) {
            // The parent's pipe, inherited: our copy of its read end is
            // closed (dropped); its write end is left open on purpose: a
            // handler running on another thread may have loaded its slot
            // already, and must find the old pipe there, not a reused
            // number.
            std::mem::forget(old.write);
        }
        Ok(read_ref)
    }

    /// Where the watcher should run now (see the module docs of `signal`).
    fn target(&self) -> Target {
        if let Some(m) = main_hub() {
            return Target::Hub(m);
        }
        if let Some(h) = self.watcher.as_ref().and_then(Watcher::hub) {
            return Target::Hub(h);
        }
        match hub::try_with_existing(|h| h.shared.clone()) {
            Some(s) => Target::Hub(s),
            None => Target::NeedOwnHub,
        }
    }

    /// Makes sure a watcher runs on the right hub (see the module docs).
    /// `Ok(false)` when this thread needs a hub first (create it without
    /// holding the registry lock, then call again).
    pub(super) fn ensure_watcher(&mut self) -> io::Result<bool> {
        let read = self.ensure_pipe()?;
        let target = match self.target() {
            Target::Hub(t) => t,
            Target::NeedOwnHub => return Ok(false),
        };
        let current = self.watcher.as_ref().and_then(Watcher::hub);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &target)) {
            return Ok(true);
        }
        let gen = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let here = hub::try_with_existing(|h| Arc::ptr_eq(&h.shared, &target)).unwrap_or(false);
        if here {
            crate::greenlet::Builder::new()
                .name(WATCHER_NAME)
                .spawn(move || watch(gen, read))?;
        } else {
            let gone = || io::Error::other("greenrt::signal: the signal hub's thread has exited");
            let handle = target.handle().ok_or_else(gone)?;
            handle
                .spawn(move || {
                    crate::greenlet::current().set_name(WATCHER_NAME);
                    watch(gen, read)
                })
                .map_err(|_| gone())?;
        }
        self.watcher = Some(Watcher {
            gen,
            pid: getpid(),
            hub: Arc::downgrade(&target),
        });
        if let Some(handle) = current.and_then(|old| old.handle()) {
            // Wake the old watcher on its own hub: it sees that it is
            // retired and exits. (A byte in the shared pipe would not do:
            // the new watcher may drain it first, and epoll then reports
            // nothing to the old one.)
            let _ = handle.spawn(move || crate::io::cancel_wait(read.number()));
        }
        Ok(true)
    }

    /// Forgets the watcher (it has exited or is about to).
    pub(super) fn clear_watcher(&mut self) {
        self.watcher = None;
    }

    /// True if the watcher of generation `gen` is the one serving.
    pub(super) fn is_current(&self, gen: u64) -> bool {
        self.watcher.as_ref().is_some_and(|w| w.gen == gen && w.pid == getpid())
    }

    /// Drains the self-pipe, then takes the pending counters of every
    /// handled signal (in that order: see `pending.rs`), with the handlers
    /// to run for each.
    pub(super) fn take_pending(&self, read: RuntimeFdRef) -> Vec<Due> {
        PENDING
            .collect(&SignalPipe { read: Some(read) }, self.sigs.keys().copied())
            .into_iter()
            .filter_map(|(sig, times)| {
                let st = self.sigs.get(&sig)?;
                Some(Due {
                    sig,
                    times,
                    handlers: st.handlers.iter().map(|e| (e.f.clone(), e.site)).collect(),
                })
            })
            .collect()
    }
}

/// This process's id (a fork's child sees a new one).
pub(super) fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}
