//! The runtime's error types.

use std::fmt;

/// Why a greenlet produced no value, or why waiting for one failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The greenlet was killed (gevent's `GreenletExit`). Like gevent, a
    /// killed greenlet still counts as `successful()`.
    Killed,
    /// The greenlet panicked; the panic message.
    Panicked(String),
    /// A [`Timeout`](crate::Timeout) that nobody caught ended the greenlet.
    TimeoutEscaped,
    /// The `timeout` argument of the call passed first.
    TimedOut,
    /// Nothing could ever wake the caller: no runnable greenlets, no
    /// timers, no fds, no cross-thread handles (gevent's `LoopExit`).
    WouldBlockForever,
    /// The value was already taken by an earlier `get`.
    ValueTaken,
    /// No stack could be mapped for the greenlet when it was due to start;
    /// the message says what to change.
    NoStack(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Killed => f.write_str("greenlet was killed (GreenletExit)"),
            Error::Panicked(m) => write!(f, "greenlet panicked: {m}"),
            Error::TimeoutEscaped => f.write_str("greenlet was ended by a Timeout nobody caught"),
            Error::TimedOut => f.write_str("timed out"),
            Error::WouldBlockForever => f.write_str(LOOP_EXIT_MESSAGE),
            Error::ValueTaken => f.write_str("the greenlet's value was already taken by get()"),
            Error::NoStack(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// gevent's LoopExit message.
pub(crate) const LOOP_EXIT_MESSAGE: &str =
    "this operation would block forever (no other greenlet, timer, fd or thread can wake it)";

/// Result of a blocking wait that can only fail by blocking forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopExit;

impl fmt::Display for LoopExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(LOOP_EXIT_MESSAGE)
    }
}

impl std::error::Error for LoopExit {}

impl From<LoopExit> for Error {
    fn from(_: LoopExit) -> Error {
        Error::WouldBlockForever
    }
}

impl From<LoopExit> for std::io::Error {
    fn from(_: LoopExit) -> std::io::Error {
        std::io::Error::other(LOOP_EXIT_MESSAGE)
    }
}
