//! The untyped life of a task: spawning it, starting its coroutine on a
//! stack, unwinding it for a kill or a Timeout, and finishing it (outcome,
//! failure report, joiners, links). `Greenlet<T>` (src/greenlet.rs) is the
//! typed handle built on top.

use std::any::Any;
use std::cell::RefCell;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::Once;
use std::time::Instant;

use corosensei::Yielder;

use super::task::{next_id, Co, Interrupt, Outcome, State, Task};
use super::timer::TimerAction;
use crate::config::{self, LogLevel};
use crate::stack::GuardedStack;

/// The unwind payload of a firing Timeout; carries the Timeout's id so only
/// its owner catches it.
#[derive(Debug)]
pub(crate) struct TimeoutUnwind {
    pub(crate) id: u64,
}

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
            let in_greenlet = super::try_with_existing(|h| h.current_id() != h.root.id).unwrap_or(false);
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
pub(crate) fn finish(task: &Rc<Task>, outcome: Outcome) {
    if super::is_forked_greenlet(task.id) {
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
    super::with(|h| h.task_died(task));
    task.joiners.notify_all();
    let links = std::mem::take(&mut *task.links.borrow_mut());
    for l in links {
        spawn_link(l);
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

/// Spawns `body` as a new task on this thread's hub: `stack_size` bytes of
/// stack (mapped when it first runs), started now or at `start_at`. The
/// body's panic, kill or escaped Timeout ends the task with the matching
/// outcome. Fails when no stack can be budgeted (near `vm.max_map_count`).
pub(crate) fn spawn_task(
    body: Box<dyn FnOnce()>,
    stack_size: usize,
    site: &'static Location<'static>,
    start_at: Option<Instant>,
) -> io::Result<Rc<Task>> {
    GuardedStack::check_budget(stack_size)?;
    let parent = super::with(|h| h.current_id());
    let mut task = Task::new(next_id(), false, site, parent);
    task.stack_size = stack_size;
    let task = Rc::new(task);
    let t2 = task.clone();
    let run = move || {
        let outcome = match panic::catch_unwind(AssertUnwindSafe(body)) {
            Ok(()) => Outcome::Returned,
            Err(p) => classify(p, &t2),
        };
        t2.pending.set(None);
        finish(&t2, outcome);
    };
    task.body.set(Some(Box::new(run)));
    super::with(|h| {
        h.task_spawned(&task);
        match start_at {
            None => h.make_runnable(task.clone()),
            Some(at) => {
                h.add_timer(at, TimerAction::Start(task.clone()));
            }
        }
    });
    Ok(task)
}

/// Runs `f` in a new task with the default stack size (links, and work
/// posted from another thread). Like `std::thread::spawn`, a task that
/// cannot get a stack is a panic here.
#[track_caller]
pub(crate) fn spawn_link(f: Box<dyn FnOnce()>) {
    let size = config::get().stack_size.max(config::MIN_STACK_SIZE);
    if let Err(e) = spawn_task(f, size, Location::caller(), None) {
        panic!("{e}");
    }
}
