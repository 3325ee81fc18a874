//! The lifecycle every server shares ([`StreamServer`](super::StreamServer),
//! [`DatagramServer`](super::DatagramServer)): the loop greenlet that
//! accepts or receives, the handlers' group and optional pool, the closed
//! flag, and the `done` event with the failure `serve_forever` returns.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::time::Duration;

use crate::config::{self, LogLevel};
use crate::greenlet::{self, Greenlet};
use crate::pool::{Group, Pool};
use crate::sync::Event;

/// Pause of a loop whose pool can never free a slot before it tries again.
const POOL_RETRY: Duration = Duration::from_millis(10);

pub(super) struct Lifecycle {
    /// Every running handler greenlet (the pool's group when bounded).
    group: RefCell<Group>,
    pool: RefCell<Option<Pool>>,
    /// The greenlet running the accept or receive loop.
    looper: RefCell<Option<Greenlet<()>>>,
    closed: Cell<bool>,
    /// Set once the server has stopped (or its loop failed for good).
    done: Event,
    /// Why the loop stopped, if it was not `stop`/`close`.
    failure: RefCell<Option<io::Error>>,
}

impl Lifecycle {
    pub(super) fn new() -> Lifecycle {
        Lifecycle {
            group: RefCell::new(Group::new()),
            pool: RefCell::new(None),
            looper: RefCell::new(None),
            closed: Cell::new(false),
            done: Event::new(),
            failure: RefCell::new(None),
        }
    }

    /// Runs handlers in `pool` from now on.
    pub(super) fn set_pool(&self, pool: Pool) {
        *self.group.borrow_mut() = Group::clone(&pool);
        *self.pool.borrow_mut() = Some(pool);
    }

    /// The group handlers are spawned in.
    pub(super) fn group(&self) -> Group {
        self.group.borrow().clone()
    }

    /// True while the loop greenlet runs.
    pub(super) fn started(&self) -> bool {
        self.looper.borrow().as_ref().is_some_and(|g| !g.dead())
    }

    pub(super) fn closed(&self) -> bool {
        self.closed.get()
    }

    /// Marks the server closed; returns whether it already was.
    pub(super) fn mark_closed(&self) -> bool {
        self.closed.replace(true)
    }

    /// The error `start` returns once the server is closed.
    pub(super) fn closed_error() -> io::Error {
        io::Error::new(io::ErrorKind::NotConnected, "the server is closed")
    }

    /// Runs the loop `body` in a new greenlet called `name`.
    pub(super) fn spawn_loop(&self, name: String, body: impl FnOnce() + 'static) -> io::Result<()> {
        let g = greenlet::Builder::new().name(name).spawn(body)?;
        *self.looper.borrow_mut() = Some(g);
        Ok(())
    }

    /// Kills the loop greenlet, unless it is the caller.
    pub(super) fn kill_loop(&self) {
        let looper = self.looper.borrow().clone();
        if let Some(g) = looper {
            if g.id() != greenlet::current().id() {
                g.kill();
            }
        }
    }

    /// Waits until the server stops; the loop's failure, if any.
    pub(super) fn wait_done(&self) -> io::Result<()> {
        self.done
            .wait()
            .map_err(|_| io::Error::other("the server can never stop: nothing runs"))?;
        match self.failure.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits up to `timeout` for the running handlers (the caller left
    /// out, so a handler may stop its server), then kills the rest.
    pub(super) fn drain(&self, timeout: Duration) {
        let group = self.group();
        group.discard(&greenlet::current());
        if group.join(Some(timeout)).is_err() {
            let _ = group.kill(None);
        }
    }

    /// Marks the server stopped: `serve_forever` returns.
    pub(super) fn set_done(&self) {
        self.done.set();
    }

    /// In the loop: waits while the pool (if any) is full. False if it
    /// cannot wait (nothing can ever free a slot): after a short pause,
    /// the loop should try again.
    pub(super) fn wait_for_slot(&self) -> bool {
        let pool = self.pool.borrow().clone();
        if let Some(pool) = pool {
            if pool.full() && pool.wait_available(None).is_err() {
                greenlet::sleep(POOL_RETRY);
                return false;
            }
        }
        true
    }

    /// In the loop, which then ends: unless the server was closed, logs
    /// `what: e`, keeps `e` for `serve_forever` and marks the server
    /// stopped.
    pub(super) fn fail(&self, e: io::Error, what: fmt::Arguments<'_>) {
        if !self.closed.get() {
            config::log(LogLevel::Error, format_args!("{what}: {e}"));
            *self.failure.borrow_mut() = Some(e);
            self.done.set();
        }
    }
}
