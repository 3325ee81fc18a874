//! Greenlet lifecycle: spawn, join, get, kill, links, panics.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::{spawn, spawn_later, Builder, Error};

#[test]
fn spawn_returns_value_through_get() {
    let g = spawn(|| 6 * 7);
    assert_eq!(g.get(), Ok(42));
    assert!(g.dead() && g.ready() && g.successful());
    assert_eq!(g.get(), Err(Error::ValueTaken));
}

#[test]
fn spawned_greenlet_runs_only_when_spawner_blocks() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = spawn(move || r.set(true));
    assert!(!ran.get(), "spawn must not switch");
    g.join().unwrap();
    assert!(ran.get());
}

#[test]
fn hundred_sleepers_finish_together() {
    let start = Instant::now();
    let switches = greenrt::hub::switch_count();
    let gs: Vec<_> = (0..100)
        .map(|_| spawn(|| greenrt::sleep(Duration::from_millis(100))))
        .collect();
    greenrt::joinall(&gs, None).unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_millis(600), "sleeps did not overlap: {took:?}");
    assert!(greenrt::hub::switch_count() - switches >= 200);
}

#[test]
fn hundred_thousand_greenlets_spawned_and_joined() {
    let n = 100_000u64;
    let gs: Vec<_> = (0..n).map(|i| spawn(move || i)).collect();
    greenrt::joinall(&gs, None).unwrap();
    let sum: u64 = gs.iter().map(|g| g.get().unwrap()).sum();
    assert_eq!(sum, n * (n - 1) / 2);
    assert_eq!(greenrt::hub::live_greenlets(), 0);
    // Stacks are mapped only when a greenlet starts and are reused.
    assert!(greenrt::mapped_stacks() < 2000, "{}", greenrt::mapped_stacks());
}

#[test]
fn kill_unwinds_blocked_greenlet_and_runs_destructors() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let g = spawn(move || {
        let _f = Flag(d);
        greenrt::sleep(Duration::from_secs(60));
        a.set(true);
    });
    greenrt::sleep(Duration::from_millis(5));
    let start = Instant::now();
    g.kill();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(g.dead());
    assert!(dropped.get(), "destructor must run on kill");
    assert!(!after.get(), "code after the switch point must not run");
    assert!(g.successful(), "GreenletExit counts as success");
    assert_eq!(g.get(), Err(Error::Killed));
}

#[test]
fn kill_before_start_never_runs_but_links_do() {
    let ran = Rc::new(Cell::new(false));
    let linked = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = spawn(move || r.set(true));
    let l = linked.clone();
    g.link(move |g| l.set(g.dead()));
    g.kill();
    greenrt::sleep(Duration::from_millis(1));
    assert!(!ran.get());
    assert!(linked.get());
    assert_eq!(g.exception(), Some(Error::Killed));
}

#[test]
fn kill_async_does_not_block() {
    let g = spawn(|| greenrt::sleep(Duration::from_secs(60)));
    greenrt::yield_now();
    g.kill_async();
    assert!(!g.dead(), "kill_async returns before the kill is delivered");
    g.join().unwrap();
    assert!(g.dead());
}

#[test]
fn kill_timeout_reports_a_greenlet_that_refuses_to_die() {
    let g = spawn(|| {
        // Swallow the kill once (bad practice, but possible).
        let _ = std::panic::catch_unwind(|| greenrt::sleep(Duration::from_secs(60)));
        greenrt::sleep(Duration::from_millis(300));
    });
    greenrt::yield_now();
    assert_eq!(g.kill_timeout(Duration::from_millis(50)), Err(Error::TimedOut));
    g.join().unwrap();
}

#[test]
fn killall_kills_every_greenlet() {
    let gs: Vec<_> = (0..10)
        .map(|_| spawn(|| greenrt::sleep(Duration::from_secs(60))))
        .collect();
    greenrt::yield_now();
    greenrt::killall(&gs, Some(Duration::from_secs(1))).unwrap();
    assert!(gs.iter().all(|g| g.dead()));
}

#[test]
fn joinall_timeout_returns_timed_out() {
    let gs = vec![
        spawn(|| greenrt::sleep(Duration::from_millis(10))),
        spawn(|| greenrt::sleep(Duration::from_secs(5))),
    ];
    let start = Instant::now();
    assert_eq!(
        greenrt::joinall(&gs, Some(Duration::from_millis(50))),
        Err(Error::TimedOut)
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(gs[0].dead() && !gs[1].dead());
    gs[1].kill();
}

#[test]
fn join_timeout_and_get_timeout_leave_greenlet_running() {
    let g = spawn(|| {
        greenrt::sleep(Duration::from_millis(100));
        7
    });
    assert_eq!(g.join_timeout(Duration::from_millis(10)), Err(Error::TimedOut));
    assert_eq!(g.get_timeout(Duration::from_millis(10)), Err(Error::TimedOut));
    assert_eq!(g.get_timeout(Duration::from_secs(5)), Ok(7));
}

#[test]
fn panic_is_returned_by_get_and_does_not_escape() {
    let g = Builder::new()
        .name("doomed")
        .spawn(|| -> u8 { panic!("boom {}", 1) })
        .unwrap();
    match g.get() {
        Err(Error::Panicked(m)) => assert!(m.starts_with("boom 1"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!g.successful());
}

#[test]
fn panic_report_names_the_greenlet_once() {
    if util::is_child() {
        let g = Builder::new()
            .name("worker-7")
            .spawn(|| -> u8 { panic!("divide by zero") })
            .unwrap();
        assert!(g.join().is_ok());
        return;
    }
    let out = util::run_child("panic_report_names_the_greenlet_once", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let reports: Vec<_> = err.lines().filter(|l| l.contains("failed with")).collect();
    assert_eq!(reports.len(), 1, "{err}");
    assert!(reports[0].starts_with("greenrt: Greenlet \"worker-7\" (id "), "{err}");
    assert!(
        reports[0].contains("failed with panic: divide by zero (at tests/greenlet.rs:"),
        "{err}"
    );
    assert!(
        !err.contains("panicked at"),
        "default panic hook must stay silent: {err}"
    );
}

#[test]
fn panic_report_silenced_by_log_off() {
    if util::is_child() {
        let g = spawn(|| -> u8 { panic!("quiet") });
        assert!(g.join().is_ok());
        return;
    }
    let out = util::run_child("panic_report_silenced_by_log_off", &[("GREENRT_LOG", "off")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("failed with"), "{err}");
}

#[test]
fn link_runs_in_new_greenlet_even_if_linked_after_death() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let g = spawn(|| 1);
    g.join().unwrap();
    let l = log.clone();
    let me = greenrt::current().id();
    g.link(move |g| l.borrow_mut().push((g.id(), greenrt::current().id() != me)));
    assert!(
        log.borrow().is_empty(),
        "link callbacks run in their own greenlet, later"
    );
    greenrt::sleep(Duration::from_millis(1));
    assert_eq!(*log.borrow(), vec![(g.id(), true)]);
}

#[test]
fn link_value_and_link_exception_choose_by_outcome() {
    let hits = Rc::new(RefCell::new(Vec::new()));
    let ok = spawn(|| 1);
    let bad = spawn(|| -> i32 { panic!("x") });
    for (g, name) in [(&ok, "ok"), (&bad, "bad")] {
        let h = hits.clone();
        g.link_value(move |_| h.borrow_mut().push(format!("{name}:value")));
        let h = hits.clone();
        g.link_exception(move |_| h.borrow_mut().push(format!("{name}:exception")));
    }
    greenrt::joinall(&[ok, bad], None).unwrap();
    greenrt::sleep(Duration::from_millis(1));
    let mut v = hits.borrow().clone();
    v.sort();
    assert_eq!(v, vec!["bad:exception", "ok:value"]);
}

#[test]
fn spawn_later_starts_after_delay_and_kill_prevents_start() {
    let start = Instant::now();
    let g = spawn_later(Duration::from_millis(50), move || start.elapsed());
    let ran_late = g.get().unwrap();
    assert!(ran_late >= Duration::from_millis(50), "{ran_late:?}");
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = spawn_later(Duration::from_millis(20), move || r.set(true));
    g.kill();
    greenrt::sleep(Duration::from_millis(50));
    assert!(!ran.get());
}

#[test]
fn names_and_ids() {
    let g = spawn(|| greenrt::current().name());
    assert_eq!(g.get().unwrap(), format!("Greenlet-{}", g.id()));
    let g = Builder::new()
        .name("fetcher")
        .spawn(|| greenrt::current().name())
        .unwrap();
    assert_eq!(g.get().unwrap(), "fetcher");
    assert_eq!(g.parent_id(), greenrt::current().id());
    assert!(g.spawn_site().file().ends_with("greenlet.rs"));
    g.set_name("renamed");
    assert_eq!(g.name(), "renamed");
    assert!(greenrt::current().is_root());
    assert_eq!(greenrt::current().name(), "main");
}

#[test]
fn joining_yourself_is_an_error_not_a_hang() {
    let slot: Rc<RefCell<Option<greenrt::GreenletRef>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let g = spawn(move || {
        let me = s.borrow().clone().unwrap();
        me.join()
    });
    *slot.borrow_mut() = Some((*g).clone());
    assert_eq!(g.get(), Ok(Err(Error::WouldBlockForever)));
}

#[test]
fn explicit_stack_size_is_honoured() {
    // Deep recursion that needs more than the 256 KiB default.
    fn depth(n: u32) -> u32 {
        let pad = std::hint::black_box([0u8; 1024]);
        if n == 0 {
            0
        } else {
            1 + depth(n - 1) + u32::from(pad[n as usize % 1024])
        }
    }
    let g = Builder::new().stack_size(4 << 20).spawn(|| depth(1000)).unwrap();
    assert_eq!(g.get(), Ok(1000));
}
