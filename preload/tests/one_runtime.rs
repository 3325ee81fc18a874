//! One runtime per process: a Rust program that links greenrt and runs
//! under the preload registers its copy of the runtime with the preload
//! (`greenrt::abi`), so its greenlets and the hooks' waits share one hub per
//! thread. This test binary is such a program: it re-runs itself under
//! `LD_PRELOAD` and checks, from inside, that
//!
//! - 10 greenlets each calling the blocking `std::thread::sleep(200 ms)`
//!   (nanosleep, hooked) finish in well under 1 s and the hub's switch
//!   counter moved: the hooks parked the greenlets on *this* copy's hub;
//! - a greenlet blocked in a hooked `read` on a pipe is woken by another
//!   greenlet that sleeps with `greenrt::sleep` and then writes: with two
//!   hubs on the thread (the preload's and the program's) the read would
//!   block the thread and the writer would never run.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{preload_so, run_timeout, tail, Mode};

const CHILD: &str = "GREENRT_ONE_RUNTIME_CHILD";

fn sleeps_in_greenlets() {
    let before = greenrt::hub::switch_count();
    let t0 = Instant::now();
    let gs: Vec<_> = (0..10)
        .map(|_| greenrt::spawn(|| std::thread::sleep(Duration::from_millis(200))))
        .collect();
    greenrt::joinall(&gs, None).unwrap();
    let wall = t0.elapsed();
    let switches = greenrt::hub::switch_count() - before;
    println!("10 x std::thread::sleep(200 ms) in greenlets: {wall:?}, {switches} switches");
    assert!(wall >= Duration::from_millis(190), "{wall:?}");
    assert!(wall < Duration::from_millis(1000), "not cooperative: {wall:?}");
    assert!(switches >= 10, "{switches} switches");
    println!("one hub");
}

fn hooked_read_woken_by_a_greenlet() {
    let mut fds = [0; 2];
    // SAFETY: pipe() fills two fds.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (r, w) = (fds[0], fds[1]);
    let reader = greenrt::spawn(move || {
        let mut buf = [0u8; 8];
        // SAFETY: reads into a local buffer of the given length.
        let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
        (n, buf[0])
    });
    let writer = greenrt::spawn(move || {
        greenrt::sleep(Duration::from_millis(50));
        // SAFETY: writes one byte from a static buffer.
        unsafe { libc::write(w, b"z".as_ptr().cast(), 1) }
    });
    assert_eq!(writer.get(), Ok(1));
    assert_eq!(reader.get(), Ok((1, b'z')));
    println!("hooked read woken by a greenrt greenlet: one hub");
}

/// Runs test `name` in a child of this test binary under the preload.
fn run_under(name: &str, mode: Mode) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1");
    mode.apply(&mut cmd, &preload_so());
    let o = run_timeout(&mut cmd, Duration::from_secs(30));
    assert!(
        o.success() && o.stdout.contains("one hub"),
        "{name} under the preload ({}): {}\nstdout:\n{}stderr:\n{}",
        mode.name(),
        o.status_text(),
        tail(&o.stdout, 20),
        tail(&o.stderr, 20)
    );
}

#[test]
fn std_sleep_in_greenlets_cooperates_under_preload() {
    if std::env::var_os(CHILD).is_some() {
        return sleeps_in_greenlets();
    }
    run_under("std_sleep_in_greenlets_cooperates_under_preload", Mode::Auto);
    run_under("std_sleep_in_greenlets_cooperates_under_preload", Mode::Always);
}

#[test]
fn hooked_read_and_greenlets_share_one_hub_under_preload() {
    if std::env::var_os(CHILD).is_some() {
        return hooked_read_woken_by_a_greenlet();
    }
    run_under("hooked_read_and_greenlets_share_one_hub_under_preload", Mode::Auto);
    run_under("hooked_read_and_greenlets_share_one_hub_under_preload", Mode::Always);
}
