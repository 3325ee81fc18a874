//! Semaphore and BoundedSemaphore: limits, FIFO hand-off, kill, Timeout,
//! LoopExit, guards, over-release.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::sync::{BoundedSemaphore, OverRelease, Semaphore};
use greenrt::{hub, joinall, sleep, spawn, with_timeout, yield_now, Elapsed, Error, LoopExit};
use util::{SetOnDrop, MS};

#[test]
fn semaphore_limits_concurrency() {
    let sem = Rc::new(Semaphore::new(3));
    let inside = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let start = Instant::now();
    let gs: Vec<_> = (0..9)
        .map(|_| {
            let (sem, inside, peak) = (sem.clone(), inside.clone(), peak.clone());
            spawn(move || {
                let _permit = sem.acquire_guard().unwrap();
                inside.set(inside.get() + 1);
                peak.set(peak.get().max(inside.get()));
                sleep(50 * MS);
                inside.set(inside.get() - 1);
            })
        })
        .collect();
    joinall(&gs, None).unwrap();
    assert_eq!(peak.get(), 3, "at most three at a time, and three did overlap");
    // Three rounds of 50 ms; one at a time would take nine (450 ms).
    let took = start.elapsed();
    assert!(took >= 150 * MS && took < 400 * MS, "{took:?}");
    assert_eq!(sem.available(), 3);
}

#[test]
fn semaphore_waiters_acquire_in_fifo_order() {
    let sem = Rc::new(Semaphore::new(0));
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..6)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            spawn(move || {
                sem.acquire().unwrap();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    yield_now();
    assert_eq!(sem.waiters(), 6);
    for _ in 0..6 {
        sem.release();
        yield_now();
    }
    joinall(&gs, None).unwrap();
    assert_eq!(*order.borrow(), (0..6).collect::<Vec<_>>());
    assert_eq!(sem.available(), 0, "every permit went to a waiter");
}

#[test]
fn semaphore_release_hands_permit_to_waiter_not_to_newcomer() {
    let sem = Rc::new(Semaphore::new(1));
    sem.acquire().unwrap();
    let s2 = sem.clone();
    let w = spawn(move || s2.acquire().unwrap());
    yield_now();
    assert_eq!(sem.waiters(), 1);
    sem.release();
    // The waiter has not run yet, but the permit is already its own.
    assert!(!sem.try_acquire());
    assert_eq!(sem.available(), 0);
    w.join().unwrap();
    assert_eq!(sem.available(), 0, "the waiter holds the permit");
}

#[test]
fn semaphore_grant_is_passed_on_when_waiter_is_killed() {
    let sem = Rc::new(Semaphore::new(0));
    let (sa, sb) = (sem.clone(), sem.clone());
    let a = spawn(move || sa.acquire().unwrap());
    let b_got = Rc::new(Cell::new(false));
    let b2 = b_got.clone();
    let b = spawn(move || {
        sb.acquire().unwrap();
        b2.set(true);
    });
    yield_now();
    sem.release(); // granted to a
    a.kill_async(); // before a could run
    joinall(&[a.clone(), b.clone()], None).unwrap();
    assert_eq!(a.get(), Err(Error::Killed));
    assert!(b_got.get(), "the permit went on to the next waiter");
    assert_eq!(sem.available(), 0, "and only once");
}

#[test]
fn semaphore_grant_returns_to_counter_when_killed_waiter_was_last() {
    let sem = Rc::new(Semaphore::new(0));
    let s2 = sem.clone();
    let a = spawn(move || s2.acquire().unwrap());
    yield_now();
    sem.release();
    a.kill_async();
    a.join().unwrap();
    assert_eq!(sem.available(), 1, "the permit is not lost");
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn kill_while_blocked_in_semaphore_acquire_unwinds() {
    let sem = Rc::new(Semaphore::new(0));
    let dropped = Rc::new(Cell::new(false));
    let acquired = Rc::new(Cell::new(false));
    let (s2, d2, a2) = (sem.clone(), dropped.clone(), acquired.clone());
    let g = spawn(move || {
        let _guard = SetOnDrop(d2);
        let _ = s2.acquire();
        a2.set(true);
    });
    yield_now();
    g.kill();
    assert!(dropped.get());
    assert!(!acquired.get());
    assert_eq!(g.get(), Err(Error::Killed));
    assert_eq!(sem.waiters(), 0);
    sem.release();
    assert_eq!(sem.available(), 1, "no permit was handed to the dead greenlet");
}

#[test]
fn with_timeout_interrupts_semaphore_acquire() {
    let sem = Rc::new(Semaphore::new(0));
    let s2 = sem.clone();
    let g = spawn(move || with_timeout(20 * MS, || s2.acquire()));
    let start = Instant::now();
    assert_eq!(g.get().unwrap(), Err(Elapsed));
    assert!(start.elapsed() >= 20 * MS);
    assert_eq!(sem.waiters(), 0);
    sem.release();
    assert_eq!(sem.available(), 1);
}

#[test]
fn semaphore_acquire_timeout_returns_false_when_no_permit_comes() {
    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert!(!sem.acquire_timeout(20 * MS));
    assert!(start.elapsed() >= 20 * MS);
    assert!(sem.acquire_guard_timeout(MS).is_none());
    assert!(sem.try_acquire_guard().is_none());
    assert_eq!(sem.waiters(), 0);
    assert_eq!(sem.available(), 0, "a guard never taken must not release");
}

#[test]
fn semaphore_acquire_timeout_gets_permit_released_meanwhile() {
    let sem = Rc::new(Semaphore::new(0));
    let s2 = sem.clone();
    spawn(move || {
        sleep(10 * MS);
        s2.release();
    });
    assert!(sem.acquire_timeout(Duration::from_secs(5)));
    assert_eq!(sem.available(), 0);
}

#[test]
fn semaphore_acquire_in_main_with_no_releaser_is_loop_exit() {
    let sem = Semaphore::new(0);
    assert_eq!(sem.acquire(), Err(LoopExit));
    assert!(sem.acquire_guard().is_err());
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn semaphore_try_acquire_does_not_switch() {
    let sem = Semaphore::new(1);
    let before = hub::switch_count();
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    assert!(sem.locked());
    sem.release();
    sem.acquire().unwrap();
    assert_eq!(hub::switch_count(), before);
}

#[test]
fn semaphore_guard_is_released_when_holder_is_killed() {
    let sem = Rc::new(Semaphore::new(1));
    let s2 = sem.clone();
    let g = spawn(move || {
        let _permit = s2.acquire_guard().unwrap();
        sleep(Duration::from_secs(10));
    });
    yield_now();
    assert_eq!(sem.available(), 0);
    g.kill();
    assert_eq!(sem.available(), 1);
}

#[test]
fn semaphore_release_beyond_initial_raises_counter() {
    let sem = Semaphore::new(1);
    sem.release();
    assert_eq!(sem.available(), 2);
}

#[test]
fn bounded_semaphore_over_release_is_error() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(), Err(OverRelease));
    assert_eq!(sem.available(), 2, "a refused release changes nothing");
    sem.acquire().unwrap();
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Err(OverRelease));
    assert_eq!(sem.bound(), 2);
}

#[test]
fn bounded_semaphore_release_hands_off_to_waiter() {
    let sem = Rc::new(BoundedSemaphore::new(1));
    let _held = sem.try_acquire_guard().unwrap();
    let s2 = sem.clone();
    let w = spawn(move || s2.acquire_timeout(Duration::from_secs(5)));
    yield_now();
    assert_eq!(sem.waiters(), 1);
    drop(_held);
    assert!(w.get().unwrap(), "the waiter got the released permit");
    assert_eq!(sem.available(), 0);
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Err(OverRelease));
}

#[test]
fn kill_while_blocked_in_bounded_semaphore_acquire_unwinds() {
    let sem = Rc::new(BoundedSemaphore::new(1));
    sem.acquire().unwrap();
    let s2 = sem.clone();
    let g = spawn(move || s2.acquire().is_ok());
    yield_now();
    assert_eq!(sem.waiters(), 1);
    g.kill();
    assert_eq!(g.get(), Err(Error::Killed));
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.available(), 1);
}
