//! may's side: one worker thread, each benchmark run inside a coroutine.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{self, bench, emit, ns_per, unavailable};

const SYS: &str = "may";

pub fn run(job: &str) {
    if job == "serve-echo" {
        return serve_echo(common::workers_arg());
    }
    may::config().set_workers(1).set_worker_pin(false);
    match job {
        "switch" => switch(),
        "spawn" => spawn_join(),
        "queue" => queue(),
        "semaphore" => semaphore(),
        "timeout" => unavailable("timeout", SYS, "no Timeout primitive"),
        "threadpool" => unavailable("threadpool_apply", SYS, "no blocking thread pool"),
        "sleepers" => sleepers(),
        "serve-http" => unavailable(job, SYS, "no HTTP server in the comparison"),
        _ => unreachable!(),
    }
}

/// Runs `f` inside a coroutine on the worker and returns its result.
fn in_co<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    may::go!(f).join().expect("may coroutine panicked")
}

/// Two coroutines loop on `may::coroutine::yield_now`.
fn switch() {
    const N: usize = 200_000;
    let (v, runs) = bench(|| {
        in_co(|| {
            let t = Instant::now();
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    may::go!(|| {
                        for _ in 0..N {
                            may::coroutine::yield_now();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            ns_per(t, 2 * N)
        })
    });
    emit("switch", SYS, v, &runs, &format!("2 coroutines x {N} yield_now"));
}

fn spawn_join() {
    const N: usize = 100_000;
    let (v, runs) = bench(|| {
        in_co(|| {
            let t = Instant::now();
            let hs: Vec<_> = (0..N).map(|i| may::go!(move || black_box(i))).collect();
            for h in hs {
                black_box(h.join().unwrap());
            }
            ns_per(t, N)
        })
    });
    emit("spawn_join", SYS, v, &runs, &format!("N={N}, go! + join"));
}

fn queue() {
    const N: usize = 100_000;
    let (v, runs) = bench(|| {
        in_co(|| {
            let (tx1, rx1) = may::sync::mpsc::channel::<usize>();
            let (tx2, rx2) = may::sync::mpsc::channel::<usize>();
            let t = Instant::now();
            let echo = may::go!(move || {
                while let Ok(x) = rx1.recv() {
                    tx2.send(x).unwrap();
                }
            });
            let ping = may::go!(move || {
                for i in 0..N {
                    tx1.send(i).unwrap();
                    black_box(rx2.recv().unwrap());
                }
            });
            ping.join().unwrap();
            echo.join().unwrap();
            ns_per(t, N)
        })
    });
    emit(
        "queue_pingpong",
        SYS,
        v,
        &runs,
        &format!("{N} round trips, sync::mpsc::channel"),
    );
}

fn semaphore() {
    const N: usize = 1_000_000;
    let (v, runs) = bench(|| {
        in_co(|| {
            let sem = may::sync::Semphore::new(1);
            let t = Instant::now();
            for _ in 0..N {
                sem.wait();
                sem.post();
            }
            ns_per(t, N)
        })
    });
    emit("semaphore", SYS, v, &runs, "sync::Semphore wait + post");
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

fn sleepers() {
    // may counts stack sizes in words: 2048 words = 16 KiB.
    may::config().set_stack_size(2048);
    let want = crate::count_arg(1_000_000);
    let n = common::stacks_that_fit(want);
    let limit = if n < want {
        format!("; only {n} fit under vm.max_map_count={}", common::max_map_count())
    } else {
        String::new()
    };
    in_co(move || {
        may::coroutine::yield_now();
        let rss0 = common::rss_kib();
        let t = Instant::now();
        for _ in 0..n {
            may::go!(|| {
                STARTED.fetch_add(1, Ordering::Relaxed);
                may::coroutine::sleep(Duration::from_secs(30));
            });
        }
        let spawned = t.elapsed();
        // yield_now here starves the new coroutines; poll with a short sleep.
        while STARTED.load(Ordering::Relaxed) < n {
            may::coroutine::sleep(Duration::from_micros(200));
        }
        let all = t.elapsed();
        let rss1 = common::rss_kib();
        let per = all.as_nanos() as f64 / n as f64;
        let note = format!(
            "N={n}, 16 KiB stacks (set_stack_size(2048 words)); spawn alone {:.0} ns{limit}",
            spawned.as_nanos() as f64 / n as f64
        );
        emit("sleepers_spawn", SYS, per, &[per], &note);
        let kib = rss1.saturating_sub(rss0) as f64 / n as f64;
        let note = format!("N={n}, VmRSS {rss0} -> {rss1} KiB{limit}");
        emit("sleepers_rss", SYS, kib, &[kib], &note);
        common::exit_now();
    })
}

/// The echo rows' server: a coroutine per connection on `workers` worker
/// threads, read + write_all with a 16 KiB buffer, TCP_NODELAY.
fn serve_echo(workers: usize) {
    use std::io::{Read, Write};
    may::config().set_workers(workers).set_worker_pin(false);
    let l = may::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    common::listening(l.local_addr().unwrap());
    in_co(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_nodelay(true);
            may::go!(move || {
                let mut buf = vec![0u8; common::ECHO_BUF];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    })
}
