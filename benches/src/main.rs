//! `greenrt-bench SYSTEM JOB`: measures one job on one system and prints
//! its rows as JSON lines (see `common::emit`); `benches/driver.py` runs
//! every (job, system) pair and prints the table. Systems: `greenrt`,
//! `raw` (bare corosensei), `tokio` (current-thread), `may` (one worker),
//! `std` (plain std, for `subprocess`).
//! Jobs: `switch`, `spawn`, `queue`, `semaphore`, `timeout`, `threadpool`,
//! `sleepers`, `subprocess` (spawn + wait of `true`), and `switch_monitor`
//! (greenrt only: its blocking monitor's cost on the switch loop).
//!
//! Servers for the network rows (the driver starts one, load-tests it from
//! another process, kills it): `greenrt-bench greenrt|tokio|may serve-echo
//! [WORKERS]` and `greenrt-bench greenrt|hyper serve-http [WORKERS]`
//! listen on 127.0.0.1 (a free port), print `LISTEN 127.0.0.1:PORT` and
//! serve until killed. `greenrt-bench loadgen echo ADDR CONNS SECS
//! [SERVER_PID]` is the echo rows' load generator (see `loadgen`).

mod common;
mod greenrt_rows;
mod hyper_rows;
mod loadgen;
#[cfg(feature = "may")]
mod may_rows;
mod raw;
mod std_rows;
mod tokio_rows;

/// Every job; each prints one row, except `sleepers` and `switch_monitor`
/// (two each).
pub const JOBS: &[&str] = &[
    "switch",
    "switch_monitor",
    "spawn",
    "queue",
    "semaphore",
    "timeout",
    "threadpool",
    "sleepers",
    "subprocess",
    "serve-echo",
    "serve-http",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("loadgen") {
        return loadgen::main(&args[1..]);
    }
    let (system, job) = match args.as_slice() {
        [s, j] | [s, j, _] => (s.as_str(), j.as_str()),
        _ => usage(),
    };
    if !JOBS.contains(&job) {
        usage();
    }
    if job == "switch_monitor" && system != "greenrt" {
        return common::unavailable(job, system, "measures greenrt's own blocking monitor");
    }
    match system {
        "greenrt" => greenrt_rows::run(job),
        "raw" => raw::run(job),
        "tokio" => tokio_rows::run(job),
        "hyper" => hyper_rows::run(job),
        "std" => std_rows::run(job),
        #[cfg(feature = "may")]
        "may" => may_rows::run(job),
        #[cfg(not(feature = "may"))]
        "may" => common::unavailable(job, "may", "built without the may feature"),
        _ => usage(),
    }
}

/// The optional third argument: how many tasks the `sleepers` job starts
/// (default 1,000,000, less when `vm.max_map_count` does not allow it), or
/// how many worker threads a `serve-*` job uses (default 1).
pub fn count_arg(default: usize) -> usize {
    match std::env::args().nth(3) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| usage()),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: greenrt-bench greenrt|raw|tokio|hyper|may|std {} [COUNT|WORKERS]\n       \
         greenrt-bench loadgen echo ADDR CONNS SECS [SERVER_PID]",
        JOBS.join("|")
    );
    std::process::exit(2)
}
