//! The hub's timers: a binary heap ordered by deadline, with cancellation
//! by marking (cancelled entries are skipped when they reach the top, and
//! the heap is compacted when they outnumber the live ones).

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::Instant;

use crate::hub::task::{Interrupt, Task, WakeHandle};

/// What happens when a timer fires.
pub(crate) enum TimerAction {
    /// Wake a parked task with `WakeReason::TimedOut`.
    Wake(WakeHandle),
    /// Deliver an interrupt (a `Timeout` firing).
    Interrupt(Rc<Task>, Interrupt),
    /// Start a greenlet spawned with `spawn_later`.
    Start(Rc<Task>),
}

/// A scheduled action that can be cancelled until it fires.
pub(crate) struct TimerCell {
    action: RefCell<Option<TimerAction>>,
    fired: Cell<bool>,
}

/// Handle for cancelling a timer.
pub(crate) type TimerHandle = Rc<TimerCell>;

struct Entry {
    deadline: Instant,
    seq: u64,
    cell: TimerHandle,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap, we want the earliest deadline.
    fn cmp(&self, o: &Self) -> Ordering {
        o.deadline.cmp(&self.deadline).then(o.seq.cmp(&self.seq))
    }
}

/// The timer heap of one hub.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    seq: u64,
    live: usize,
}

impl Timers {
    /// Schedules `action` at `deadline`.
    pub(crate) fn add(&mut self, deadline: Instant, action: TimerAction) -> TimerHandle {
        let cell = Rc::new(TimerCell {
            action: RefCell::new(Some(action)),
            fired: Cell::new(false),
        });
        self.seq += 1;
        self.heap.push(Entry {
            deadline,
            seq: self.seq,
            cell: cell.clone(),
        });
        self.live += 1;
        cell
    }

    /// Cancels a timer; returns false if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, h: &TimerHandle) -> bool {
        if h.action.borrow_mut().take().is_none() {
            return false;
        }
        self.live -= 1;
        if self.heap.len() > 1024 && self.heap.len() > 2 * self.live {
            self.heap.retain(|e| e.cell.action.borrow().is_some());
        }
        true
    }

    /// Live (not cancelled, not fired) timers.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if top.cell.action.borrow().is_some() {
                return Some(top.deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops one action whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<TimerAction> {
        loop {
            let top = self.heap.peek()?;
            if top.cell.action.borrow().is_none() {
                self.heap.pop();
                continue;
            }
            if top.deadline > now {
                return None;
            }
            let e = self.heap.pop().expect("peeked");
            self.live -= 1;
            e.cell.fired.set(true);
            return e.cell.action.borrow_mut().take();
        }
    }
}

impl TimerCell {
    /// True once the timer has fired.
    pub(crate) fn fired(&self) -> bool {
        self.fired.get()
    }
}
