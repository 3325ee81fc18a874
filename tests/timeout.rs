//! Timeout and with_timeout: delivery by unwinding, nesting, cancellation.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::{spawn, with_timeout, Elapsed, Error, Timeout};

#[test]
fn with_timeout_interrupts_a_sleep() {
    let start = Instant::now();
    let r = with_timeout(Duration::from_millis(30), || greenrt::sleep(Duration::from_secs(10)));
    assert_eq!(r, Err(Elapsed));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(30) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn with_timeout_returns_value_when_fast_enough() {
    assert_eq!(with_timeout(Duration::from_secs(5), || 5), Ok(5));
    // The cancelled timer must not fire later.
    greenrt::sleep(Duration::from_millis(20));
}

#[test]
fn timeout_runs_destructors_on_the_way_out() {
    struct Flag(Rc<Cell<u32>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    let r = with_timeout(Duration::from_millis(10), move || {
        let _a = Flag(n2.clone());
        let _b = Flag(n2);
        greenrt::sleep(Duration::from_secs(10));
    });
    assert_eq!(r, Err(Elapsed));
    assert_eq!(n.get(), 2);
}

#[test]
fn inner_timeout_does_not_catch_outer_expiry() {
    let inner_caught = Rc::new(Cell::new(false));
    let ic = inner_caught.clone();
    let outer = with_timeout(Duration::from_millis(20), move || {
        let inner = with_timeout(Duration::from_secs(10), || greenrt::sleep(Duration::from_secs(10)));
        ic.set(true);
        inner
    });
    assert_eq!(outer, Err(Elapsed));
    assert!(
        !inner_caught.get(),
        "the outer expiry must pass through the inner with_timeout"
    );
}

#[test]
fn outer_timeout_does_not_catch_inner_expiry() {
    let r = with_timeout(Duration::from_secs(10), || {
        let inner = with_timeout(Duration::from_millis(10), || greenrt::sleep(Duration::from_secs(10)));
        (inner, "outer continued")
    });
    assert_eq!(r, Ok((Err(Elapsed), "outer continued")));
}

#[test]
fn timeout_guard_cancel_on_drop() {
    {
        let _t = Timeout::start(Duration::from_millis(10));
    }
    greenrt::sleep(Duration::from_millis(40)); // would unwind if not cancelled
    let mut t = Timeout::start(Duration::from_millis(10));
    assert!(t.pending());
    t.cancel();
    assert!(!t.pending());
    greenrt::sleep(Duration::from_millis(30));
}

#[test]
fn timeout_in_greenlet_interrupts_only_that_greenlet() {
    let other = spawn(|| {
        greenrt::sleep(Duration::from_millis(60));
        "other finished"
    });
    let g = spawn(|| with_timeout(Duration::from_millis(10), || greenrt::sleep(Duration::from_secs(5))));
    assert_eq!(g.get(), Ok(Err(Elapsed)));
    assert_eq!(other.get(), Ok("other finished"));
}

#[test]
fn uncaught_timeout_ends_greenlet_with_error() {
    if util::is_child() {
        let g = spawn(|| {
            let _t = Timeout::start(Duration::from_millis(10));
            greenrt::sleep(Duration::from_secs(5));
        });
        assert_eq!(g.get(), Err(Error::TimeoutEscaped));
        assert!(!g.successful());
        return;
    }
    let out = util::run_child("uncaught_timeout_ends_greenlet_with_error", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("failed with Timeout"), "{err}");
}

#[test]
fn timeout_interrupts_join() {
    let g = spawn(|| greenrt::sleep(Duration::from_secs(5)));
    let r = with_timeout(Duration::from_millis(10), || g.join());
    assert_eq!(r, Err(Elapsed));
    assert!(!g.dead());
    g.kill();
}

#[test]
fn timeout_started_many_times_costs_nothing_later() {
    for _ in 0..10_000 {
        let _ = with_timeout(Duration::from_secs(60), || ());
    }
    // Nothing is pending: main would see "block forever" from a waiting
    // call if the heap still held live timers; assert via a cheap sleep.
    let start = Instant::now();
    greenrt::sleep(Duration::from_millis(1));
    assert!(start.elapsed() < Duration::from_millis(500));
}
