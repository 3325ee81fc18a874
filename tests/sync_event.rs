//! Event and AsyncResult: waking, ordering, timeouts, kill, LoopExit.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::sync::{AsyncError, AsyncResult, Event};
use greenrt::{hub, joinall, sleep, spawn, with_timeout, yield_now, Elapsed, Error, LoopExit};
use util::{SetOnDrop, MS};

// ===== Event =====

#[test]
fn event_wait_on_set_event_returns_without_switching() {
    let ev = Event::new();
    ev.set();
    let before = hub::switch_count();
    assert_eq!(ev.wait(), Ok(()));
    assert!(ev.wait_timeout(Duration::from_secs(5)));
    assert_eq!(hub::switch_count(), before);
}

#[test]
fn event_wakes_waiters_in_fifo_order() {
    let ev = Rc::new(Event::new());
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..10)
        .map(|i| {
            let (ev, order) = (ev.clone(), order.clone());
            spawn(move || {
                ev.wait().unwrap();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    yield_now(); // all ten are now waiting, in spawn order
    assert!(order.borrow().is_empty());
    ev.set();
    joinall(&gs, None).unwrap();
    assert_eq!(*order.borrow(), (0..10).collect::<Vec<_>>());
}

#[test]
fn event_set_releases_100_waiters_at_once() {
    let ev = Rc::new(Event::new());
    let released = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..100)
        .map(|_| {
            let (ev, released) = (ev.clone(), released.clone());
            spawn(move || {
                ev.wait().unwrap();
                released.set(released.get() + 1);
                sleep(100 * MS);
            })
        })
        .collect();
    sleep(20 * MS);
    assert_eq!(released.get(), 0, "nobody may pass an unset event");
    let start = Instant::now();
    let switches = hub::switch_count();
    ev.set();
    yield_now();
    // One turn of the scheduler ran every waiter.
    assert_eq!(released.get(), 100);
    assert!(hub::switch_count() - switches >= 100);
    joinall(&gs, None).unwrap();
    // They slept together: one after another would take 10 s.
    let took = start.elapsed();
    assert!(took >= 100 * MS && took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn event_wait_timeout_returns_false_when_unset() {
    let ev = Event::new();
    let start = Instant::now();
    assert!(!ev.wait_timeout(30 * MS));
    assert!(start.elapsed() >= 30 * MS);
}

#[test]
fn event_wait_timeout_returns_true_when_set_meanwhile() {
    let ev = Rc::new(Event::new());
    let e2 = ev.clone();
    spawn(move || {
        sleep(10 * MS);
        e2.set();
    });
    let start = Instant::now();
    assert!(ev.wait_timeout(Duration::from_secs(5)));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn event_wait_in_main_with_nothing_to_set_it_is_loop_exit() {
    let ev = Event::new();
    let start = Instant::now();
    assert_eq!(ev.wait(), Err(LoopExit));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn event_clear_makes_wait_block_again() {
    let ev = Event::new();
    ev.set();
    assert!(ev.is_set());
    ev.clear();
    assert!(!ev.is_set());
    assert!(!ev.wait_timeout(10 * MS));
}

#[test]
fn event_woken_waiter_succeeds_even_if_cleared_before_it_runs() {
    let ev = Rc::new(Event::new());
    let e2 = ev.clone();
    let g = spawn(move || e2.wait());
    yield_now();
    ev.set();
    ev.clear();
    assert_eq!(g.get().unwrap(), Ok(()));
}

#[test]
fn kill_while_blocked_in_event_wait_unwinds() {
    let ev = Rc::new(Event::new());
    let dropped = Rc::new(Cell::new(false));
    let returned = Rc::new(Cell::new(false));
    let (e2, d2, r2) = (ev.clone(), dropped.clone(), returned.clone());
    let g = spawn(move || {
        let _guard = SetOnDrop(d2);
        let _ = e2.wait();
        r2.set(true);
    });
    yield_now();
    g.kill();
    assert!(dropped.get(), "the killed greenlet's stack was unwound");
    assert!(!returned.get(), "wait must not return to a killed greenlet");
    assert_eq!(g.get(), Err(Error::Killed));
    // The event still works for others.
    let e3 = ev.clone();
    let h = spawn(move || e3.wait());
    yield_now();
    ev.set();
    assert_eq!(h.get().unwrap(), Ok(()));
}

#[test]
fn with_timeout_interrupts_event_wait() {
    let ev = Rc::new(Event::new());
    let e2 = ev.clone();
    // Keep the hub busy so the main context's wait is not a LoopExit.
    let bg = spawn(|| sleep(Duration::from_secs(1)));
    let start = Instant::now();
    let r = with_timeout(20 * MS, || e2.wait());
    assert_eq!(r, Err(Elapsed));
    assert!(start.elapsed() >= 20 * MS && start.elapsed() < Duration::from_millis(900));
    bg.kill();
}

// ===== AsyncResult =====

#[test]
fn async_result_get_gives_every_waiter_a_clone() {
    let r: Rc<AsyncResult<String, String>> = Rc::new(AsyncResult::new());
    let gs: Vec<_> = (0..5)
        .map(|_| {
            let r = r.clone();
            spawn(move || r.get())
        })
        .collect();
    yield_now();
    assert!(!r.ready());
    r.set("v".to_string());
    for g in &gs {
        assert_eq!(g.get().unwrap(), Ok("v".to_string()));
    }
    assert!(r.ready() && r.successful());
    assert_eq!(r.value(), Some("v".to_string()));
    assert_eq!(r.error(), None);
}

#[test]
fn async_result_set_error_fails_get() {
    let r: Rc<AsyncResult<u32, String>> = Rc::new(AsyncResult::new());
    let r2 = r.clone();
    spawn(move || {
        sleep(5 * MS);
        r2.set_error("boom".into());
    });
    assert_eq!(r.get(), Err(AsyncError::Failed("boom".into())));
    assert!(r.ready() && !r.successful());
    assert_eq!(r.error(), Some("boom".to_string()));
}

#[test]
fn async_result_get_timeout_times_out_when_unset() {
    let r: AsyncResult<u32, ()> = AsyncResult::new();
    let start = Instant::now();
    assert_eq!(r.get_timeout(20 * MS), Err(AsyncError::TimedOut));
    assert!(start.elapsed() >= 20 * MS);
    assert!(!r.wait_timeout(MS));
}

#[test]
fn async_result_wait_wakes_waiters_in_fifo_order() {
    let r: Rc<AsyncResult<u32, ()>> = Rc::new(AsyncResult::new());
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let (r, order) = (r.clone(), order.clone());
            spawn(move || {
                r.wait().unwrap();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    yield_now();
    r.set(1);
    joinall(&gs, None).unwrap();
    assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn async_result_get_in_main_with_nothing_to_set_it_is_loop_exit() {
    let r: AsyncResult<u32, ()> = AsyncResult::new();
    assert_eq!(r.get(), Err(AsyncError::LoopExit));
    assert_eq!(r.wait(), Err(LoopExit));
}

#[test]
fn kill_while_blocked_in_async_result_get_unwinds() {
    let r: Rc<AsyncResult<u32, ()>> = Rc::new(AsyncResult::new());
    let dropped = Rc::new(Cell::new(false));
    let (r2, d2) = (r.clone(), dropped.clone());
    let g = spawn(move || {
        let _guard = SetOnDrop(d2);
        r2.get()
    });
    yield_now();
    g.kill();
    assert!(dropped.get());
    assert_eq!(g.get(), Err(Error::Killed));
    r.set(3);
    assert_eq!(r.get(), Ok(3));
}
