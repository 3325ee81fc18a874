//! Groups and pools of greenlets (gevent's `gevent.pool`).
//!
//! A [`Group`] tracks a set of running greenlets: it can wait for them all
//! ([`Group::join`]), kill them all ([`Group::kill`]), and run a function
//! over many items ([`Group::map`], [`Group::imap`],
//! [`Group::imap_unordered`]). A greenlet leaves its group when it finishes.
//! A [`Pool`] is a group with a size bound: spawning into a full pool waits,
//! cooperatively, until a member finishes, so a pool limits concurrency.
//!
//! ```
//! use std::time::{Duration, Instant};
//! let pool = greenrt::pool::Pool::new(10);
//! let start = Instant::now();
//! let squares = pool
//!     .map(|i: u64| { greenrt::sleep(Duration::from_millis(50)); i * i }, 0..30)
//!     .unwrap();
//! assert_eq!(squares[7], 49);
//! // 30 items, 10 at a time: three rounds of 50 ms.
//! assert!(start.elapsed() >= Duration::from_millis(150));
//! ```
//!
//! Handles are `!Send`: a group belongs to the hub of the thread that
//! made it, like the greenlets in it. Cloning a handle gives another
//! handle to the same group.
//!
//! # Failures
//!
//! A greenlet that panics leaves its group like any other. In `map`, the
//! first failure in input order becomes the result (gevent re-raises it):
//! `map` returns `Err` with that error and kills the greenlets it spawned
//! that are still running. The iterators of `imap` and `imap_unordered`
//! yield each item's `Result` and keep going after a failure; dropping one
//! early kills the greenlets it spawned and stops feeding items.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::greenlet::{self, Greenlet, GreenletRef};
use crate::hub::deliver;
use crate::hub::wait::{WaitQueue, WaitResult};

// ===== impl Group =====

struct Inner {
    /// Members by greenlet id (ids grow with spawn order).
    members: RefCell<BTreeMap<u64, GreenletRef>>,
    /// `None` for a plain group, the bound for a pool.
    capacity: Option<usize>,
    /// Greenlets waiting for a free slot (pools only).
    slot_free: WaitQueue,
    /// `join` and `kill` callers: woken when a member joins, and when the
    /// group shrinks to one member or none.
    changed: WaitQueue,
}

/// A set of greenlets that can be joined or killed together (gevent's
/// `gevent.pool.Group`). Greenlets leave the group when they finish.
#[derive(Clone)]
pub struct Group {
    inner: Rc<Inner>,
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

/// Requests a kill of `g` unless it is the calling greenlet (killing
/// yourself would unwind the caller, and may run inside a destructor).
fn kill_other(g: &GreenletRef) {
    if g.id() != greenlet::current().id() {
        g.kill_async();
    }
}

/// Runs its closure when dropped. Moved into a greenlet's body, it runs
/// when the body ends however it ends (return, panic, kill), or when a
/// greenlet killed before it started (or left without a stack) drops its
/// body: always before the greenlet is marked dead and its joiners wake,
/// and without a switch in between.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl Group {
    /// An empty, unbounded group.
    pub fn new() -> Group {
        Group::with_capacity(None)
    }

    fn with_capacity(capacity: Option<usize>) -> Group {
        Group {
            inner: Rc::new(Inner {
                members: RefCell::new(BTreeMap::new()),
                capacity,
                slot_free: WaitQueue::labeled("Pool slot"),
                changed: WaitQueue::labeled("Group change"),
            }),
        }
    }

    /// Spawns `f` in a new greenlet that belongs to this group (gevent's
    /// `Group.spawn`). In a full [`Pool`] this first waits, cooperatively,
    /// until a member finishes.
    ///
    /// Fails with `Error::WouldBlockForever` when the pool is full and
    /// nothing could ever free a slot (gevent's `LoopExit`). Kill and
    /// Timeout unwind a caller that waits. Panics like [`crate::spawn`]
    /// when no stack can be mapped.
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Result<Greenlet<T>, Error> {
        self.spawn_with_exit(f, |_| {})
    }

    /// Spawns a member; `on_exit(id)` runs right after it has left the
    /// group.
    ///
    /// A member spawned here leaves from inside its own body (an
    /// [`OnDrop`] guard), not through a link: that costs no extra greenlet,
    /// and no one ever sees a dead greenlet still counted as a member
    /// (a link runs in a greenlet of its own, after the joiners).
    #[track_caller]
    fn spawn_with_exit<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
        on_exit: impl FnOnce(u64) + 'static,
    ) -> Result<Greenlet<T>, Error> {
        self.wait_slot(None, true)?;
        let id = Rc::new(Cell::new(0));
        let (id2, group) = (id.clone(), Rc::downgrade(&self.inner));
        let leave = OnDrop(Some(move || {
            if let Some(inner) = group.upgrade() {
                Group { inner }.remove(id2.get());
            }
            on_exit(id2.get());
        }));
        // No switch from finding the slot to taking it, and none before
        // the id is known (the body cannot run or be dropped until then).
        let g = greenlet::spawn(move || {
            let _leave = leave;
            f()
        });
        id.set(g.id());
        self.insert(&g);
        Ok(g)
    }

    /// Adds a greenlet spawned elsewhere (gevent's `Group.add`); it leaves
    /// when it finishes, through a [`link`](Greenlet::link) (so it still
    /// counts until that link has run). In a full [`Pool`] this waits for a
    /// free slot first. Adding a member again, or a dead greenlet, does
    /// nothing.
    pub fn add<T: 'static>(&self, g: &Greenlet<T>) -> Result<(), Error> {
        if g.dead() || self.contains(g) {
            return Ok(());
        }
        self.wait_slot(None, true)?;
        if g.dead() || self.contains(g) {
            return Ok(());
        }
        self.insert(g);
        let group = Rc::downgrade(&self.inner);
        g.link(move |g| {
            if let Some(inner) = group.upgrade() {
                Group { inner }.remove(g.id());
            }
        });
        Ok(())
    }

    fn insert(&self, g: &GreenletRef) {
        self.inner.members.borrow_mut().insert(g.id(), g.clone());
        // A `kill` in progress must kill the newcomer too.
        self.inner.changed.notify_all();
    }

    fn remove(&self, id: u64) -> bool {
        let (removed, left) = {
            let mut m = self.inner.members.borrow_mut();
            (m.remove(&id).is_some(), m.len())
        };
        if removed {
            self.inner.slot_free.notify_one();
            if left <= 1 {
                self.inner.changed.notify_all();
            }
        }
        removed
    }

    /// Stops tracking `g` without touching it (gevent's `Group.discard`);
    /// in a [`Pool`] its slot is free at once.
    pub fn discard(&self, g: &impl AsRef<GreenletRef>) {
        self.remove(g.as_ref().id());
    }

    /// Number of members (gevent's `len(group)`).
    pub fn len(&self) -> usize {
        self.inner.members.borrow().len()
    }

    /// True when the group has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `g` is a member (gevent's `greenlet in group`).
    pub fn contains(&self, g: &impl AsRef<GreenletRef>) -> bool {
        self.inner.members.borrow().contains_key(&g.as_ref().id())
    }

    /// The members, in the order they joined the group.
    pub fn greenlets(&self) -> Vec<GreenletRef> {
        self.inner.members.borrow().values().cloned().collect()
    }

    /// Waits until the group is empty, at most `timeout` (gevent's
    /// `Group.join`); greenlets added meanwhile are waited for too.
    ///
    /// `Err(Error::TimedOut)` if members remain at the deadline;
    /// `Err(Error::WouldBlockForever)` if nothing could ever finish them,
    /// or if the caller is itself a member (it would wait for itself).
    pub fn join(&self, timeout: Option<Duration>) -> Result<(), Error> {
        if self.contains(&greenlet::current()) {
            return Err(Error::WouldBlockForever);
        }
        let deadline = deadline(timeout);
        while !self.is_empty() {
            self.wait_changed(deadline)?;
        }
        Ok(())
    }

    /// Kills every member and waits until they are gone, at most `timeout`
    /// (gevent's `Group.kill`). Greenlets added while it waits are killed
    /// too; each member is killed once. A caller that is itself a member
    /// is not killed: the call returns once it is the last member left.
    pub fn kill(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let deadline = deadline(timeout);
        let me = greenlet::current().id();
        let mut dying = HashSet::new();
        loop {
            let others: Vec<GreenletRef> = self
                .inner
                .members
                .borrow()
                .values()
                .filter(|g| g.id() != me)
                .cloned()
                .collect();
            if others.is_empty() {
                return Ok(());
            }
            for g in others {
                // Never twice: a second kill could interrupt a destructor
                // that waits during the first kill's unwinding.
                if dying.insert(g.id()) {
                    g.kill_async();
                }
            }
            self.wait_changed(deadline)?;
        }
    }

    fn wait_changed(&self, deadline: Option<Instant>) -> Result<(), Error> {
        match self.inner.changed.wait(deadline) {
            WaitResult::Notified => Ok(()),
            WaitResult::TimedOut => Err(Error::TimedOut),
            WaitResult::LoopExit => Err(Error::WouldBlockForever),
            // `changed` is only ever notified with notify_all: a consumed
            // notification has no one else to go to.
            WaitResult::Interrupted { interrupt, .. } => deliver(interrupt),
        }
    }

    /// Waits until the group has room. `take` says whether the caller will
    /// use the slot; one that only looks passes its wakeup on.
    fn wait_slot(&self, deadline: Option<Instant>, take: bool) -> Result<(), Error> {
        let Some(cap) = self.inner.capacity else {
            return Ok(());
        };
        let mut woken = false;
        while self.len() >= cap {
            // A waiter that was woken and lost the slot to a greenlet that
            // did not wait keeps its place at the front.
            let r = if woken {
                self.inner.slot_free.wait_front(deadline)
            } else {
                self.inner.slot_free.wait(deadline)
            };
            match r {
                WaitResult::Notified => woken = true,
                WaitResult::TimedOut => return Err(Error::TimedOut),
                WaitResult::LoopExit => return Err(Error::WouldBlockForever),
                WaitResult::Interrupted { interrupt, notified } => {
                    if notified {
                        self.inner.slot_free.notify_one();
                    }
                    deliver(interrupt)
                }
            }
        }
        if woken && !take {
            self.inner.slot_free.notify_one();
        }
        Ok(())
    }

    // ===== map =====

    /// Runs `f` on every item, each in its own member greenlet, and returns
    /// the results in input order (gevent's `Group.map`). In a [`Pool`]
    /// at most `size` run at once.
    ///
    /// Fails fast: as soon as one greenlet fails (a panic, a kill), `map`
    /// kills the others it spawned, stops feeding items, and returns that
    /// error (gevent re-raises it). Kill and Timeout unwind the caller and
    /// kill the greenlets of this call too.
    pub fn map<T, R, F, I>(&self, f: F, items: I) -> Result<Vec<R>, Error>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'static,
        T: 'static,
        R: 'static,
    {
        // Collect in completion order, so that the first failure ends the
        // call at once, then put the results back in input order.
        let mut out = Vec::new();
        let numbered = move |(i, t): (usize, T)| (i, f(t));
        for r in self.imap_unordered(numbered, items.into_iter().enumerate()) {
            out.push(r?);
        }
        out.sort_unstable_by_key(|(i, _)| *i);
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }

    /// Like [`map`](Self::map), lazily: an iterator that yields each item's
    /// result in input order, as soon as it and every earlier one are done
    /// (gevent's `Group.imap`). A background greenlet (not a member) feeds
    /// items to new members as the group has room.
    pub fn imap<T, R, F, I>(&self, f: F, items: I) -> IMap<R>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'static,
        T: 'static,
        R: 'static,
    {
        IMap::start(self.clone(), f, items.into_iter(), true)
    }

    /// Like [`imap`](Self::imap), but yields results in the order the
    /// greenlets finish (gevent's `Group.imap_unordered`).
    pub fn imap_unordered<T, R, F, I>(&self, f: F, items: I) -> IMap<R>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'static,
        T: 'static,
        R: 'static,
    {
        IMap::start(self.clone(), f, items.into_iter(), false)
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

// ===== impl Pool =====

/// A [`Group`] that holds at most `size` greenlets (gevent's
/// `gevent.pool.Pool`): [`spawn`](Group::spawn) and [`add`](Group::add)
/// wait, cooperatively, while it is full. Every `Group` method is
/// available through `Deref`.
#[derive(Clone, Debug)]
pub struct Pool {
    group: Group,
}

impl Pool {
    /// A pool of at most `size` greenlets.
    ///
    /// # Panics
    ///
    /// If `size` is 0 (nothing could ever be spawned).
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "greenrt: a Pool needs a size of at least 1");
        Pool {
            group: Group::with_capacity(Some(size)),
        }
    }

    /// The bound given to [`Pool::new`].
    pub fn size(&self) -> usize {
        self.group.inner.capacity.unwrap_or(usize::MAX)
    }

    /// Slots free now (gevent's `free_count`).
    pub fn free_count(&self) -> usize {
        self.size().saturating_sub(self.len())
    }

    /// True when a spawn would wait (gevent's `full`).
    pub fn full(&self) -> bool {
        self.free_count() == 0
    }

    /// Waits until the pool has room, at most `timeout`, and returns the
    /// free slot count then (gevent's `wait_available`); it takes no slot.
    /// `Err(Error::TimedOut)` at the deadline, `Err(Error::WouldBlockForever)`
    /// if no member could ever finish.
    pub fn wait_available(&self, timeout: Option<Duration>) -> Result<usize, Error> {
        self.group.wait_slot(deadline(timeout), false)?;
        Ok(self.free_count())
    }
}

impl Deref for Pool {
    type Target = Group;
    fn deref(&self) -> &Group {
        &self.group
    }
}

// ===== impl IMap =====

/// State shared by an [`IMap`], its feeder and its greenlets.
struct MapState<R> {
    /// Greenlets whose results are next: in spawn order (ordered) or in
    /// the order they finished (unordered).
    ready: RefCell<VecDeque<Greenlet<R>>>,
    /// Spawned and still running, to kill if the iterator is dropped.
    running: RefCell<HashMap<u64, Greenlet<R>>>,
    /// The feeder has spawned every item (or died).
    fed: Cell<bool>,
    /// Results in input order (`imap`) rather than completion order.
    ordered: bool,
    /// The consumer waits here for `ready` to grow or `fed` to be set.
    changed: WaitQueue,
}

impl<R: 'static> MapState<R> {
    fn started(&self, g: Greenlet<R>) {
        if self.ordered {
            self.ready.borrow_mut().push_back(g.clone());
            self.changed.notify_all();
        }
        self.running.borrow_mut().insert(g.id(), g);
    }

    /// Called from the greenlet's body as it ends: it is dead before the
    /// consumer runs.
    fn finished(&self, id: u64) {
        let g = self.running.borrow_mut().remove(&id);
        if let (Some(g), false) = (g, self.ordered) {
            self.ready.borrow_mut().push_back(g);
        }
        self.changed.notify_all();
    }
}

/// The iterator returned by [`Group::imap`] and [`Group::imap_unordered`]:
/// yields each item's result, `Err` for an item whose greenlet panicked or
/// was killed, and keeps going after one. Dropping it early kills the
/// greenlets it spawned and stops feeding items.
pub struct IMap<R: 'static> {
    state: Rc<MapState<R>>,
    feeder: Greenlet<()>,
    done: bool,
}

impl<R: 'static> IMap<R> {
    fn start<T, F, I>(group: Group, f: F, items: I, ordered: bool) -> IMap<R>
    where
        F: Fn(T) -> R + 'static,
        I: Iterator<Item = T> + 'static,
        T: 'static,
    {
        let state = Rc::new(MapState {
            ready: RefCell::new(VecDeque::new()),
            running: RefCell::new(HashMap::new()),
            fed: Cell::new(false),
            ordered,
            changed: WaitQueue::labeled("imap result"),
        });
        let f = Rc::new(f);
        let weak = Rc::downgrade(&state);
        // Not a member: in a pool of one it would hold the only slot.
        let feeder = greenlet::spawn(move || {
            let w = weak.clone();
            let _fed = OnDrop(Some(move || {
                if let Some(st) = w.upgrade() {
                    st.fed.set(true);
                    st.changed.notify_all();
                }
            }));
            for item in items {
                let (f, w) = (f.clone(), weak.clone());
                let on_exit = move |id| {
                    if let Some(st) = w.upgrade() {
                        st.finished(id);
                    }
                };
                // The feeder is never the root greenlet, so this cannot
                // fail with LoopExit; it only waits for room.
                let Ok(g) = group.spawn_with_exit(move || f(item), on_exit) else {
                    return;
                };
                match weak.upgrade() {
                    Some(st) => st.started(g),
                    None => return,
                }
            }
        });
        IMap {
            state,
            feeder,
            done: false,
        }
    }
}

impl<R: 'static> Iterator for IMap<R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        if self.done {
            return None;
        }
        loop {
            let front = self.state.ready.borrow_mut().pop_front();
            if let Some(g) = front {
                // Ordered: may wait for it; unordered: it is already dead.
                return Some(g.get());
            }
            // Unordered: a running greenlet's result is still to come.
            // Ordered: every spawned greenlet was in `ready`.
            let pending = !self.state.ordered && !self.state.running.borrow().is_empty();
            if self.state.fed.get() && !pending {
                self.done = true;
                // Items the feeder never reached because it failed.
                return match self.feeder.exception() {
                    Some(e @ (Error::Panicked(_) | Error::NoStack(_))) => Some(Err(e)),
                    _ => None,
                };
            }
            match self.state.changed.wait(None) {
                WaitResult::Notified => {}
                WaitResult::TimedOut => {}
                WaitResult::LoopExit => {
                    self.done = true;
                    return Some(Err(Error::WouldBlockForever));
                }
                WaitResult::Interrupted { interrupt, .. } => deliver(interrupt),
            }
        }
    }
}

impl<R: 'static> Drop for IMap<R> {
    fn drop(&mut self) {
        kill_other(&self.feeder);
        // Collect first: a greenlet killed before it started runs its exit
        // guard at once, which updates this state.
        let st = &self.state;
        let doomed: Vec<GreenletRef> = st
            .running
            .borrow()
            .values()
            .chain(st.ready.borrow().iter())
            .map(|g| GreenletRef::clone(g))
            .collect();
        for g in &doomed {
            kill_other(g);
        }
    }
}

impl<R: 'static> fmt::Debug for IMap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("ready", &self.state.ready.borrow().len())
            .field("running", &self.state.running.borrow().len())
            .field("fed", &self.state.fed.get())
            .finish()
    }
}
