//! Greenlets: spawn, join, kill, link — gevent's `Greenlet` in Rust.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::Once;
use std::time::{Duration, Instant};

use corosensei::Yielder;

use crate::config::{self, LogLevel};
use crate::error::Error;
use crate::hub;
use crate::stack::GuardedStack;
use crate::task::{Co, Interrupt, Outcome, State, Task, WakeReason};
use crate::timeout::TimeoutUnwind;
use crate::timer::TimerAction;
use crate::wait::WaitResult;

/// The payload a killed greenlet unwinds with (gevent's `GreenletExit`).
///
/// `catch_unwind` inside a greenlet may see it; code that catches it should
/// re-raise it with `resume_unwind` so that the kill completes.
#[derive(Debug)]
pub struct GreenletExit;

/// Unwinds the current greenlet for an interrupt (kill or Timeout). The
/// panic hook is not involved, so nothing is printed.
#[cold]
#[inline(never)]
pub(crate) fn deliver(i: Interrupt) -> ! {
    match i {
        Interrupt::Kill => panic::resume_unwind(Box::new(GreenletExit)),
        Interrupt::Timeout(id) => panic::resume_unwind(Box::new(TimeoutUnwind { id })),
    }
}

/// Unwinds if an interrupt arrived; otherwise returns.
#[inline(always)]
pub(crate) fn check(i: Option<Interrupt>) {
    if let Some(i) = i {
        deliver(i)
    }
}

// ===== panic reporting =====

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that stays silent for panics
/// inside greenlets, recording message and location for the one report the
/// greenlet's end prints, and defers to the previous hook elsewhere.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let in_greenlet = hub::try_with_existing(|h| h.current_id() != h.root.id).unwrap_or(false);
            if !in_greenlet {
                return prev(info);
            }
            let msg = payload_message(info.payload());
            let text = match info.location() {
                Some(l) => format!("{msg} (at {}:{}:{})", l.file(), l.line(), l.column()),
                None => msg,
            };
            let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(text));
        }));
    });
}

/// The text of a panic payload (`&str` or `String`), as std prints it.
pub(crate) fn payload_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

fn report_failure(task: &Task, what: &str) {
    if config::get().log >= LogLevel::Error {
        let _ = writeln!(
            io::stderr(),
            "greenrt: Greenlet {:?} (id {}, spawned at {}) failed with {what}",
            task.display_name(),
            task.id,
            task.spawn_site
        );
    }
}

fn classify(payload: Box<dyn Any + Send>, task: &Task) -> Outcome {
    if payload.is::<GreenletExit>() {
        return Outcome::Killed;
    }
    if payload.is::<TimeoutUnwind>() {
        report_failure(task, "Timeout (a Timeout nobody caught)");
        return Outcome::TimedOut;
    }
    let msg = LAST_PANIC
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_else(|| payload_message(&*payload));
    report_failure(task, &format!("panic: {msg}"));
    Outcome::Panicked(msg)
}

/// Marks a task dead, wakes its joiners and starts its links.
fn finish(task: &Rc<Task>, outcome: Outcome) {
    if hub::is_forked_greenlet(task.id) {
        // The child of a fork made inside this greenlet: its parent's
        // scheduler is not here to return to, so the child ends with it.
        let _ = io::stdout().flush();
        std::process::exit(if matches!(outcome, Outcome::Returned | Outcome::Killed) {
            0
        } else {
            101
        });
    }
    *task.outcome.borrow_mut() = outcome;
    task.state.set(State::Dead);
    hub::with(|h| h.task_died(task));
    task.joiners.notify_all();
    let links = std::mem::take(&mut *task.links.borrow_mut());
    for l in links {
        spawn(l);
    }
}

// ===== spawning =====

/// Maps a stack for a task that is due to start and wraps its body in a
/// coroutine. When no stack can be had, the greenlet fails with a report
/// that says what to change, and `None` is returned.
pub(crate) fn start_coroutine(task: &Rc<Task>) -> Option<Co> {
    let body = task.body.take()?;
    match GuardedStack::get(task.stack_size) {
        Ok(stack) => {
            task.guard.set(stack.guard_range());
            let t2 = task.clone();
            Some(Co::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
                t2.yielder.set(y as *const _);
                body();
            }))
        }
        Err(e) => {
            drop(body);
            report_failure(task, &format!("no stack: {e}"));
            finish(task, Outcome::NoStack(e.to_string()));
            None
        }
    }
}

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
        GuardedStack::check_budget(size)?;
        let parent = hub::with(|h| h.current_id());
        let mut task = Task::new(hub::next_id(), false, site, parent);
        task.stack_size = size;
        let task = Rc::new(task);
        if let Some(name) = self.name {
            GreenletRef { task: task.clone() }.set_name(name);
        }
        let value: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let (t2, v2) = (task.clone(), value.clone());
        let body = move || {
            let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => {
                    *v2.borrow_mut() = Some(v);
                    Outcome::Returned
                }
                Err(p) => classify(p, &t2),
            };
            t2.pending.set(None);
            finish(&t2, outcome);
        };
        task.body.set(Some(Box::new(body)));
        hub::with(|h| {
            h.task_spawned(&task);
            match start_at {
                None => h.make_runnable(task.clone()),
                Some(at) => {
                    h.add_timer(at, TimerAction::Start(task.clone()));
                }
            }
        });
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
