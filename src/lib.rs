//! # greenrt
//!
//! gevent's model for native programs: a per-thread **hub** runs the event
//! loop, **greenlets** are stackful coroutines that switch to the hub
//! whenever they would block, and the same runtime backs an `LD_PRELOAD`
//! library that makes unmodified blocking code cooperate.
//!
//! ```
//! use std::time::{Duration, Instant};
//! let start = Instant::now();
//! let gs: Vec<_> = (0..100)
//!     .map(|i| greenrt::spawn(move || { greenrt::sleep(Duration::from_millis(100)); i * 2 }))
//!     .collect();
//! greenrt::joinall(&gs, None).unwrap();
//! assert_eq!(gs[21].get().unwrap(), 42);
//! assert!(start.elapsed() < Duration::from_secs(1)); // they slept together
//! ```
//!
//! The hub is created lazily per OS thread; `main()` needs no setup call.
//! Greenlets are pinned to the hub that spawned them; other threads reach
//! a hub through [`HubHandle`].

#![warn(missing_docs)]

// Kill and Timeout unwind greenlet stacks; with panic = "abort" every kill
// would abort the process instead.
#[cfg(panic = "abort")]
compile_error!("greenrt needs panic = \"unwind\": a kill or Timeout unwinds the greenlet's stack");

pub mod abi;
pub mod config;
pub mod dns;
mod error;
mod greenlet;
pub mod hub;
mod io;
pub mod monitor;
pub mod net;
pub mod os;
mod overflow;
pub mod pool;
pub mod process;
mod run_info;
pub mod server;
pub mod signal;
mod socket;
mod stack;
pub mod sync;
mod sys;
pub mod threadpool;
mod timeout;
pub mod tls;

pub use error::{Error, LoopExit};
pub use greenlet::{current, joinall, killall, sleep, spawn, spawn_later, yield_now, Builder, Greenlet, GreenletRef};
pub use hub::{GreenletExit, HubGone, HubHandle};
pub use io::{cancel_wait, wait_readable, wait_writable};
pub use run_info::{print_run_info, run_info, BusyInfo, GreenletInfo, GreenletState, HubInfo, RunInfo};
pub use stack::mapped_stacks;
pub use sys::Interest;
pub use timeout::{with_timeout, Elapsed, Timeout};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
