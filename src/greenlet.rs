//! Greenlets: spawn, join, kill, link — gevent's `Greenlet` in Rust.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::panic::Location;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::{self};
use crate::error::Error;
use crate::hub::task::{Interrupt, Outcome, State, Task, WakeReason};
use crate::hub::wait::WaitResult;
use crate::hub::{self, check, deliver, finish};

/// Configures a greenlet before spawning it (name, stack size), like
/// `std::thread::Builder`.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults (`GREENRT_STACK_SIZE`, no name).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet (shown in failure reports and run info).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack size in bytes (rounded up to whole pages; at least
    /// 16 KiB).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns `f` in a new greenlet; fails when no stack can be mapped
    /// (for example near `vm.max_map_count`), with an error that says what
    /// to change.
    #[track_caller]
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> io::Result<Greenlet<T>> {
        self.spawn_at(f, None, Location::caller())
    }

    /// Like [`Builder::spawn`], but the greenlet starts after `delay`.
    #[track_caller]
    pub fn spawn_later<T: 'static>(self, delay: Duration, f: impl FnOnce() -> T + 'static) -> io::Result<Greenlet<T>> {
        self.spawn_at(f, Some(Instant::now() + delay), Location::caller())
    }

    fn spawn_at<T: 'static>(
        self,
        f: impl FnOnce() -> T + 'static,
        start_at: Option<Instant>,
        site: &'static Location<'static>,
    ) -> io::Result<Greenlet<T>> {
        let size = self
            .stack_size
            .unwrap_or(config::get().stack_size)
            .max(config::MIN_STACK_SIZE);
        let value: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let v2 = value.clone();
        let body = Box::new(move || *v2.borrow_mut() = Some(f()));
        let task = hub::spawn_task(body, size, site, start_at)?;
        if let Some(name) = self.name {
            GreenletRef { task: task.clone() }.set_name(name);
        }
        Ok(Greenlet {
            inner: GreenletRef { task },
            value,
        })
    }
}

/// Spawns `f` in a new greenlet on this thread's hub and schedules it to
/// run (gevent's `gevent.spawn`). The caller keeps running until it blocks.
///
/// Panics, like `std::thread::spawn`, if no stack can be mapped; use
/// [`Builder::spawn`] to get that as an error.
#[track_caller]
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    let site = Location::caller();
    Builder::new().spawn_at(f, None, site).unwrap_or_else(|e| panic!("{e}"))
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`). Killing it
/// before then means it never runs.
#[track_caller]
pub fn spawn_later<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    let site = Location::caller();
    Builder::new()
        .spawn_at(f, Some(Instant::now() + delay), site)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The greenlet that is running now (the thread's root greenlet, named
/// `main`, when called outside any spawned greenlet).
pub fn current() -> GreenletRef {
    GreenletRef {
        task: hub::current_task(),
    }
}

/// Suspends the current greenlet for `d`, letting others run (gevent's
/// `gevent.sleep`). `sleep(Duration::ZERO)` is [`yield_now`].
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return yield_now();
    }
    let deadline = Instant::now() + d;
    loop {
        let p = hub::park(Some(deadline));
        check(p.interrupt);
        if p.reason == WakeReason::TimedOut || Instant::now() >= deadline {
            return;
        }
    }
}

/// Lets every other runnable greenlet run once, then continues.
#[inline(always)]
pub fn yield_now() {
    check(hub::get().yield_now());
}

// ===== handles =====

/// An untyped handle to a greenlet: identity, state, join and kill.
/// [`Greenlet<T>`] derefs to it.
#[derive(Clone)]
pub struct GreenletRef {
    pub(crate) task: Rc<Task>,
    // Pinned to its hub's thread.
}

impl GreenletRef {
    /// Process-unique id.
    pub fn id(&self) -> u64 {
        self.task.id
    }

    /// The name (`Greenlet-<id>` unless set; `main` for a thread's root).
    pub fn name(&self) -> String {
        self.task.display_name()
    }

    /// Renames the greenlet.
    pub fn set_name(&self, name: impl Into<String>) {
        let name = name.into();
        if !self.task.is_root && !self.dead() {
            hub::with(|h| {
                h.shared
                    .names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(self.task.id, name.clone())
            });
        }
        *self.task.name.borrow_mut() = Some(name);
    }

    /// Id of the greenlet that spawned this one (0 for a root).
    pub fn parent_id(&self) -> u64 {
        self.task.parent
    }

    /// Where it was spawned (`#[track_caller]` of `spawn`).
    pub fn spawn_site(&self) -> &'static std::panic::Location<'static> {
        self.task.spawn_site
    }

    /// True for a thread's root greenlet (its own stack, not spawned).
    pub fn is_root(&self) -> bool {
        self.task.is_root
    }

    /// True once the greenlet has finished, failed or been killed
    /// (gevent's `dead`; also its `ready`).
    pub fn dead(&self) -> bool {
        self.task.state.get() == State::Dead
    }

    /// Same as [`dead`](Self::dead) (gevent's `ready()`).
    pub fn ready(&self) -> bool {
        self.dead()
    }

    /// True if it finished without a panic or escaped Timeout; a kill
    /// (`GreenletExit`) counts as success, as in gevent.
    pub fn successful(&self) -> bool {
        self.dead() && matches!(*self.task.outcome.borrow(), Outcome::Returned | Outcome::Killed)
    }

    /// The error it ended with, if any (gevent's `exception`); `Killed`
    /// for a killed greenlet even though that counts as successful.
    pub fn exception(&self) -> Option<Error> {
        match &*self.task.outcome.borrow() {
            Outcome::Pending | Outcome::Returned => None,
            Outcome::Killed => Some(Error::Killed),
            Outcome::Panicked(m) => Some(Error::Panicked(m.clone())),
            Outcome::TimedOut => Some(Error::TimeoutEscaped),
            Outcome::NoStack(m) => Some(Error::NoStack(m.clone())),
        }
    }

    /// Waits until the greenlet is dead.
    pub fn join(&self) -> Result<(), Error> {
        self.join_until(None)
    }

    /// Waits at most `timeout`; `Err(Error::TimedOut)` if it is still alive.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.join_until(Some(Instant::now() + timeout))
    }

    pub(crate) fn join_until(&self, deadline: Option<Instant>) -> Result<(), Error> {
        if Rc::ptr_eq(&self.task, &hub::current_task()) && !self.dead() {
            // Joining yourself can never finish.
            return Err(Error::WouldBlockForever);
        }
        while !self.dead() {
            match self.task.joiners.wait(deadline) {
                WaitResult::Notified => {}
                WaitResult::TimedOut => return Err(Error::TimedOut),
                WaitResult::LoopExit => return Err(Error::WouldBlockForever),
                WaitResult::Interrupted { interrupt, .. } => deliver(interrupt),
            }
        }
        Ok(())
    }

    /// Kills the greenlet and waits until it is dead (gevent's `kill()`).
    /// The kill is delivered at its next switch point by unwinding its
    /// stack, so its destructors run. Killing a greenlet that has not
    /// started means it never runs (its links still do).
    pub fn kill(&self) {
        self.kill_async();
        let _ = self.join();
    }

    /// Kills and waits at most `timeout`; `Err(Error::TimedOut)` if the
    /// greenlet is still alive then.
    pub fn kill_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.kill_async();
        self.join_timeout(timeout)
    }

    /// Requests the kill and returns at once (gevent's `kill(block=False)`).
    pub fn kill_async(&self) {
        let t = &self.task;
        if t.is_root || t.state.get() == State::Dead {
            return;
        }
        let is_current = Rc::ptr_eq(t, &hub::current_task());
        if is_current {
            deliver(Interrupt::Kill);
        }
        if let Some(body) = t.body.take() {
            // Never started: it never runs.
            drop(body);
            finish(t, Outcome::Killed);
            return;
        }
        hub::with(|h| h.interrupt(t, Interrupt::Kill));
    }
}

impl fmt::Debug for GreenletRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<Greenlet {:?} id={} {:?}>",
            self.name(),
            self.id(),
            self.task.state.get()
        )
    }
}

/// A handle to a spawned greenlet that produces a `T` (gevent's
/// `Greenlet`). Cloning it gives another handle to the same greenlet.
pub struct Greenlet<T> {
    inner: GreenletRef,
    value: Rc<RefCell<Option<T>>>,
}

impl<T> Clone for Greenlet<T> {
    fn clone(&self) -> Self {
        Greenlet {
            inner: self.inner.clone(),
            value: self.value.clone(),
        }
    }
}

impl<T> Deref for Greenlet<T> {
    type Target = GreenletRef;
    fn deref(&self) -> &GreenletRef {
        &self.inner
    }
}

impl<T> AsRef<GreenletRef> for Greenlet<T> {
    fn as_ref(&self) -> &GreenletRef {
        &self.inner
    }
}

impl AsRef<GreenletRef> for GreenletRef {
    fn as_ref(&self) -> &GreenletRef {
        self
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: 'static> Greenlet<T> {
    /// Waits for the greenlet and takes its value (gevent's `get()`). The
    /// value moves out on the first successful call; later calls return
    /// `Error::ValueTaken`. A panic, kill or escaped Timeout comes back as
    /// the matching error.
    pub fn get(&self) -> Result<T, Error> {
        self.inner.join()?;
        self.take_value()
    }

    /// Like [`get`](Self::get), waiting at most `timeout`
    /// (`Err(Error::TimedOut)`; the greenlet keeps running).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.inner.join_timeout(timeout)?;
        self.take_value()
    }

    fn take_value(&self) -> Result<T, Error> {
        if let Some(e) = self.inner.exception() {
            return Err(e);
        }
        self.value.borrow_mut().take().ok_or(Error::ValueTaken)
    }

    /// Runs `callback` in a new greenlet once this one is dead, however it
    /// ended; immediately (scheduled) if it already is (gevent's `link`).
    pub fn link(&self, callback: impl FnOnce(Greenlet<T>) + 'static) {
        let me = self.clone();
        let f = Box::new(move || callback(me));
        if self.dead() {
            spawn(f);
        } else {
            self.inner.task.links.borrow_mut().push(f);
        }
    }

    /// Like [`link`](Self::link), but only if it ends successfully.
    pub fn link_value(&self, callback: impl FnOnce(Greenlet<T>) + 'static) {
        self.link(move |g| {
            if g.successful() {
                callback(g)
            }
        });
    }

    /// Like [`link`](Self::link), but only if it fails (panic or escaped
    /// Timeout).
    pub fn link_exception(&self, callback: impl FnOnce(Greenlet<T>) + 'static) {
        self.link(move |g| {
            if !g.successful() {
                callback(g)
            }
        });
    }
}

// ===== many greenlets =====

/// Waits until every greenlet in `gs` is dead, or `timeout` passes
/// (gevent's `joinall`). `Err(Error::TimedOut)` if some are still alive.
pub fn joinall<G: AsRef<GreenletRef>>(gs: &[G], timeout: Option<Duration>) -> Result<(), Error> {
    let deadline = timeout.map(|t| Instant::now() + t);
    for g in gs {
        g.as_ref().join_until(deadline)?;
    }
    Ok(())
}

/// Kills every greenlet in `gs` and waits for them, at most `timeout`
/// (gevent's `killall`).
pub fn killall<G: AsRef<GreenletRef>>(gs: &[G], timeout: Option<Duration>) -> Result<(), Error> {
    for g in gs {
        g.as_ref().kill_async();
    }
    joinall(gs, timeout)
}
