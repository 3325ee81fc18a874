//! std's side of the rows greenrt has a plain-std counterpart for: today
//! `subprocess`, spawn + wait of a trivial child with
//! `std::process::Command::status()` (blocking the thread, no runtime).

use std::time::Instant;

use crate::common::{bench, emit, unavailable};

const SYS: &str = "std";

pub fn run(job: &str) {
    match job {
        "subprocess" => subprocess(),
        other => unavailable(other, SYS, "std has no counterpart for this row"),
    }
}

/// `Command::new("true").status()` in a loop: spawns + waits per second.
fn subprocess() {
    const N: usize = 300;
    let (v, runs) = bench(|| {
        let t = Instant::now();
        for _ in 0..N {
            let s = std::process::Command::new("true").status().unwrap();
            assert!(s.success());
        }
        N as f64 / t.elapsed().as_secs_f64()
    });
    emit(
        "subprocess",
        SYS,
        v,
        &runs,
        &format!("{N} x std::process::Command::new(\"true\").status()"),
    );
}
