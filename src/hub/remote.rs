//! The cross-thread side of a hub: the queue other threads post to, woken
//! through an eventfd (like libev's async watcher), and the handles that
//! post to it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::local::*;
use super::scheduler::*;
use super::task::{WakeHandle, WakeReason};
use crate::sys::waker::Waker;

pub(super) enum Message {
    /// Run in a new greenlet.
    Spawn(Box<dyn FnOnce() + Send>),
    /// Wake the task registered under this token.
    Wake(u64),
}

/// The part of a hub other threads can touch.
pub(super) struct Remote {
    pub(super) queue: Mutex<Vec<Message>>,
    pub(super) waker: Waker,
    pub(super) closed: AtomicBool,
    pub(super) next_token: AtomicU64,
}

impl Remote {
    pub(super) fn post(&self, m: Message) -> Result<(), Message> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(m);
        }
        let was_empty = q.is_empty();
        q.push(m);
        drop(q);
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }
}

impl Hub {
    /// True while another thread could still post to this hub.
    pub(super) fn remote_can_wake(&self) -> bool {
        Arc::strong_count(&self.remote) > 1 || !self.remote.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    // ===== cross-thread =====

    pub(super) fn run_remote(&self) {
        let msgs = std::mem::take(&mut *self.remote.queue.lock().unwrap_or_else(|e| e.into_inner()));
        for m in msgs {
            match m {
                Message::Spawn(f) => {
                    super::spawn_link(f);
                }
                Message::Wake(token) => {
                    let h = self.remote_waiters.borrow_mut().remove(&token);
                    if let Some(h) = h {
                        h.wake(WakeReason::Notified);
                    }
                }
            }
        }
    }

    /// A `Send` handle to this hub.
    pub(crate) fn handle(&self) -> HubHandle {
        HubHandle {
            remote: self.remote.clone(),
        }
    }

    /// A `Send` waker for the current greenlet's next park.
    pub(crate) fn remote_waker(&self) -> RemoteWaker {
        let token = self.remote.next_token.fetch_add(1, Ordering::Relaxed);
        let task = self.current_task();
        let seq = task.seq.get();
        self.remote_waiters.borrow_mut().insert(token, WakeHandle { task, seq });
        RemoteWaker {
            remote: Some(self.remote.clone()),
            token,
        }
    }
}

/// A thread-safe handle to one hub: other threads use it to spawn
/// greenlets there, like gevent's `hub.loop.async_()` plus
/// `run_callback_threadsafe`.
///
/// While any handle exists, the hub does not consider itself stuck
/// ("would block forever"), because the handle's owner may still post work.
#[derive(Clone)]
pub struct HubHandle {
    pub(super) remote: Arc<Remote>,
}

/// The hub a [`HubHandle`] points at has exited with its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubGone;

impl std::fmt::Display for HubGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the target hub's thread has exited")
    }
}

impl std::error::Error for HubGone {}

impl HubHandle {
    /// A handle to the calling thread's hub.
    pub fn current() -> HubHandle {
        with(|h| h.handle())
    }

    /// Runs `f` in a new greenlet on the target hub. Callable from any
    /// thread.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) -> Result<(), HubGone> {
        self.remote.post(Message::Spawn(Box::new(f))).map_err(|_| HubGone)
    }
}

/// Wakes one parked greenlet from any thread. It wakes its greenlet when
/// `wake` is called or, failing that, when it is dropped, so a worker that
/// panics still releases its waiter.
pub(crate) struct RemoteWaker {
    pub(super) remote: Option<Arc<Remote>>,
    pub(super) token: u64,
}

impl RemoteWaker {
    /// Wakes the greenlet (if it still waits for this).
    pub(crate) fn wake(mut self) {
        self.fire();
    }

    fn fire(&mut self) {
        if let Some(r) = self.remote.take() {
            let _ = r.post(Message::Wake(self.token));
        }
    }
}

impl Drop for RemoteWaker {
    fn drop(&mut self) {
        self.fire();
    }
}
