//! Lock and RLock: exclusion, FIFO, re-entrancy, ownership, kill, Timeout,
//! LoopExit.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::sync::{Lock, NotOwner, OverRelease, RLock};
use greenrt::{current, joinall, sleep, spawn, with_timeout, yield_now, Elapsed, Error, LoopExit};
use util::{SetOnDrop, MS};

// ===== Lock =====

#[test]
fn lock_excludes_other_greenlets_across_switches() {
    let lock = Rc::new(Lock::new());
    let inside = Rc::new(Cell::new(false));
    let overlaps = Rc::new(Cell::new(0));
    let runs = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..5)
        .map(|_| {
            let (lock, inside, overlaps, runs) = (lock.clone(), inside.clone(), overlaps.clone(), runs.clone());
            spawn(move || {
                for _ in 0..3 {
                    let _held = lock.acquire_guard().unwrap();
                    if inside.replace(true) {
                        overlaps.set(overlaps.get() + 1);
                    }
                    yield_now(); // others run, but must not enter
                    sleep(MS);
                    inside.set(false);
                    runs.set(runs.get() + 1);
                }
            })
        })
        .collect();
    joinall(&gs, None).unwrap();
    assert_eq!(overlaps.get(), 0);
    assert_eq!(runs.get(), 15);
    assert!(!lock.locked());
}

#[test]
fn lock_waiters_acquire_in_fifo_order() {
    let lock = Rc::new(Lock::new());
    lock.acquire().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let (lock, order) = (lock.clone(), order.clone());
            spawn(move || {
                let _held = lock.acquire_guard().unwrap();
                order.borrow_mut().push(i);
                sleep(MS);
            })
        })
        .collect();
    yield_now();
    lock.release().unwrap();
    joinall(&gs, None).unwrap();
    assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn lock_release_when_unlocked_is_error() {
    let lock = Lock::new();
    assert_eq!(lock.release(), Err(OverRelease));
    assert!(lock.try_acquire());
    assert!(!lock.try_acquire());
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Err(OverRelease));
}

#[test]
fn lock_can_be_released_by_another_greenlet() {
    let lock = Rc::new(Lock::new());
    lock.acquire().unwrap();
    let l2 = lock.clone();
    spawn(move || l2.release()).get().unwrap().unwrap();
    assert!(!lock.locked());
}

#[test]
fn lock_acquire_in_main_while_held_is_loop_exit() {
    let lock = Lock::new();
    let _held = lock.acquire_guard().unwrap();
    assert_eq!(lock.acquire(), Err(LoopExit), "Lock is not re-entrant");
}

#[test]
fn lock_acquire_timeout_returns_false_while_held() {
    let lock = Lock::new();
    lock.acquire().unwrap();
    let start = Instant::now();
    assert!(!lock.acquire_timeout(20 * MS));
    assert!(start.elapsed() >= 20 * MS);
    assert!(lock.acquire_guard_timeout(MS).is_none());
    assert!(lock.try_acquire_guard().is_none());
}

#[test]
fn kill_while_blocked_in_lock_acquire_unwinds() {
    let lock = Rc::new(Lock::new());
    lock.acquire().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let (l2, d2) = (lock.clone(), dropped.clone());
    let g = spawn(move || {
        let _guard = SetOnDrop(d2);
        l2.acquire_guard().is_ok()
    });
    yield_now();
    g.kill();
    assert!(dropped.get());
    assert_eq!(g.get(), Err(Error::Killed));
    lock.release().unwrap();
    assert!(!lock.locked(), "the lock was not handed to the dead greenlet");
}

#[test]
fn lock_guard_is_released_when_holder_is_killed() {
    let lock = Rc::new(Lock::new());
    let l2 = lock.clone();
    let g = spawn(move || {
        let _held = l2.acquire_guard().unwrap();
        sleep(Duration::from_secs(10));
    });
    yield_now();
    assert!(lock.locked());
    g.kill();
    assert!(!lock.locked());
}

#[test]
fn with_timeout_interrupts_lock_acquire() {
    let lock = Rc::new(Lock::new());
    lock.acquire().unwrap();
    let l2 = lock.clone();
    let g = spawn(move || with_timeout(20 * MS, || l2.acquire()));
    let start = Instant::now();
    assert_eq!(g.get().unwrap(), Err(Elapsed));
    assert!(start.elapsed() >= 20 * MS);
    lock.release().unwrap();
    assert!(!lock.locked());
}

// ===== RLock =====

#[test]
fn rlock_reentrant_per_greenlet() {
    let lock = Rc::new(RLock::new());
    lock.acquire().unwrap();
    lock.acquire().unwrap();
    assert!(lock.try_acquire());
    assert_eq!(lock.count(), 3);
    assert!(lock.is_owned());
    let l2 = lock.clone();
    let other = spawn(move || {
        let owned = l2.is_owned();
        let got = l2.try_acquire();
        let waited = l2.acquire_timeout(10 * MS);
        (owned, got, waited)
    });
    assert_eq!(other.get().unwrap(), (false, false, false));
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(lock.locked(), "one level is still held");
    lock.release().unwrap();
    assert!(!lock.locked());
    assert_eq!(lock.count(), 0);
    let l3 = lock.clone();
    assert!(spawn(move || l3.try_acquire()).get().unwrap());
}

#[test]
fn rlock_blocks_others_until_fully_released() {
    let lock = Rc::new(RLock::new());
    let g1 = lock.acquire_guard().unwrap();
    let g2 = lock.acquire_guard().unwrap();
    let got_at = Rc::new(Cell::new(0));
    let (l2, got2) = (lock.clone(), got_at.clone());
    let step = Rc::new(Cell::new(0));
    let s2 = step.clone();
    let w = spawn(move || {
        let _held = l2.acquire_guard().unwrap();
        got2.set(s2.get());
        assert!(l2.is_owned());
    });
    yield_now();
    step.set(1);
    drop(g2);
    yield_now();
    assert!(!w.dead(), "one level still held");
    step.set(2);
    drop(g1);
    w.join().unwrap();
    assert!(w.successful());
    assert_eq!(got_at.get(), 2);
    assert!(!lock.locked());
}

#[test]
fn rlock_release_by_non_owner_is_error() {
    let lock = Rc::new(RLock::new());
    assert_eq!(lock.release(), Err(NotOwner));
    lock.acquire().unwrap();
    let l2 = lock.clone();
    let r = spawn(move || l2.release()).get().unwrap();
    assert_eq!(r, Err(NotOwner));
    assert!(lock.locked() && lock.is_owned());
    assert_eq!(lock.count(), 1);
}

#[test]
fn rlock_waiters_acquire_in_fifo_order() {
    let lock = Rc::new(RLock::new());
    lock.acquire().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (lock, order) = (lock.clone(), order.clone());
            spawn(move || {
                let _a = lock.acquire_guard().unwrap();
                let _b = lock.acquire_guard().unwrap(); // re-entry
                order.borrow_mut().push((i, current().id()));
                sleep(MS);
            })
        })
        .collect();
    yield_now();
    lock.release().unwrap();
    joinall(&gs, None).unwrap();
    let order = order.borrow();
    let idx: Vec<_> = order.iter().map(|x| x.0).collect();
    assert_eq!(idx, vec![0, 1, 2, 3]);
    for (k, g) in gs.iter().enumerate() {
        assert_eq!(order[k].1, g.id());
    }
}

#[test]
fn rlock_acquire_in_main_held_by_dead_greenlet_is_loop_exit() {
    let lock = Rc::new(RLock::new());
    let l2 = lock.clone();
    spawn(move || l2.acquire().unwrap()).join().unwrap();
    assert!(lock.locked() && !lock.is_owned());
    assert_eq!(lock.acquire(), Err(LoopExit));
}

#[test]
fn kill_while_blocked_in_rlock_acquire_unwinds() {
    let lock = Rc::new(RLock::new());
    lock.acquire().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let (l2, d2) = (lock.clone(), dropped.clone());
    let g = spawn(move || {
        let _guard = SetOnDrop(d2);
        l2.acquire().is_ok()
    });
    yield_now();
    g.kill();
    assert!(dropped.get());
    assert_eq!(g.get(), Err(Error::Killed));
    lock.release().unwrap();
    assert!(!lock.locked(), "the lock was not handed to the dead greenlet");
}

#[test]
fn rlock_grant_is_passed_on_when_waiter_is_killed() {
    let lock = Rc::new(RLock::new());
    lock.acquire().unwrap();
    let (la, lb) = (lock.clone(), lock.clone());
    let a = spawn(move || la.acquire().is_ok());
    let b = spawn(move || {
        lb.acquire().unwrap();
        lb.is_owned()
    });
    yield_now();
    lock.release().unwrap(); // handed to a
    a.kill_async();
    assert_eq!(a.get(), Err(Error::Killed));
    assert!(b.get().unwrap(), "b got the lock a could not take");
}

#[test]
fn with_timeout_interrupts_rlock_acquire() {
    let lock = Rc::new(RLock::new());
    lock.acquire().unwrap();
    let l2 = lock.clone();
    let g = spawn(move || with_timeout(20 * MS, || l2.acquire()));
    assert_eq!(g.get().unwrap(), Err(Elapsed));
    lock.release().unwrap();
    assert!(!lock.locked());
}
