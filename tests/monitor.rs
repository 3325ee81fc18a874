//! The blocking monitor. Every case runs in a child process: the monitor
//! watches every hub of its process, and the test harness runs other tests
//! (with their own hubs) on other threads.

mod util;

use std::process::Output;
use std::time::{Duration, Instant};

use greenrt::{monitor, Builder};

const PREFIX: &str = "greenrt monitor: ";

fn reports(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The blocked time a report gives.
fn blocked_ms(report: &str) -> u64 {
    let rest = report.split(" for at least ").nth(1).expect("blocked time");
    rest.split(" ms").next().unwrap().parse().expect("a number of ms")
}

/// Keeps the CPU busy without yielding to the hub.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Prints what the parent needs to recognise this hub in a report.
fn print_hub_thread() {
    // Create the hub.
    greenrt::hub::live_greenlets();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let name = std::thread::current().name().unwrap_or("<unnamed>").to_string();
    println!("HUB_THREAD={name:?} (tid {tid})");
    println!("MONITOR_RUNNING={}", monitor::is_running());
}

/// The value the child printed as `KEY=value` (libtest may have printed
/// "test name ... " before it on the same line).
fn value(out: &Output, key: &str) -> String {
    let s = stdout(out);
    let pat = format!("{key}=");
    let at = s.find(&pat).unwrap_or_else(|| panic!("child printed no {key}: {s}"));
    s[at + pat.len()..].lines().next().unwrap_or("").to_string()
}

fn hub_thread(out: &Output) -> String {
    value(out, "HUB_THREAD")
}

fn assert_monitor_was_running(out: &Output) {
    assert!(
        stdout(out).contains("MONITOR_RUNNING=true"),
        "the monitor did not run, so its silence proves nothing: {}",
        stdout(out)
    );
}

#[test]
fn monitor_reports_300ms_busy_loop() {
    if util::is_child() {
        print_hub_thread();
        let g = Builder::new()
            .name("spinner")
            .spawn(|| spin(Duration::from_millis(300)))
            .unwrap();
        println!("SPINNER_ID={}", g.id());
        g.join().unwrap();
        return;
    }
    let out = util::run_child("monitor_reports_300ms_busy_loop", &[("GREENRT_MONITOR", "1")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_monitor_was_running(&out);
    let rs = reports(&out);
    assert_eq!(rs.len(), 1, "exactly one report per episode: {rs:#?}");
    let r = &rs[0];
    let id = value(&out, "SPINNER_ID");
    assert!(
        r.starts_with(&format!(
            "{PREFIX}greenlet \"spinner\" (id {id}, spawned at tests/monitor.rs:"
        )),
        "{r}"
    );
    assert!(
        r.contains(&format!(") has blocked the hub of thread {}", hub_thread(&out))),
        "{r}"
    );
    let ms = blocked_ms(r);
    assert!((100..=300).contains(&ms), "blocked {ms} ms: {r}");
    assert!(r.contains("(max_blocking 100 ms)"), "{r}");
    assert!(r.contains("; thread state: R (running); "), "{r}");
    assert!(r.contains("; stack: not captured ("), "{r}");
}

#[test]
fn monitor_names_root_greenlet_blocking_in_a_native_call() {
    if util::is_child() {
        print_hub_thread();
        println!("MAIN_ID={}", greenrt::current().id());
        // Someone who would like to run: a greenlet waiting on a timer.
        let waiter = greenrt::spawn(|| greenrt::sleep(Duration::from_millis(50)));
        greenrt::yield_now();
        std::thread::sleep(Duration::from_millis(300)); // not cooperative
        waiter.join().unwrap();
        return;
    }
    let out = util::run_child(
        "monitor_names_root_greenlet_blocking_in_a_native_call",
        &[("GREENRT_MONITOR", "1")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rs = reports(&out);
    assert_eq!(rs.len(), 1, "{rs:#?}");
    let id = value(&out, "MAIN_ID");
    assert!(
        rs[0].starts_with(&format!(
            "{PREFIX}greenlet \"main\" (id {id}, the thread's root greenlet) has blocked"
        )),
        "{}",
        rs[0]
    );
    assert!(blocked_ms(&rs[0]) >= 100, "{}", rs[0]);
    // Blocked in nanosleep, so the kernel says it sleeps.
    assert!(rs[0].contains("; thread state: S (sleeping"), "{}", rs[0]);
}

#[test]
fn monitor_silent_for_well_behaved_program() {
    if util::is_child() {
        print_hub_thread();
        let start = Instant::now();
        let gs: Vec<_> = (0..100)
            .map(|i| {
                greenrt::spawn(move || {
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_millis(500) {
                        if i % 2 == 0 {
                            greenrt::sleep(Duration::from_millis(5));
                        } else {
                            spin(Duration::from_micros(50));
                            greenrt::yield_now();
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        greenrt::joinall(&gs, None).unwrap();
        println!("SWITCHES={}", greenrt::hub::switch_count());
        return;
    }
    let out = util::run_child("monitor_silent_for_well_behaved_program", &[("GREENRT_MONITOR", "1")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_monitor_was_running(&out);
    assert_eq!(reports(&out), Vec::<String>::new());
}

#[test]
fn monitor_silent_when_root_computes_between_short_sleeps() {
    // The root alternates 20 ms of work with 1 ms sleeps while another
    // greenlet waits on a timer: no greenlet switch for 600 ms, but the
    // loop runs every 21 ms, so nothing is blocked.
    if util::is_child() {
        print_hub_thread();
        let waiter = greenrt::spawn(|| greenrt::sleep(Duration::from_secs(2)));
        greenrt::yield_now();
        let before = greenrt::hub::switch_count();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(600) {
            spin(Duration::from_millis(20));
            greenrt::sleep(Duration::from_millis(1));
        }
        println!("SWITCHES_DURING={}", greenrt::hub::switch_count() - before);
        waiter.kill();
        return;
    }
    let out = util::run_child(
        "monitor_silent_when_root_computes_between_short_sleeps",
        &[("GREENRT_MONITOR", "1")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_monitor_was_running(&out);
    assert!(
        stdout(&out).contains("SWITCHES_DURING=0"),
        "the scenario needs a hub that does not switch: {}",
        stdout(&out)
    );
    assert_eq!(reports(&out), Vec::<String>::new());
}

#[test]
fn monitor_start_api() {
    if util::is_child() {
        assert!(!monitor::is_running(), "off by default");
        monitor::start(Duration::from_millis(50)).unwrap();
        assert_eq!(monitor::max_blocking(), Some(Duration::from_millis(50)));
        let block = || std::thread::sleep(Duration::from_millis(200));
        let first = Builder::new().name("first").spawn(block).unwrap();
        let second = Builder::new().name("second").spawn(block).unwrap();
        greenrt::joinall(&[&first, &second], None).unwrap();
        monitor::stop();
        assert!(!monitor::is_running());
        let third = Builder::new().name("third").spawn(block).unwrap();
        third.join().unwrap();
        println!("DONE");
        return;
    }
    let out = util::run_child("monitor_start_api", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("DONE"));
    let rs = reports(&out);
    assert_eq!(rs.len(), 2, "one report per episode, none after stop: {rs:#?}");
    assert!(
        rs[0].starts_with(&format!("{PREFIX}greenlet \"first\" (id ")),
        "{rs:#?}"
    );
    assert!(
        rs[1].starts_with(&format!("{PREFIX}greenlet \"second\" (id ")),
        "{rs:#?}"
    );
    for r in &rs {
        assert!(r.contains("(max_blocking 50 ms)"), "{r}");
        assert!((50..=200).contains(&blocked_ms(r)), "{r}");
    }
}

#[test]
fn monitor_restarts_in_forked_child_and_ignores_inherited_hubs() {
    if util::is_child() {
        print_hub_thread();
        // A live greenlet at fork time: the hub the child inherits looks
        // blocked forever (its thread is not in the child).
        let sleeper = greenrt::spawn(|| greenrt::sleep(Duration::from_secs(5)));
        greenrt::yield_now();
        // SAFETY: the child only uses greenrt (which resets its hub after
        // fork), std I/O, and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let g = Builder::new()
                .name("child-spinner")
                .spawn(|| spin(Duration::from_millis(300)))
                .unwrap();
            g.join().unwrap();
            println!("CHILD_MONITOR_RUNNING={}", monitor::is_running());
            let _ = std::io::Write::flush(&mut std::io::stdout());
            // SAFETY: ends the forked process without running the parent's
            // atexit handlers or destructors.
            unsafe { libc::_exit(0) };
        }
        sleeper.kill(); // nobody left to starve while we block in waitpid
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        println!("FORKED_PID={pid}");
        println!("FORKED_STATUS={status}");
        return;
    }
    let out = util::run_child(
        "monitor_restarts_in_forked_child_and_ignores_inherited_hubs",
        &[("GREENRT_MONITOR", "1")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(value(&out, "FORKED_STATUS"), "0");
    assert_eq!(value(&out, "CHILD_MONITOR_RUNNING"), "true");
    let rs = reports(&out);
    assert_eq!(rs.len(), 1, "{rs:#?}");
    // The forked child is single-threaded: its hub's tid is its pid.
    let pid = value(&out, "FORKED_PID");
    assert!(
        rs[0].starts_with(&format!("{PREFIX}greenlet \"child-spinner\" (id ")),
        "{}",
        rs[0]
    );
    assert!(rs[0].contains(&format!(" (tid {pid}) ")), "{}", rs[0]);
}

#[test]
fn monitor_ignores_idle_hub() {
    if util::is_child() {
        print_hub_thread();
        let sleeper = greenrt::spawn(|| greenrt::sleep(Duration::from_millis(500)));
        greenrt::sleep(Duration::from_millis(500)); // in the poller
        sleeper.join().unwrap();
        return;
    }
    let out = util::run_child("monitor_ignores_idle_hub", &[("GREENRT_MONITOR", "1")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_monitor_was_running(&out);
    assert_eq!(reports(&out), Vec::<String>::new());
}

#[test]
fn monitor_thread_exists_only_when_enabled() {
    fn monitor_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
            .filter(|c| c.trim() == "greenrt-monitor")
            .count()
    }
    if util::is_child() {
        greenrt::spawn(|| ()).join().unwrap();
        greenrt::sleep(Duration::from_millis(10));
        println!("MONITOR_THREADS={}", monitor_threads());
        // More hubs do not start more monitors.
        std::thread::spawn(|| greenrt::spawn(|| ()).join().unwrap())
            .join()
            .unwrap();
        println!("MONITOR_THREADS_AFTER_SECOND_HUB={}", monitor_threads());
        return;
    }
    let off = util::run_child("monitor_thread_exists_only_when_enabled", &[]);
    assert!(off.status.success());
    assert!(stdout(&off).contains("MONITOR_THREADS=0"), "{}", stdout(&off));
    let explicit_off = util::run_child("monitor_thread_exists_only_when_enabled", &[("GREENRT_MONITOR", "0")]);
    assert!(explicit_off.status.success());
    assert!(
        stdout(&explicit_off).contains("MONITOR_THREADS=0"),
        "{}",
        stdout(&explicit_off)
    );
    let on = util::run_child("monitor_thread_exists_only_when_enabled", &[("GREENRT_MONITOR", "1")]);
    assert!(on.status.success());
    assert!(stdout(&on).contains("MONITOR_THREADS=1"), "{}", stdout(&on));
    assert!(
        stdout(&on).contains("MONITOR_THREADS_AFTER_SECOND_HUB=1"),
        "{}",
        stdout(&on)
    );
}

#[test]
fn max_blocking_env_sets_threshold() {
    if util::is_child() {
        print_hub_thread();
        println!("MAX_BLOCKING={:?}", monitor::max_blocking());
        let g = Builder::new()
            .name("slow")
            .spawn(|| spin(Duration::from_millis(150)))
            .unwrap();
        g.join().unwrap();
        return;
    }
    let out = util::run_child(
        "max_blocking_env_sets_threshold",
        &[("GREENRT_MONITOR", "1"), ("GREENRT_MAX_BLOCKING", "40")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("MAX_BLOCKING=Some(40ms)"), "{}", stdout(&out));
    let rs = reports(&out);
    assert_eq!(rs.len(), 1, "{rs:#?}");
    assert!(rs[0].contains("(max_blocking 40 ms)"), "{}", rs[0]);
    assert!(blocked_ms(&rs[0]) >= 40, "{}", rs[0]);
}

#[test]
fn bad_monitor_env_is_error() {
    if util::is_child() {
        greenrt::spawn(|| ()).join().unwrap();
        println!("RAN");
        return;
    }
    let cases = [
        ("GREENRT_MONITOR", "yes", "accepted values: 0 (off), 1 (on)"),
        (
            "GREENRT_MAX_BLOCKING",
            "0.1",
            "accepted values: milliseconds, an integer from 1 to 3600000 (e.g. 100)",
        ),
        (
            "GREENRT_MAX_BLOCKING",
            "0",
            "accepted values: milliseconds, an integer from 1 to 3600000 (e.g. 100)",
        ),
    ];
    for (var, val, accepted) in cases {
        let out = util::run_child("bad_monitor_env_is_error", &[(var, val)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={val}: {err}");
        assert!(
            err.contains(&format!("greenrt: invalid {var}={val:?}; {accepted}")),
            "{err}"
        );
        assert!(!stdout(&out).contains("RAN"));
    }
}
