//! Queues between greenlets (gevent's `gevent.queue`): FIFO [`Queue`],
//! [`LifoQueue`] and [`PriorityQueue`], one implementation
//! ([`GenericQueue`]) over a [`QueueStorage`] that only decides the order.
//!
//! # Hand-off
//!
//! An item put while greenlets wait in `get` goes straight to the longest
//! waiter; a slot freed while greenlets wait in `put` is filled at once
//! with the longest waiter's item. So nobody who arrives later can take an
//! item or a slot ahead of a greenlet that was already waiting. A getter
//! that is killed or timed out after it was handed an item gives it to the
//! next getter or, if none waits, back to the head of the queue (which may
//! then briefly hold one item more than its bound). A putter that is
//! interrupted after its item was accepted leaves the item in the queue:
//! its put happened.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::deliver;
use crate::hub::wait::{WaitQueue, WaitResult};
use crate::sync::waiters::{deadline_after, Waiters, Woken};
use crate::LoopExit;

// ===== storage =====

/// The order a [`GenericQueue`] hands out its items in. The queue does all
/// the waiting; a storage only holds items.
pub trait QueueStorage<T>: Default {
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Removes the next item to hand out.
    fn pop(&mut self) -> Option<T>;
    /// The next item to hand out.
    fn peek(&self) -> Option<&T>;
    /// Puts back an item that was popped but could not be delivered, so
    /// that it is handed out next (or in its proper order).
    fn unpop(&mut self, item: T);
    /// Number of items held.
    fn len(&self) -> usize;
    /// True when no item is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Removes every item, in hand-out order.
    fn drain_all(&mut self) -> Vec<T> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

/// First in, first out (Python's `queue.Queue`).
pub struct Fifo<T>(VecDeque<T>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> QueueStorage<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn peek(&self) -> Option<&T> {
        self.0.front()
    }
    fn unpop(&mut self, item: T) {
        self.0.push_front(item);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Last in, first out (Python's `queue.LifoQueue`).
pub struct Lifo<T>(Vec<T>);

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T> QueueStorage<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn peek(&self) -> Option<&T> {
        self.0.last()
    }
    fn unpop(&mut self, item: T) {
        self.0.push(item);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Smallest first (Python's `queue.PriorityQueue`, a `heapq` min-heap).
/// Equal items come out in no particular order; put `(priority, seq, item)`
/// tuples for FIFO among equals.
pub struct MinHeap<T: Ord>(BinaryHeap<Reverse<T>>);

impl<T: Ord> Default for MinHeap<T> {
    fn default() -> Self {
        MinHeap(BinaryHeap::new())
    }
}

impl<T: Ord> QueueStorage<T> for MinHeap<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(x)| x)
    }
    fn peek(&self) -> Option<&T> {
        self.0.peek().map(|Reverse(x)| x)
    }
    fn unpop(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

// ===== errors =====

/// Why a put did not happen; the item comes back in every case.
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue is full (non-blocking put; gevent's `Full`).
    Full(T),
    /// The queue was shut down (Python 3.13's `ShutDown`).
    ShutDown(T),
    /// The call's `timeout` passed first (gevent's `Full` after a timeout).
    TimedOut(T),
    /// Nothing could ever make room (gevent's `LoopExit`).
    LoopExit(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::ShutDown(t) | PutError::TimedOut(t) | PutError::LoopExit(t) => t,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            PutError::Full(_) => "Full",
            PutError::ShutDown(_) => "ShutDown",
            PutError::TimedOut(_) => "TimedOut",
            PutError::LoopExit(_) => "LoopExit",
        };
        write!(f, "{name}(..)")
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("queue is full"),
            PutError::ShutDown(_) => f.write_str("queue is shut down"),
            PutError::TimedOut(_) => f.write_str("timed out waiting for room in the queue"),
            PutError::LoopExit(_) => fmt::Display::fmt(&LoopExit, f),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why a get returned no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetError {
    /// The queue is empty (non-blocking get; gevent's `Empty`).
    Empty,
    /// The queue was shut down and is empty (Python 3.13's `ShutDown`).
    ShutDown,
    /// The call's `timeout` passed first (gevent's `Empty` after a
    /// timeout).
    TimedOut,
    /// Nothing could ever put an item (gevent's `LoopExit`).
    LoopExit,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("queue is empty"),
            GetError::ShutDown => f.write_str("queue is shut down"),
            GetError::TimedOut => f.write_str("timed out waiting for an item"),
            GetError::LoopExit => fmt::Display::fmt(&LoopExit, f),
        }
    }
}

impl std::error::Error for GetError {}

/// [`GenericQueue::task_done`] was called more times than items were put
/// (Python's `ValueError: task_done() called too many times`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}

// ===== the queue =====

/// What a waiting getter is woken with.
enum GetGrant<T> {
    Item(T),
    ShutDown,
}

/// What a waiting putter is woken with.
enum PutGrant {
    /// Its item was taken into the queue (or by a getter).
    Accepted,
    ShutDown,
}

/// A FIFO queue (Python's and gevent's `Queue`); see [`GenericQueue`].
pub type Queue<T> = GenericQueue<T, Fifo<T>>;
/// A last-in, first-out queue (gevent's `LifoQueue`); see [`GenericQueue`].
pub type LifoQueue<T> = GenericQueue<T, Lifo<T>>;
/// A queue that hands out its smallest item first (gevent's
/// `PriorityQueue`; `T: Ord`); see [`GenericQueue`].
pub type PriorityQueue<T> = GenericQueue<T, MinHeap<T>>;

/// A queue between greenlets, bounded or not, in the order its storage `S`
/// gives ([`Queue`], [`LifoQueue`], [`PriorityQueue`]). Like gevent's
/// `Queue`, with the joinable part of Python's `queue.Queue`
/// ([`task_done`](Self::task_done), [`join`](Self::join)) and Python
/// 3.13's [`shutdown`](Self::shutdown).
///
/// Waiting is strictly FIFO with hand-off (see the [module
/// docs](self)); every blocking call can be interrupted by kill and
/// Timeout, and returns a `LoopExit` error instead of blocking forever.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Queue;
/// let q = Rc::new(Queue::bounded(2));
/// let q2 = q.clone();
/// let producer = greenrt::spawn(move || {
///     for i in 0..5 {
///         q2.put(i).unwrap(); // blocks while the queue holds 2
///     }
/// });
/// let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// producer.join().unwrap();
/// ```
pub struct GenericQueue<T, S: QueueStorage<T>> {
    items: RefCell<S>,
    /// `None` for unbounded; `Some(0)` only for a [`Channel`](super::Channel).
    maxsize: Option<usize>,
    getters: Waiters<(), GetGrant<T>>,
    putters: Waiters<T, PutGrant>,
    unfinished: Cell<usize>,
    all_done: WaitQueue,
    shut_down: Cell<bool>,
}

impl<T, S: QueueStorage<T>> Default for GenericQueue<T, S> {
    fn default() -> Self {
        Self::with_maxsize(None)
    }
}

impl<T, S: QueueStorage<T>> GenericQueue<T, S> {
    /// An unbounded queue: `put` never blocks.
    pub fn new() -> Self {
        Self::with_maxsize(None)
    }

    /// A queue that holds at most `maxsize` items: `put` blocks while it
    /// is full.
    ///
    /// # Panics
    ///
    /// If `maxsize` is 0. (Python treats 0 as unbounded, old gevent as a
    /// rendezvous; say which you mean: [`new`](Self::new) or
    /// [`Channel`](super::Channel).)
    pub fn bounded(maxsize: usize) -> Self {
        assert!(
            maxsize > 0,
            "Queue::bounded(0): use Queue::new() for an unbounded queue or Channel for a rendezvous"
        );
        Self::with_maxsize(Some(maxsize))
    }

    pub(crate) fn with_maxsize(maxsize: Option<usize>) -> Self {
        GenericQueue {
            items: RefCell::new(S::default()),
            maxsize,
            getters: Waiters::labeled("Queue.get"),
            putters: Waiters::labeled("Queue.put"),
            unfinished: Cell::new(0),
            all_done: WaitQueue::labeled("Queue.join"),
            shut_down: Cell::new(false),
        }
    }

    // ===== state =====

    /// Items in the queue (gevent's `qsize`).
    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// True when the queue holds no item (gevent's `empty`).
    pub fn is_empty(&self) -> bool {
        self.items.borrow().is_empty()
    }

    /// True when a `put` would block (gevent's `full`); never for an
    /// unbounded queue.
    pub fn is_full(&self) -> bool {
        self.maxsize.is_some_and(|m| self.len() >= m)
    }

    /// The bound, `None` if unbounded (gevent's `maxsize`).
    pub fn maxsize(&self) -> Option<usize> {
        self.maxsize
    }

    /// Greenlets blocked in `get` (gevent's `getters`).
    pub fn getters(&self) -> usize {
        self.getters.len()
    }

    /// Greenlets blocked in `put` (gevent's `putters`).
    pub fn putters(&self) -> usize {
        self.putters.len()
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.shut_down.get()
    }

    fn has_room(&self) -> bool {
        self.maxsize.map_or(true, |m| self.len() < m)
    }

    // ===== put =====

    /// Puts `item`, waiting while the queue is full (gevent's `put`).
    /// Kill and Timeout interrupt the wait (the item is dropped);
    /// `Err(PutError::ShutDown)` once the queue is shut down and
    /// `Err(PutError::LoopExit)` if nothing could ever make room, both with
    /// the item.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None)
    }

    /// Like [`put`](Self::put), waiting at most `timeout`
    /// (`Err(PutError::TimedOut)` with the item then).
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, deadline_after(timeout))
    }

    /// Puts `item` if that needs no waiting (gevent's `put_nowait`):
    /// `Err(PutError::Full)` otherwise, `Err(PutError::ShutDown)` once shut
    /// down.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        match self.put_now(item) {
            Ok(()) => Ok(()),
            Err(item) if self.shut_down.get() => Err(PutError::ShutDown(item)),
            Err(item) => Err(PutError::Full(item)),
        }
    }

    /// Hands `item` to a waiting getter, or stores it if there is room.
    /// Gives it back if it must wait; fails if shut down.
    fn put_now(&self, item: T) -> Result<(), T> {
        if self.shut_down.get() {
            // Reported by the callers as ShutDown.
            return Err(item);
        }
        // Getters wait only while the queue is empty, so handing the item
        // to the longest one keeps every order (FIFO, LIFO, priority).
        let item = match self.getters.grant_first(GetGrant::Item(item)) {
            Ok(()) => {
                self.unfinished.set(self.unfinished.get() + 1);
                return Ok(());
            }
            Err(GetGrant::Item(item)) => item,
            Err(GetGrant::ShutDown) => unreachable!(),
        };
        if self.has_room() {
            self.items.borrow_mut().push(item);
            self.unfinished.set(self.unfinished.get() + 1);
            Ok(())
        } else {
            Err(item)
        }
    }

    fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        let mut item = item;
        loop {
            item = match self.put_now(item) {
                Ok(()) => return Ok(()),
                Err(item) if self.shut_down.get() => return Err(PutError::ShutDown(item)),
                Err(item) => item,
            };
            let (woken, back) = self.putters.wait(Some(item), deadline);
            match woken {
                Woken::Granted(PutGrant::Accepted) => return Ok(()),
                Woken::Granted(PutGrant::ShutDown) => return Err(PutError::ShutDown(back.expect("item given back"))),
                Woken::TimedOut if deadline.is_some() => {
                    return Err(PutError::TimedOut(back.expect("item given back")))
                }
                Woken::TimedOut => item = back.expect("item given back"),
                Woken::LoopExit => return Err(PutError::LoopExit(back.expect("item given back"))),
                // Accepted: the put happened, nothing to pass on. Otherwise
                // the item is dropped with the unwinding frame.
                Woken::Interrupted(i, _) => deliver(i),
            }
        }
    }

    /// Moves waiting putters' items in while there is room, longest
    /// waiter first.
    fn admit_putters(&self) {
        while self.has_room() {
            let Some(slot) = self.putters.wake_first() else {
                return;
            };
            let item = slot.take_payload().expect("a waiting putter holds its item");
            self.items.borrow_mut().push(item);
            self.unfinished.set(self.unfinished.get() + 1);
            slot.grant(PutGrant::Accepted);
        }
    }

    // ===== get =====

    /// Removes and returns the next item, waiting while the queue is empty
    /// (gevent's `get`). After [`shutdown`](Self::shutdown) it still hands
    /// out the remaining items, then fails with `GetError::ShutDown`. Kill
    /// and Timeout interrupt the wait; `Err(GetError::LoopExit)` if nothing
    /// could ever put an item.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(None)
    }

    /// Like [`get`](Self::get), waiting at most `timeout`
    /// (`Err(GetError::TimedOut)` then).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(deadline_after(timeout))
    }

    /// Removes and returns the next item if there is one (gevent's
    /// `get_nowait`): `Err(GetError::Empty)` otherwise, or
    /// `Err(GetError::ShutDown)` if shut down and drained.
    pub fn try_get(&self) -> Result<T, GetError> {
        match self.get_now() {
            Some(item) => Ok(item),
            None if self.shut_down.get() => Err(GetError::ShutDown),
            None => Err(GetError::Empty),
        }
    }

    fn get_now(&self) -> Option<T> {
        let popped = self.items.borrow_mut().pop();
        if let Some(item) = popped {
            self.admit_putters();
            return Some(item);
        }
        // Empty, yet a putter waits: a rendezvous (Channel) queue. Take
        // its item directly.
        let slot = self.putters.wake_first()?;
        let item = slot.take_payload().expect("a waiting putter holds its item");
        self.unfinished.set(self.unfinished.get() + 1);
        slot.grant(PutGrant::Accepted);
        Some(item)
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        loop {
            if let Some(item) = self.get_now() {
                return Ok(item);
            }
            if self.shut_down.get() {
                return Err(GetError::ShutDown);
            }
            match self.getters.wait(None, deadline).0 {
                Woken::Granted(GetGrant::Item(item)) => return Ok(item),
                Woken::Granted(GetGrant::ShutDown) => return Err(GetError::ShutDown),
                Woken::TimedOut if deadline.is_some() => return Err(GetError::TimedOut),
                Woken::TimedOut => {}
                Woken::LoopExit => return Err(GetError::LoopExit),
                Woken::Interrupted(i, granted) => {
                    if let Some(GetGrant::Item(item)) = granted {
                        self.give_back(item);
                    }
                    deliver(i)
                }
            }
        }
    }

    /// Passes on an item a getter was handed but cannot take: to the next
    /// waiting getter, else back to the head of the queue.
    fn give_back(&self, item: T) {
        if let Err(GetGrant::Item(item)) = self.getters.grant_first(GetGrant::Item(item)) {
            self.items.borrow_mut().unpop(item);
        }
    }

    // ===== task_done / join =====

    /// Items put and not yet marked done with [`task_done`](Self::task_done)
    /// (Python's `unfinished_tasks`).
    pub fn unfinished_tasks(&self) -> usize {
        self.unfinished.get()
    }

    /// Marks one item as processed (Python's `task_done`); when every item
    /// put so far is done, greenlets blocked in [`join`](Self::join) wake.
    /// `Err(TaskDoneError)` if called more times than items were put.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let n = self.unfinished.get();
        if n == 0 {
            return Err(TaskDoneError);
        }
        self.unfinished.set(n - 1);
        if n == 1 {
            self.all_done.notify_all();
        }
        Ok(())
    }

    /// Waits until every item put has been marked done (Python's `join`).
    /// A greenlet woken because the count reached zero returns even if new
    /// items were put before it ran (gevent's `JoinableQueue` does the
    /// same). Kill and Timeout interrupt it; `Err(LoopExit)` if it could
    /// never finish.
    pub fn join(&self) -> Result<(), LoopExit> {
        self.join_until(None).map(|_| ()).ok_or(LoopExit)
    }

    /// Like [`join`](Self::join), waiting at most `timeout`; returns
    /// whether every item was done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(deadline_after(timeout)).unwrap_or(false)
    }

    fn join_until(&self, deadline: Option<Instant>) -> Option<bool> {
        while self.unfinished.get() > 0 {
            match self.all_done.wait(deadline) {
                WaitResult::Notified => return Some(true),
                WaitResult::TimedOut if deadline.is_some() => return Some(self.unfinished.get() == 0),
                WaitResult::TimedOut => {}
                WaitResult::LoopExit => return None,
                // Every joiner is woken at once: nothing to pass on.
                WaitResult::Interrupted { interrupt, .. } => deliver(interrupt),
            }
        }
        Some(true)
    }

    // ===== shutdown =====

    /// Shuts the queue down (Python 3.13's `shutdown()`): every later
    /// `put` fails with `ShutDown`, and so does every `get` once the
    /// remaining items are drained. Greenlets blocked in `put` wake with
    /// `ShutDown` (and their items); greenlets blocked in `get` wake with
    /// `ShutDown` (they wait only when no item is left).
    pub fn shutdown(&self) {
        if self.shut_down.replace(true) {
            return;
        }
        while self.getters.grant_first(GetGrant::ShutDown).is_ok() {}
        while self.putters.grant_first(PutGrant::ShutDown).is_ok() {}
    }

    /// Like [`shutdown`](Self::shutdown), and also removes every item at
    /// once (Python 3.13's `shutdown(immediate=True)`), counting each as
    /// done, so [`join`](Self::join) returns. The removed items are
    /// returned in hand-out order rather than dropped.
    pub fn shutdown_immediate(&self) -> Vec<T> {
        self.shutdown();
        let drained = self.items.borrow_mut().drain_all();
        let left = self.unfinished.get().saturating_sub(drained.len());
        self.unfinished.set(left);
        if left == 0 {
            self.all_done.notify_all();
        }
        drained
    }
}

impl<T: Clone, S: QueueStorage<T>> GenericQueue<T, S> {
    /// A clone of the item the next `get` would return, without removing
    /// it or waiting (gevent's `peek_nowait`); `None` if empty.
    pub fn peek(&self) -> Option<T> {
        self.items.borrow().peek().cloned()
    }
}

impl<T, S: QueueStorage<T>> fmt::Debug for GenericQueue<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("maxsize", &self.maxsize)
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .field("unfinished", &self.unfinished.get())
            .field("shut_down", &self.shut_down.get())
            .finish()
    }
}
