//! Cooperative synchronisation primitives (gevent's `gevent.event`,
//! `gevent.queue`, `gevent.lock`).
//!
//! - [`Event`] and [`AsyncResult`]: wait for a flag, or for a value or
//!   error, set by another greenlet.
//! - [`Queue`], [`LifoQueue`], [`PriorityQueue`] (one [`GenericQueue`]
//!   over a [`QueueStorage`]) and the rendezvous [`Channel`].
//! - [`Semaphore`], [`BoundedSemaphore`], [`Lock`] and the re-entrant
//!   [`RLock`], each with an RAII guard.
//!
//! Rules every primitive keeps:
//!
//! - **One hub.** They are `!Send` and `!Sync` (`Cell`/`RefCell` inside):
//!   for greenlets of one thread's hub. Share one between greenlets with
//!   an `Rc`.
//! - **Only the caller parks.** A blocking call switches to the hub; other
//!   greenlets run meanwhile. Calls that need not wait do not switch.
//! - **Strict FIFO with hand-off.** Waiters are served in the order they
//!   started waiting. A permit, item or free slot released while
//!   greenlets wait is handed to the longest waiter before anyone else
//!   runs, so a greenlet that arrives later can never take it first.
//! - **Interruptible, never lost.** Kill and [`Timeout`](crate::Timeout)
//!   interrupt every blocking call by unwinding the greenlet, as in
//!   gevent. A waiter interrupted after it was handed something passes it
//!   on to the next waiter (or back) before it unwinds.
//! - **Never hang.** A wait that nothing could ever end (only possible in
//!   the thread's main context, gevent's `LoopExit`) returns an error.
//!   Calls with their own `timeout` argument report expiry as a return
//!   value instead of unwinding.

mod async_result;
mod channel;
mod event;
mod lock;
mod queue;
mod semaphore;
mod waiters;

pub use async_result::{AsyncError, AsyncResult};
pub use channel::Channel;
pub use event::Event;
pub use lock::{Lock, LockGuard, NotOwner, RLock, RLockGuard};
pub use queue::{
    Fifo, GenericQueue, GetError, Lifo, LifoQueue, MinHeap, PriorityQueue, PutError, Queue, QueueStorage, TaskDoneError,
};
pub use semaphore::{BoundedSemaphore, OverRelease, Semaphore, SemaphoreGuard};
