//! The main job on a bundled example: blocking-style code running
//! concurrently on greenlets, with numbers that only concurrency explains.
//!
//! Run with `make demo` (or `cargo run --release --example demo`).

use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::pool::Pool;
use greenrt::sync::{Event, Queue};
use greenrt::threadpool;

fn main() {
    // 1. A thousand greenlets each "wait on a slow service" for 200 ms.
    let start = Instant::now();
    let switches = greenrt::hub::switch_count();
    let jobs: Vec<_> = (0..1000u64)
        .map(|i| {
            greenrt::spawn(move || {
                greenrt::sleep(Duration::from_millis(200));
                i * i
            })
        })
        .collect();
    greenrt::joinall(&jobs, None).expect("join");
    let total: u64 = jobs.iter().map(|g| g.get().unwrap()).sum();
    println!(
        "1000 greenlets x 200 ms sleep: {:>4} ms wall (sequential would be 200000 ms), sum={total}, {} switches",
        start.elapsed().as_millis(),
        greenrt::hub::switch_count() - switches
    );

    // 2. A producer and three consumers through a bounded queue.
    let q: Rc<Queue<u32>> = Rc::new(Queue::bounded(4));
    let done = Rc::new(Event::new());
    let consumers: Vec<_> = (0..3)
        .map(|c| {
            let q = q.clone();
            greenrt::spawn(move || {
                let mut got = Vec::new();
                while let Ok(item) = q.get() {
                    greenrt::sleep(Duration::from_millis(5)); // "process" it
                    got.push(item);
                }
                (c, got.len())
            })
        })
        .collect();
    let producer = {
        let (q, done) = (q.clone(), done.clone());
        greenrt::spawn(move || {
            for i in 0..60 {
                q.put(i).expect("put");
            }
            q.shutdown();
            done.set();
        })
    };
    let start = Instant::now();
    producer.join().unwrap();
    done.wait().unwrap();
    let counts: Vec<_> = consumers.iter().map(|g| g.get().unwrap()).collect();
    println!(
        "60 items, 3 consumers x 5 ms each: {:>4} ms wall (one consumer: 300 ms); per consumer {:?}",
        start.elapsed().as_millis(),
        counts
    );

    // 3. A pool of 10 bounds concurrency of 50 tasks of 50 ms.
    let pool = Pool::new(10);
    let start = Instant::now();
    let out = pool
        .map(
            |i: u32| {
                greenrt::sleep(Duration::from_millis(50));
                i * 2
            },
            0..50,
        )
        .expect("map");
    println!(
        "Pool(10).map over 50 x 50 ms: {:>4} ms wall (5 waves), ordered: {}",
        start.elapsed().as_millis(),
        out.windows(2).all(|w| w[0] < w[1])
    );

    // 4. Truly blocking work goes to the thread pool; greenlets keep running.
    let ticks = Rc::new(std::cell::Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        greenrt::spawn(move || loop {
            greenrt::sleep(Duration::from_millis(10));
            ticks.set(ticks.get() + 1);
        })
    };
    let start = Instant::now();
    let answer = threadpool::default_pool()
        .apply(|| {
            std::thread::sleep(Duration::from_millis(150)); // a blocking call
            42
        })
        .expect("apply");
    println!(
        "blocking 150 ms call in the thread pool returned {answer} after {} ms; meanwhile a greenlet ticked {} times",
        start.elapsed().as_millis(),
        ticks.get()
    );
    ticker.kill();

    // 5. Timeouts interrupt blocking code by unwinding it.
    let r = greenrt::with_timeout(Duration::from_millis(30), || greenrt::sleep(Duration::from_secs(60)));
    println!("with_timeout(30 ms) around a 60 s sleep: {r:?}");
}
