//! The cross-thread side of a hub: the queue other threads post to, woken
//! through an eventfd (like libev's async watcher), and the handles that
//! post to it.

use std::sync::Arc;

use super::local::*;
use super::mailbox::{Mailbox, OnceSend, Wake};
use super::scheduler::*;
use super::task::{WakeHandle, WakeReason};
use crate::sys::waker::Waker;

pub(super) enum Message {
    /// Run in a new greenlet.
    Spawn(Box<dyn FnOnce() + Send>),
    /// Wake the task registered under this token.
    Wake(u64),
}

/// The part of a hub other threads can touch: its mailbox, which pokes
/// the hub's eventfd.
pub(super) type Remote = Mailbox<Message, Waker>;

impl Wake for Waker {
    fn wake(&self) {
        Waker::wake(self);
    }
}

impl Hub {
    /// True while another thread could still post to this hub.
    pub(super) fn remote_can_wake(&self) -> bool {
        Arc::strong_count(&self.remote) > 1 || !self.remote.is_empty()
    }

    // ===== cross-thread =====

    pub(super) fn run_remote(&self) {
        for m in self.remote.take() {
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
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let task = self.current_task();
        let seq = task.seq.get();
        self.remote_waiters.borrow_mut().insert(token, WakeHandle { task, seq });
        RemoteWaker(OnceSend::new(self.remote.clone(), Message::Wake(token)))
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
pub(crate) struct RemoteWaker(OnceSend<Message, Waker>);

impl RemoteWaker {
    /// Wakes the greenlet (if it still waits for this).
    pub(crate) fn wake(self) {
        self.0.send();
    }
}
