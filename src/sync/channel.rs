//! [`Channel`]: a rendezvous between greenlets (gevent's
//! `gevent.queue.Channel`).

use std::fmt;
use std::time::Duration;

use crate::sync::queue::{Fifo, GenericQueue, GetError, PutError};

/// A queue of size zero, like gevent's `Channel`: [`put`](Self::put)
/// blocks until a getter takes the item, and [`get`](Self::get) blocks
/// until a putter offers one. Both sides are served in FIFO order.
///
/// It is a [`Queue`](super::Queue) with no room, so it shares the queue's
/// hand-off rules: if a getter is killed or timed out after it was handed
/// an item, the item goes to the next getter or, if none waits, stays in
/// the channel for the next `get` (so the channel may briefly hold an
/// item; nothing is lost).
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Channel;
/// let ch = Rc::new(Channel::new());
/// let c2 = ch.clone();
/// let g = greenrt::spawn(move || c2.put("hi").unwrap());
/// assert_eq!(ch.get(), Ok("hi"));
/// g.join().unwrap();
/// ```
pub struct Channel<T> {
    q: GenericQueue<T, Fifo<T>>,
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

impl<T> Channel<T> {
    /// A new channel.
    pub fn new() -> Channel<T> {
        Channel {
            q: GenericQueue::with_maxsize(Some(0)),
        }
    }

    /// Offers `item` and waits until a getter takes it (gevent's `put`).
    /// Kill and Timeout interrupt the wait (the item is dropped); errors
    /// as for [`Queue::put`](super::GenericQueue::put).
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.q.put(item)
    }

    /// Like [`put`](Self::put), waiting at most `timeout`
    /// (`Err(PutError::TimedOut)` with the item then).
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.q.put_timeout(item, timeout)
    }

    /// Hands `item` to a greenlet already blocked in `get`;
    /// `Err(PutError::Full)` if none waits (gevent's `put_nowait`).
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.q.try_put(item)
    }

    /// Waits for an item from a putter (gevent's `get`). Errors as for
    /// [`Queue::get`](super::GenericQueue::get).
    pub fn get(&self) -> Result<T, GetError> {
        self.q.get()
    }

    /// Like [`get`](Self::get), waiting at most `timeout`
    /// (`Err(GetError::TimedOut)` then).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.q.get_timeout(timeout)
    }

    /// Takes the item of a greenlet already blocked in `put`;
    /// `Err(GetError::Empty)` if none waits (gevent's `get_nowait`).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.q.try_get()
    }

    /// Greenlets blocked in `put` minus greenlets blocked in `get`
    /// (gevent's `balance`).
    pub fn balance(&self) -> isize {
        self.q.putters() as isize - self.q.getters() as isize
    }

    /// Greenlets blocked in `get`.
    pub fn getters(&self) -> usize {
        self.q.getters()
    }

    /// Greenlets blocked in `put`.
    pub fn putters(&self) -> usize {
        self.q.putters()
    }

    /// Shuts the channel down, as [`Queue::shutdown`](super::GenericQueue::shutdown):
    /// blocked and later puts fail with `ShutDown`, and so do gets.
    pub fn shutdown(&self) {
        self.q.shutdown()
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.q.is_shutdown()
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("getters", &self.q.getters())
            .field("putters", &self.q.putters())
            .finish()
    }
}
