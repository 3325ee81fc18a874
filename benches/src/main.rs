//! `greenrt-bench SYSTEM JOB`: measures one job on one system and prints
//! its rows as JSON lines (see `common::emit`); `benches/driver.py` runs
//! every (job, system) pair and prints the table. Systems: `greenrt`,
//! `raw` (bare corosensei), `tokio` (current-thread), `may` (one worker),
//! `std` (plain std, for `subprocess`).
//! Jobs: `switch`, `spawn`, `queue`, `semaphore`, `timeout`, `threadpool`,
//! `sleepers`, `subprocess` (spawn + wait of `true`), and `switch_monitor`
//! (greenrt only: its blocking monitor's cost on the switch loop).

mod common;
mod greenrt_rows;
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
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        "std" => std_rows::run(job),
        #[cfg(feature = "may")]
        "may" => may_rows::run(job),
        #[cfg(not(feature = "may"))]
        "may" => common::unavailable(job, "may", "built without the may feature"),
        _ => usage(),
    }
}

/// The optional third argument: how many tasks the `sleepers` job starts
/// (default 1,000,000, less when `vm.max_map_count` does not allow it).
pub fn count_arg(default: usize) -> usize {
    match std::env::args().nth(3) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| usage()),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: greenrt-bench greenrt|raw|tokio|may|std {} [COUNT]",
        JOBS.join("|")
    );
    std::process::exit(2)
}
