//! The switch limit: a bare corosensei coroutine, one `resume` + one
//! `suspend` per iteration (what a greenrt switch costs at minimum: the
//! hub suspends one greenlet and resumes the next).

use std::hint::black_box;
use std::time::Instant;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::common::{bench, emit, ns_per, unavailable};

const SYS: &str = "raw";

pub fn run(job: &str) {
    match job {
        "switch" => switch(),
        other => unavailable(other, SYS, "only the switch row has a raw limit"),
    }
}

fn switch() {
    const N: usize = 2_000_000;
    let mut co = Coroutine::new(|y: &Yielder<u64, ()>, first: u64| {
        let mut x = first;
        loop {
            black_box(x);
            x = y.suspend(());
        }
    });
    let (v, runs) = bench(|| {
        let t = Instant::now();
        for i in 0..N as u64 {
            if let CoroutineResult::Return(()) = co.resume(black_box(i)) {
                unreachable!()
            }
        }
        ns_per(t, N)
    });
    emit(
        "switch",
        SYS,
        v,
        &runs,
        &format!("{N} resume+suspend pairs, DefaultStack"),
    );
}
