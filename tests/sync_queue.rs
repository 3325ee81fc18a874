//! Queue, LifoQueue, PriorityQueue and Channel: order, blocking, hand-off,
//! kill, timeouts, shutdown, task_done/join, LoopExit.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::sync::{Channel, GetError, LifoQueue, PriorityQueue, PutError, Queue, TaskDoneError};
use greenrt::{hub, joinall, sleep, spawn, with_timeout, yield_now, Elapsed, Error, LoopExit};
use util::{SetOnDrop, MS};

// ===== order =====

#[test]
fn queue_is_fifo() {
    let q = Queue::new();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.len(), 5);
    let got: Vec<_> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!(q.is_empty());
}

#[test]
fn lifo_queue_pops_newest_first() {
    let q = LifoQueue::new();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.peek(), Some(4));
    let got: Vec<_> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [4, 3, 2, 1, 0]);
}

#[test]
fn priority_queue_pops_smallest() {
    let q = PriorityQueue::new();
    for x in [5, 1, 4, 2, 3] {
        q.put(x).unwrap();
    }
    assert_eq!(q.peek(), Some(1));
    let got: Vec<_> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [1, 2, 3, 4, 5]);
}

#[test]
fn priority_queue_respects_bound() {
    let q = PriorityQueue::bounded(2);
    q.put((2, "b")).unwrap();
    q.put((1, "a")).unwrap();
    assert!(q.is_full());
    assert!(matches!(q.try_put((0, "z")), Err(PutError::Full((0, "z")))));
    assert_eq!(q.get(), Ok((1, "a")));
}

#[test]
fn queue_peek_returns_next_item_without_removing_it() {
    let q = Queue::new();
    assert_eq!(q.peek(), None::<String>);
    q.put("a".to_string()).unwrap();
    q.put("b".to_string()).unwrap();
    assert_eq!(q.peek(), Some("a".to_string()));
    assert_eq!(q.len(), 2);
    assert_eq!(q.get(), Ok("a".to_string()));
}

#[test]
#[should_panic(expected = "Channel")]
fn queue_bounded_zero_panics_pointing_at_channel() {
    let _ = Queue::<u8>::bounded(0);
}

// ===== non-blocking and timeouts =====

#[test]
fn try_get_on_empty_is_empty_and_try_put_on_full_returns_item() {
    let q = Queue::bounded(1);
    assert_eq!(q.try_get(), Err(GetError::Empty));
    q.try_put(1).unwrap();
    let e = q.try_put(2).unwrap_err();
    assert!(matches!(e, PutError::Full(2)));
    assert_eq!(e.into_inner(), 2);
    assert_eq!(q.try_get(), Ok(1));
}

#[test]
fn queue_get_timeout_times_out_on_empty() {
    let q: Queue<u8> = Queue::new();
    let start = Instant::now();
    assert_eq!(q.get_timeout(20 * MS), Err(GetError::TimedOut));
    assert!(start.elapsed() >= 20 * MS);
    assert_eq!(q.getters(), 0);
}

#[test]
fn queue_put_timeout_on_full_returns_item() {
    let q = Queue::bounded(1);
    q.put("first").unwrap();
    let start = Instant::now();
    let e = q.put_timeout("second", 20 * MS).unwrap_err();
    assert!(matches!(e, PutError::TimedOut("second")));
    assert!(start.elapsed() >= 20 * MS);
    assert_eq!(q.putters(), 0);
    assert_eq!(q.len(), 1);
}

// ===== LoopExit =====

#[test]
fn queue_get_on_empty_in_main_is_loop_exit() {
    let q: Queue<u8> = Queue::new();
    assert_eq!(q.get(), Err(GetError::LoopExit));
}

#[test]
fn queue_put_on_full_in_main_is_loop_exit_with_item() {
    let q = Queue::bounded(1);
    q.put(1).unwrap();
    let e = q.put(2).unwrap_err();
    assert!(matches!(e, PutError::LoopExit(2)));
}

// ===== blocking and hand-off =====

#[test]
fn bounded_put_blocks_until_get_makes_room() {
    let q = Rc::new(Queue::bounded(2));
    let q2 = q.clone();
    let done = Rc::new(Cell::new(0));
    let d2 = done.clone();
    let producer = spawn(move || {
        for i in 0..5 {
            q2.put(i).unwrap();
            d2.set(i + 1);
        }
    });
    yield_now();
    assert_eq!(done.get(), 2, "the third put must block");
    assert_eq!(q.len(), 2);
    assert_eq!(q.putters(), 1);
    let got: Vec<_> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    producer.join().unwrap();
    assert_eq!(done.get(), 5);
}

#[test]
fn queue_getters_are_served_in_fifo_order() {
    let q = Rc::new(Queue::new());
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let q = q.clone();
            spawn(move || (i, q.get().unwrap()))
        })
        .collect();
    yield_now();
    assert_eq!(q.getters(), 5);
    for x in 0..5 {
        q.put(x * 10).unwrap();
    }
    for g in &gs {
        let (i, x) = g.get().unwrap();
        assert_eq!(x, i * 10);
    }
}

#[test]
fn queue_item_goes_to_waiting_getter_not_to_newcomer() {
    let q = Rc::new(Queue::new());
    let q2 = q.clone();
    let g = spawn(move || q2.get().unwrap());
    yield_now();
    q.put("x").unwrap();
    // The getter has not run yet, but the item is already its own.
    assert_eq!(q.try_get(), Err(GetError::Empty));
    assert_eq!(g.get().unwrap(), "x");
}

#[test]
fn queue_free_slot_goes_to_waiting_putter_not_to_newcomer() {
    let q = Rc::new(Queue::bounded(1));
    q.put("a").unwrap();
    let q2 = q.clone();
    let p = spawn(move || q2.put("b"));
    yield_now();
    assert_eq!(q.putters(), 1);
    assert_eq!(q.get(), Ok("a"));
    // The freed slot was filled with the waiting putter's item at once.
    assert!(matches!(q.try_put("c"), Err(PutError::Full("c"))));
    assert_eq!(q.get(), Ok("b"));
    assert_eq!(p.get().unwrap(), Ok(()));
}

#[test]
fn queue_putters_are_served_in_fifo_order() {
    let q = Rc::new(Queue::bounded(1));
    q.put(0).unwrap();
    let ps: Vec<_> = (1..=4)
        .map(|i| {
            let q = q.clone();
            spawn(move || q.put(i).unwrap())
        })
        .collect();
    yield_now();
    assert_eq!(q.putters(), 4);
    let got: Vec<_> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    joinall(&ps, None).unwrap();
}

#[test]
fn queue_hundred_consumers_cooperate() {
    let q = Rc::new(Queue::new());
    let start = Instant::now();
    let gs: Vec<_> = (0..100)
        .map(|_| {
            let q = q.clone();
            spawn(move || {
                let x: u32 = q.get().unwrap();
                sleep(100 * MS);
                x
            })
        })
        .collect();
    yield_now();
    assert_eq!(q.getters(), 100);
    for x in 0..100 {
        q.put(x).unwrap();
    }
    let mut got: Vec<u32> = gs.iter().map(|g| g.get().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    // Sleeping one after another would take 10 s.
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

#[test]
fn queue_nonblocking_calls_do_not_switch() {
    let q = Queue::bounded(2);
    let before = hub::switch_count();
    q.put(1).unwrap();
    q.try_put(2).unwrap();
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.try_get(), Ok(2));
    assert_eq!(hub::switch_count(), before);
}

// ===== kill and Timeout =====

#[test]
fn kill_while_blocked_in_queue_get_unwinds() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::new());
    let dropped = Rc::new(Cell::new(false));
    let (q2, d2) = (q.clone(), dropped.clone());
    let g = spawn(move || {
        let _guard = SetOnDrop(d2);
        q2.get()
    });
    yield_now();
    assert_eq!(q.getters(), 1);
    g.kill();
    assert!(dropped.get());
    assert_eq!(g.get(), Err(Error::Killed));
    assert_eq!(q.getters(), 0);
    // A later item is not lost to the dead getter.
    q.put(7).unwrap();
    assert_eq!(q.try_get(), Ok(7));
}

#[test]
fn kill_while_blocked_in_queue_put_unwinds_and_drops_item() {
    let q = Rc::new(Queue::bounded(1));
    q.put(None).unwrap();
    let item_dropped = Rc::new(Cell::new(false));
    let q2 = q.clone();
    let item = SetOnDrop(item_dropped.clone());
    let g = spawn(move || q2.put(Some(item)).is_ok());
    yield_now();
    assert_eq!(q.putters(), 1);
    g.kill();
    assert_eq!(g.get(), Err(Error::Killed));
    assert!(item_dropped.get());
    assert_eq!(q.putters(), 0);
    assert_eq!(q.len(), 1);
    assert!(q.get().unwrap().is_none());
}

#[test]
fn queue_item_is_passed_on_when_getter_is_killed_after_hand_off() {
    let q = Rc::new(Queue::new());
    let (qa, qb) = (q.clone(), q.clone());
    let a = spawn(move || qa.get().unwrap());
    let b = spawn(move || qb.get().unwrap());
    yield_now();
    q.put("x").unwrap(); // handed to a
    a.kill_async(); // before a could run
    assert_eq!(b.get().unwrap(), "x");
    assert_eq!(a.get(), Err(Error::Killed));
    assert!(q.is_empty());
}

#[test]
fn queue_item_returns_to_head_when_killed_getter_was_last() {
    let q = Rc::new(Queue::new());
    let qa = q.clone();
    let a = spawn(move || qa.get().unwrap());
    yield_now();
    q.put("x").unwrap(); // handed to a
    q.put("y").unwrap(); // nobody waits: stored
    a.kill_async();
    a.join().unwrap();
    assert_eq!(q.try_get(), Ok("x"), "the handed-off item keeps its place");
    assert_eq!(q.try_get(), Ok("y"));
}

#[test]
fn with_timeout_interrupts_queue_get() {
    let q: Rc<Queue<u8>> = Rc::new(Queue::new());
    let q2 = q.clone();
    let g = spawn(move || with_timeout(20 * MS, || q2.get()));
    let start = Instant::now();
    assert_eq!(g.get().unwrap(), Err(Elapsed));
    assert!(start.elapsed() >= 20 * MS);
    assert_eq!(q.getters(), 0);
}

// ===== shutdown =====

#[test]
fn queue_shutdown_wakes_getters() {
    let q: Rc<Queue<u8>> = Rc::new(Queue::new());
    let gs: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            spawn(move || q.get())
        })
        .collect();
    yield_now();
    assert_eq!(q.getters(), 3);
    q.shutdown();
    for g in &gs {
        assert_eq!(g.get().unwrap(), Err(GetError::ShutDown));
    }
    assert!(q.is_shutdown());
}

#[test]
fn queue_shutdown_wakes_putters_with_their_items() {
    let q = Rc::new(Queue::bounded(1));
    q.put(0).unwrap();
    let gs: Vec<_> = (1..=2)
        .map(|i| {
            let q = q.clone();
            spawn(move || q.put(i).map_err(|e| e.into_inner()))
        })
        .collect();
    yield_now();
    assert_eq!(q.putters(), 2);
    q.shutdown();
    assert_eq!(gs[0].get().unwrap(), Err(1));
    assert_eq!(gs[1].get().unwrap(), Err(2));
    assert!(matches!(q.put(3), Err(PutError::ShutDown(3))));
    assert!(matches!(q.try_put(3), Err(PutError::ShutDown(3))));
}

#[test]
fn queue_get_drains_remaining_items_after_shutdown() {
    let q = Queue::new();
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown();
    assert!(matches!(q.put(3), Err(PutError::ShutDown(3))));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Ok(2));
    assert_eq!(q.get(), Err(GetError::ShutDown));
    assert_eq!(q.try_get(), Err(GetError::ShutDown));
}

#[test]
fn queue_shutdown_immediate_drains_and_releases_join() {
    let q = Rc::new(Queue::new());
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let joiner = spawn(move || q2.join());
    yield_now();
    assert!(!joiner.dead());
    assert_eq!(q.shutdown_immediate(), vec![1, 2]);
    assert_eq!(joiner.get().unwrap(), Ok(()));
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.get(), Err(GetError::ShutDown));
}

// ===== task_done / join =====

#[test]
fn queue_task_done_join() {
    let q = Rc::new(Queue::new());
    let processed = Rc::new(Cell::new(0));
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert_eq!(q.unfinished_tasks(), 3);
    let (q2, p2) = (q.clone(), processed.clone());
    let worker = spawn(move || {
        while let Ok(_item) = q2.get_timeout(200 * MS) {
            sleep(5 * MS);
            p2.set(p2.get() + 1);
            q2.task_done().unwrap();
        }
    });
    assert_eq!(q.join(), Ok(()));
    assert_eq!(processed.get(), 3, "join returned before every task was done");
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.task_done(), Err(TaskDoneError));
    worker.kill();
}

#[test]
fn queue_join_with_nothing_unfinished_returns_at_once() {
    let q: Queue<u8> = Queue::new();
    assert_eq!(q.join(), Ok(()));
    assert!(q.join_timeout(MS));
}

#[test]
fn queue_join_in_main_with_no_worker_is_loop_exit() {
    let q = Queue::new();
    q.put(1).unwrap();
    assert_eq!(q.join(), Err(LoopExit));
    let start = Instant::now();
    assert!(!q.join_timeout(10 * MS));
    assert!(start.elapsed() >= 10 * MS);
}

#[test]
fn kill_while_blocked_in_queue_join_unwinds() {
    let q = Rc::new(Queue::new());
    q.put(1).unwrap();
    let dropped = Rc::new(Cell::new(false));
    let (q2, d2) = (q.clone(), dropped.clone());
    let g = spawn(move || {
        let _guard = SetOnDrop(d2);
        q2.join()
    });
    yield_now();
    g.kill();
    assert!(dropped.get());
    assert_eq!(g.get(), Err(Error::Killed));
}

// ===== Channel =====

#[test]
fn channel_put_blocks_until_get() {
    let ch = Rc::new(Channel::new());
    let delivered = Rc::new(Cell::new(false));
    let (c2, d2) = (ch.clone(), delivered.clone());
    let p = spawn(move || {
        c2.put(42).unwrap();
        d2.set(true);
    });
    sleep(20 * MS);
    assert!(!delivered.get(), "put returned with no getter");
    assert_eq!(ch.balance(), 1);
    assert_eq!(ch.get(), Ok(42));
    p.join().unwrap();
    assert!(delivered.get());
    assert_eq!(ch.balance(), 0);
}

#[test]
fn channel_get_blocks_until_put() {
    let ch = Rc::new(Channel::new());
    let c2 = ch.clone();
    let g = spawn(move || c2.get());
    yield_now();
    assert_eq!(ch.balance(), -1);
    assert!(!g.dead());
    ch.try_put("hi").unwrap();
    assert_eq!(g.get().unwrap(), Ok("hi"));
}

#[test]
fn channel_try_calls_need_a_partner() {
    let ch: Channel<u8> = Channel::new();
    assert!(matches!(ch.try_put(1), Err(PutError::Full(1))));
    assert_eq!(ch.try_get(), Err(GetError::Empty));
}

#[test]
fn channel_serves_putters_in_fifo_order() {
    let ch = Rc::new(Channel::new());
    let ps: Vec<_> = (0..4)
        .map(|i| {
            let ch = ch.clone();
            spawn(move || ch.put(i).unwrap())
        })
        .collect();
    yield_now();
    let got: Vec<_> = (0..4).map(|_| ch.try_get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3]);
    joinall(&ps, None).unwrap();
}

#[test]
fn channel_get_in_main_with_no_putter_is_loop_exit() {
    let ch: Channel<u8> = Channel::new();
    assert_eq!(ch.get(), Err(GetError::LoopExit));
    assert!(matches!(ch.put(1), Err(PutError::LoopExit(1))));
}

#[test]
fn kill_while_blocked_in_channel_put_unwinds() {
    let ch = Rc::new(Channel::new());
    let dropped = Rc::new(Cell::new(false));
    let (c2, d2) = (ch.clone(), dropped.clone());
    let g = spawn(move || c2.put(SetOnDrop(d2)).is_ok());
    yield_now();
    assert_eq!(ch.putters(), 1);
    g.kill();
    assert!(dropped.get(), "the offered item was dropped with the killed putter");
    assert_eq!(g.get(), Err(Error::Killed));
    assert_eq!(ch.putters(), 0);
    assert!(ch.try_get().is_err());
}

#[test]
fn channel_item_is_kept_when_getter_is_killed_after_hand_off() {
    let ch = Rc::new(Channel::new());
    let c2 = ch.clone();
    let a = spawn(move || c2.get().unwrap());
    yield_now();
    ch.try_put(5).unwrap(); // handed to a
    a.kill_async();
    a.join().unwrap();
    assert_eq!(ch.try_get(), Ok(5), "nothing is lost");
}

#[test]
fn channel_shutdown_wakes_both_sides() {
    let getter_side: Rc<Channel<u8>> = Rc::new(Channel::new());
    let c2 = getter_side.clone();
    let g = spawn(move || c2.get());
    let putter_side = Rc::new(Channel::new());
    let c3 = putter_side.clone();
    let p = spawn(move || c3.put(9).map_err(|e| e.into_inner()));
    yield_now();
    assert_eq!((getter_side.getters(), putter_side.putters()), (1, 1));
    getter_side.shutdown();
    putter_side.shutdown();
    assert_eq!(g.get().unwrap(), Err(GetError::ShutDown));
    assert_eq!(p.get().unwrap(), Err(9));
    assert!(matches!(getter_side.try_put(1), Err(PutError::ShutDown(1))));
}
