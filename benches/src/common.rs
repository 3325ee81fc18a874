//! Shared helpers: repeated runs with a median, RSS, and the one JSON-line
//! format every runner (Rust and Python) prints for the driver.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

/// Timed runs per measurement (after one warm-up run); `BENCH_RUNS`
/// overrides it.
pub fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(7)
}

/// Runs `f` once to warm up, then [`runs`] times; `f` returns its figure
/// (e.g. ns per operation). Returns the median and all timed figures.
pub fn bench(mut f: impl FnMut() -> f64) -> (f64, Vec<f64>) {
    let _ = f();
    let all: Vec<f64> = (0..runs()).map(|_| f()).collect();
    (median(&all), all)
}

/// Nanoseconds per operation of `ops` operations that started at `t`.
pub fn ns_per(t: Instant, ops: usize) -> f64 {
    t.elapsed().as_nanos() as f64 / ops as f64
}

/// The median of `v` (mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Resident set size of this process in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `vm.max_map_count`, or the kernel default when unreadable.
pub fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530)
}

/// Mappings this process has now.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// How many guarded stacks (2 mappings each) fit under `vm.max_map_count`,
/// capped at `want`, rounded down to a multiple of 10,000 when that is
/// what limits it. Leaves room for the process's own mappings and
/// greenrt's headroom.
pub fn stacks_that_fit(want: usize) -> usize {
    let room = max_map_count().saturating_sub(map_count() + 4096) / 2;
    if room >= want {
        want
    } else {
        (room / 10_000 * 10_000).max(room.min(1000))
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "null".to_string()
    }
}

/// Prints one measurement as a JSON line for the driver:
/// `{"name","system","value","runs","note"}`.
pub fn emit(name: &str, system: &str, value: f64, runs: &[f64], note: &str) {
    let runs: Vec<String> = runs.iter().map(|&r| json_num(r)).collect();
    let line = format!(
        "{{\"name\":{},\"system\":{},\"value\":{},\"runs\":[{}],\"note\":{}}}",
        json_str(name),
        json_str(system),
        json_num(value),
        runs.join(","),
        json_str(note)
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints that `system` cannot measure row `name`, and why.
pub fn unavailable(name: &str, system: &str, why: &str) {
    let line = format!(
        "{{\"name\":{},\"system\":{},\"value\":null,\"unavailable\":{}}}",
        json_str(name),
        json_str(system),
        json_str(why)
    );
    println!("{line}");
}

/// Ends the process at once (without tearing down a million tasks) after
/// flushing stdout.
pub fn exit_now() -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

/// What a `serve-*` job prints once it listens: the driver reads this
/// line, then load-tests `addr`.
pub fn listening(addr: std::net::SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "LISTEN {addr}");
    let _ = out.flush();
}

/// The `serve-*` jobs' optional third argument: worker threads (default 1).
pub fn workers_arg() -> usize {
    crate::count_arg(1).max(1)
}

/// Message size of the echo rows (issue 3: 512 B ping-pong).
pub const ECHO_MSG: usize = 512;
/// Read buffer of every echo server.
pub const ECHO_BUF: usize = 16 * 1024;
