//! Group and Pool: tracking, joining and killing greenlets together,
//! bounded concurrency, map/imap/imap_unordered.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::pool::{Group, Pool};
use greenrt::{sleep, spawn, Error};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Increments its counter when dropped (proves a killed greenlet unwound).
struct Unwound(Rc<Cell<u32>>);

impl Drop for Unwound {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn pool_spawn_waits_while_full() {
    let pool = Pool::new(2);
    let a = pool.spawn(|| sleep(ms(100))).unwrap();
    let b = pool.spawn(|| sleep(ms(150))).unwrap();
    assert!(pool.full());
    assert_eq!(pool.free_count(), 0);
    let start = Instant::now();
    let c = pool.spawn(|| 3).unwrap();
    let waited = start.elapsed();
    // It waited, cooperatively, for the first member to finish.
    assert!(waited >= ms(90), "{waited:?}");
    assert!(waited < ms(140), "{waited:?}");
    assert!(a.dead() && !pool.contains(&a));
    assert!(!b.dead());
    assert!(pool.len() <= 2);
    assert_eq!(c.get(), Ok(3));
}

#[test]
fn pool_map_is_ordered() {
    let pool = Pool::new(5);
    let finished = Rc::new(RefCell::new(Vec::new()));
    let f2 = finished.clone();
    let out = pool
        .map(
            move |i: u64| {
                // Later items finish first.
                sleep(ms(5 * (10 - i)));
                f2.borrow_mut().push(i);
                i * 10
            },
            0..10u64,
        )
        .unwrap();
    assert_eq!(out, (0..10).map(|i| i * 10).collect::<Vec<_>>());
    let order = finished.borrow().clone();
    assert_eq!(order.len(), 10);
    assert_ne!(order, (0..10).collect::<Vec<_>>(), "items did not overlap");
    assert!(pool.is_empty());
}

#[test]
fn group_map_runs_all_at_once() {
    let group = Group::new();
    let start = Instant::now();
    let out = group
        .map(
            |i: u32| {
                sleep(ms(100));
                i + 1
            },
            vec![1, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap();
    assert_eq!(out, vec![2, 3, 4, 5, 6, 7, 8, 9]);
    assert!(start.elapsed() < ms(400), "{:?}", start.elapsed());
}

#[test]
fn imap_unordered_yields_in_completion_order() {
    let pool = Pool::new(5);
    let out: Vec<u64> = pool
        .imap_unordered(
            |d: u64| {
                sleep(ms(d));
                d
            },
            vec![100, 20, 60, 40, 80],
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, vec![20, 40, 60, 80, 100]);
}

#[test]
fn imap_yields_in_input_order_as_results_arrive() {
    let pool = Pool::new(4);
    let start = Instant::now();
    let mut it = pool.imap(
        |d: u64| {
            sleep(ms(d));
            d
        },
        vec![20, 200, 10],
    );
    assert_eq!(it.next(), Some(Ok(20)));
    let first = start.elapsed();
    assert!(first < ms(150), "first result waited for later ones: {first:?}");
    assert_eq!(it.next(), Some(Ok(200)));
    assert!(start.elapsed() >= ms(200));
    assert_eq!(it.next(), Some(Ok(10)));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
}

#[test]
fn group_join_waits_for_all() {
    let group = Group::new();
    let done = Rc::new(Cell::new(0u32));
    let start = Instant::now();
    for i in 1..=5u64 {
        let d = done.clone();
        group
            .spawn(move || {
                sleep(ms(20 * i));
                d.set(d.get() + 1);
            })
            .unwrap();
    }
    assert_eq!(group.len(), 5);
    group.join(None).unwrap();
    assert_eq!(done.get(), 5);
    assert!(group.is_empty());
    assert!(start.elapsed() >= ms(100));
}

#[test]
fn group_join_times_out() {
    let group = Group::new();
    let g = group.spawn(|| sleep(ms(300))).unwrap();
    let start = Instant::now();
    assert_eq!(group.join(Some(ms(30))), Err(Error::TimedOut));
    assert!(start.elapsed() < ms(200));
    assert!(group.contains(&g));
    group.kill(None).unwrap();
}

#[test]
fn group_join_waits_for_greenlets_added_meanwhile() {
    let group = Group::new();
    let g2 = group.clone();
    let late = Rc::new(Cell::new(false));
    let l2 = late.clone();
    group
        .spawn(move || {
            sleep(ms(20));
            g2.spawn(move || {
                sleep(ms(50));
                l2.set(true);
            })
            .unwrap();
        })
        .unwrap();
    group.join(None).unwrap();
    assert!(late.get());
}

#[test]
fn group_kill_kills_all() {
    let group = Group::new();
    let unwound = Rc::new(Cell::new(0u32));
    let finished = Rc::new(Cell::new(0u32));
    let gs: Vec<_> = (0..5)
        .map(|_| {
            let (u, f) = (unwound.clone(), finished.clone());
            group
                .spawn(move || {
                    let _guard = Unwound(u);
                    sleep(Duration::from_secs(10));
                    f.set(f.get() + 1);
                })
                .unwrap()
        })
        .collect();
    sleep(ms(10)); // let them start
    let start = Instant::now();
    group.kill(None).unwrap();
    assert!(start.elapsed() < ms(500));
    assert!(group.is_empty());
    for g in &gs {
        assert!(g.dead());
        assert_eq!(g.exception(), Some(Error::Killed));
    }
    assert_eq!(unwound.get(), 5);
    assert_eq!(finished.get(), 0);
}

#[test]
fn greenlets_leave_group_when_done() {
    let group = Group::new();
    let g = group.spawn(|| sleep(ms(10))).unwrap();
    assert!(group.contains(&g));
    assert_eq!(group.greenlets().len(), 1);
    assert_eq!(group.greenlets()[0].id(), g.id());
    g.join().unwrap();
    // Gone by the time anyone sees it dead.
    assert!(!group.contains(&g));
    assert_eq!(group.len(), 0);

    // So are members that panic, and members killed before they start.
    let p = group.spawn(|| panic!("member fails")).unwrap();
    let k = group.spawn(|| ()).unwrap();
    k.kill();
    assert!(!group.contains(&k));
    assert!(p.join().is_ok() && p.exception().is_some());
    assert!(group.is_empty());

    // Also greenlets spawned elsewhere and added.
    let h = spawn(|| sleep(ms(10)));
    group.add(&h).unwrap();
    assert!(group.contains(&h));
    group.join(None).unwrap();
    assert!(!group.contains(&h));
}

#[test]
fn discard_frees_a_pool_slot() {
    let pool = Pool::new(1);
    let long = pool.spawn(|| sleep(Duration::from_secs(10))).unwrap();
    assert!(pool.full());
    pool.discard(&long);
    assert!(!pool.contains(&long));
    assert_eq!(pool.free_count(), 1);
    // A spawn into the freed slot does not wait: this greenlet never
    // switched away.
    let switches = greenrt::hub::switch_count();
    let quick = pool.spawn(|| 1).unwrap();
    assert_eq!(greenrt::hub::switch_count(), switches, "spawn waited for a slot");
    assert_eq!(quick.get(), Ok(1));
    long.kill();
}

#[test]
fn pool_limits_concurrency() {
    let pool = Pool::new(3);
    let active = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let (a, p) = (active.clone(), peak.clone());
    let start = Instant::now();
    let out = pool
        .map(
            move |i: usize| {
                a.set(a.get() + 1);
                p.set(p.get().max(a.get()));
                sleep(ms(10));
                a.set(a.get() - 1);
                i
            },
            0..21,
        )
        .unwrap();
    assert_eq!(out.len(), 21);
    assert_eq!(peak.get(), 3);
    // Seven rounds of three.
    assert!(start.elapsed() >= ms(70), "{:?}", start.elapsed());
}

#[test]
fn wait_available_waits_for_a_free_slot() {
    let pool = Pool::new(1);
    let g = pool.spawn(|| sleep(ms(60))).unwrap();
    assert_eq!(pool.wait_available(Some(ms(10))), Err(Error::TimedOut));
    let start = Instant::now();
    assert_eq!(pool.wait_available(None), Ok(1));
    assert!(start.elapsed() >= ms(30));
    assert!(g.dead());
}

#[test]
fn map_propagates_first_failure_and_kills_the_rest() {
    let pool = Pool::new(4);
    let finished = Rc::new(Cell::new(0u32));
    let f2 = finished.clone();
    let start = Instant::now();
    let r = pool.map(
        move |i: u32| {
            if i == 2 {
                sleep(ms(10));
                panic!("item {i} failed");
            }
            sleep(ms(300));
            f2.set(f2.get() + 1);
            i
        },
        0..8,
    );
    match r {
        Err(Error::Panicked(m)) => assert!(m.contains("item 2 failed"), "{m}"),
        other => panic!("expected the panic, got {other:?}"),
    }
    // Fails fast: it did not wait for the 300 ms items before item 2.
    assert!(start.elapsed() < ms(200), "{:?}", start.elapsed());
    // The others were killed: the pool empties long before 300 ms sleeps end.
    pool.join(Some(ms(100))).unwrap();
    sleep(ms(400));
    assert_eq!(finished.get(), 0);
}

#[test]
fn imap_keeps_going_after_a_failure() {
    let group = Group::new();
    let out: Vec<Result<u32, Error>> = group
        .imap(
            |i: u32| {
                if i == 1 {
                    panic!("bad item");
                }
                i
            },
            0..3,
        )
        .collect();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], Ok(0));
    assert!(matches!(&out[1], Err(Error::Panicked(m)) if m.contains("bad item")));
    assert_eq!(out[2], Ok(2));
}

#[test]
fn dropping_imap_early_stops_the_work() {
    let pool = Pool::new(2);
    let started = Rc::new(Cell::new(0u32));
    let s2 = started.clone();
    let mut it = pool.imap_unordered(
        move |i: u32| {
            s2.set(s2.get() + 1);
            sleep(ms(20 * u64::from(i + 1)));
            i
        },
        0..100,
    );
    assert_eq!(it.next(), Some(Ok(0)));
    drop(it);
    let so_far = started.get();
    sleep(ms(200));
    assert_eq!(started.get(), so_far, "items kept being fed");
    assert!(pool.is_empty());
    assert!(so_far < 10);
}

#[test]
fn kill_interrupts_a_greenlet_waiting_for_a_slot() {
    let pool = Pool::new(1);
    let holder = pool.spawn(|| sleep(ms(100))).unwrap();
    let (p1, p2) = (pool.clone(), pool.clone());
    let blocked = spawn(move || p1.spawn(|| "never").map(|_| ()));
    let next = spawn(move || p2.spawn(|| "next").unwrap().get());
    sleep(ms(10));
    assert!(!blocked.dead());
    blocked.kill();
    assert_eq!(blocked.exception(), Some(Error::Killed));
    // The slot still goes to the next waiter once the holder finishes.
    assert_eq!(next.get().unwrap(), Ok("next"));
    assert!(holder.dead());
}

#[test]
fn pool_spawn_that_can_never_proceed_is_loop_exit() {
    let pool = Pool::new(1);
    let main = greenrt::current();
    // The only member waits for the root greenlet, which never ends.
    let stuck = pool.spawn(move || main.join()).unwrap();
    let start = Instant::now();
    let r = pool.spawn(|| ());
    assert_eq!(r.err(), Some(Error::WouldBlockForever));
    assert!(start.elapsed() < ms(500));
    assert_eq!(pool.join(None), Err(Error::WouldBlockForever));
    pool.kill(None).unwrap();
    assert!(stuck.dead());
}

#[test]
fn group_kill_from_a_member_spares_the_caller() {
    let group = Group::new();
    let others: Vec<_> = (0..3)
        .map(|_| group.spawn(|| sleep(Duration::from_secs(10))).unwrap())
        .collect();
    let g2 = group.clone();
    let killer = group
        .spawn(move || {
            g2.kill(Some(ms(500))).unwrap();
            g2.len()
        })
        .unwrap();
    assert_eq!(killer.get(), Ok(1));
    for g in &others {
        assert_eq!(g.exception(), Some(Error::Killed));
    }
    group.join(None).unwrap();
}
