//! greenrt's side of every row.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::common::{self, bench, emit, ns_per};

const SYS: &str = "greenrt";

pub fn run(job: &str) {
    match job {
        "switch" => switch(),
        "switch_monitor" => switch_monitor(),
        "spawn" => spawn_join(),
        "queue" => queue(),
        "semaphore" => semaphore(),
        "timeout" => timeout(),
        "threadpool" => threadpool(),
        "sleepers" => sleepers(),
        "subprocess" => subprocess(),
        "serve-echo" => serve_echo(common::workers_arg()),
        "serve-http" => serve_http(common::workers_arg()),
        _ => unreachable!(),
    }
}

/// Two greenlets loop on `yield_now`: every call is one switch through the
/// hub (suspend one greenlet, resume the other).
/// Switches per timed ping-pong run.
const SWITCH_N: usize = 200_000;

/// One timed ping-pong run: two greenlets each yield `SWITCH_N` times;
/// returns ns per switch.
fn switch_once() -> f64 {
    let t = Instant::now();
    let gs: Vec<_> = (0..2)
        .map(|_| {
            greenrt::spawn(|| {
                for _ in 0..SWITCH_N {
                    greenrt::yield_now();
                }
            })
        })
        .collect();
    greenrt::joinall(&gs, None).unwrap();
    ns_per(t, 2 * SWITCH_N)
}

fn switch() {
    const N: usize = SWITCH_N;
    let (v, runs) = bench(switch_once);
    let note = format!("2 greenlets x {N} yield_now");
    emit("switch", SYS, v, &runs, &note);
}

/// The `switch` loop with the blocking monitor off and on (what
/// `GREENRT_MONITOR=1` starts, at its default 100 ms threshold), alternating
/// in one process so that drift hits both alike. Rows: `switch_monitor`
/// (ns/switch, monitor on) and `switch_monitor_cost` (% over monitor off).
fn switch_monitor() {
    const N: usize = SWITCH_N;
    let once = switch_once;
    let max_blocking = Duration::from_millis(100);
    once(); // warm-up
    let (mut off, mut on) = (Vec::new(), Vec::new());
    // Each run is short (~15 ms): take three pairs per timed run for
    // steadier medians. Alternate which goes first, so that order effects
    // cancel.
    for i in 0..3 * common::runs() {
        if i % 2 == 0 {
            off.push(once());
        }
        greenrt::monitor::start(max_blocking).unwrap();
        // Let the new thread get going: its start is not the steady cost.
        std::thread::sleep(Duration::from_millis(5));
        on.push(once());
        greenrt::monitor::stop();
        if i % 2 == 1 {
            off.push(once());
        }
    }
    let (off_v, on_v) = (common::median(&off), common::median(&on));
    let cost = (on_v / off_v - 1.0) * 100.0;
    let costs: Vec<f64> = off.iter().zip(&on).map(|(a, b)| (b / a - 1.0) * 100.0).collect();
    let note = format!(
        "2 greenlets x {N} yield_now, monitor::start(100ms) (= GREENRT_MONITOR=1); monitor off {off_v:.1} ns, \
         on {on_v:.1} ns: {cost:+.1}%"
    );
    emit("switch_monitor", SYS, on_v, &on, &note);
    emit("switch_monitor_cost", SYS, cost, &costs, &note);
}

/// Spawn N trivial greenlets, then join them all.
fn spawn_join() {
    const N: usize = 100_000;
    let (v, runs) = bench(|| {
        let t = Instant::now();
        let gs: Vec<_> = (0..N).map(|i| greenrt::spawn(move || black_box(i))).collect();
        greenrt::joinall(&gs, None).unwrap();
        ns_per(t, N)
    });
    emit("spawn_join", SYS, v, &runs, &format!("N={N}, spawn + joinall"));
}

/// Two greenlets bounce an item through two unbounded `sync::Queue`s.
fn queue() {
    const N: usize = 200_000;
    let (v, runs) = bench(|| {
        let q1 = Rc::new(greenrt::sync::Queue::<usize>::new());
        let q2 = Rc::new(greenrt::sync::Queue::<usize>::new());
        let t = Instant::now();
        let (a1, a2) = (q1.clone(), q2.clone());
        let echo = greenrt::spawn(move || loop {
            let x = a1.get().unwrap();
            if x == usize::MAX {
                break;
            }
            a2.put(x).unwrap();
        });
        let ping = greenrt::spawn(move || {
            for i in 0..N {
                q1.put(i).unwrap();
                black_box(q2.get().unwrap());
            }
            q1.put(usize::MAX).unwrap();
        });
        greenrt::joinall(&[echo, ping], None).unwrap();
        ns_per(t, N)
    });
    let note = format!("{N} round trips, 2 greenlets, 2 sync::Queue::new()");
    emit("queue_pingpong", SYS, v, &runs, &note);
}

/// Uncontended `Semaphore::acquire` + `release` in one greenlet.
fn semaphore() {
    const N: usize = 1_000_000;
    let (v, runs) = bench(|| {
        let sem = greenrt::sync::Semaphore::new(1);
        let t = Instant::now();
        for _ in 0..N {
            sem.acquire().unwrap();
            sem.release();
        }
        black_box(&sem);
        ns_per(t, N)
    });
    let (guard, _) = bench(|| {
        let sem = greenrt::sync::Semaphore::new(1);
        let t = Instant::now();
        for _ in 0..N {
            drop(black_box(sem.acquire_guard().unwrap()));
        }
        ns_per(t, N)
    });
    let note = format!("sync::Semaphore acquire() + release(); acquire_guard() + drop = {guard:.1} ns");
    emit("semaphore", SYS, v, &runs, &note);
}

/// `Timeout::start` + `cancel` on the running greenlet (the root here).
fn timeout() {
    const N: usize = 500_000;
    let (v, runs) = bench(|| {
        let t = Instant::now();
        for _ in 0..N {
            let mut to = greenrt::Timeout::start(Duration::from_secs(10));
            to.cancel();
            black_box(&to);
        }
        ns_per(t, N)
    });
    emit("timeout", SYS, v, &runs, "Timeout::start(10s) + cancel()");
}

/// `default_pool().apply(f)` round trips from the root greenlet (µs).
fn threadpool() {
    const N: usize = 20_000;
    let pool = greenrt::threadpool::default_pool();
    let (v, runs) = bench(|| {
        let t = Instant::now();
        for i in 0..N {
            black_box(pool.apply(move || black_box(i)).unwrap());
        }
        ns_per(t, N) / 1000.0
    });
    let note = format!(
        "{N} x threadpool::default_pool().apply(); {} of max {} worker threads started",
        pool.threads(),
        pool.max_threads()
    );
    emit("threadpool_apply", SYS, v, &runs, &note);
}

/// Up to 1M greenlets with 16 KiB stacks, each sleeping 30 s; time until
/// every one has started (and parked) and RSS growth per greenlet.
fn sleepers() {
    const STACK: usize = 16 * 1024;
    let want = crate::count_arg(1_000_000);
    let n = common::stacks_that_fit(want);
    let limit = if n < want {
        format!("; only {n} fit under vm.max_map_count={}", common::max_map_count())
    } else {
        String::new()
    };
    // Create the hub before the baseline so it is not counted.
    greenrt::yield_now();
    let started = Rc::new(Cell::new(0usize));
    let rss0 = common::rss_kib();
    let t = Instant::now();
    for _ in 0..n {
        let s = started.clone();
        greenrt::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                s.set(s.get() + 1);
                greenrt::sleep(Duration::from_secs(30));
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let spawned = t.elapsed();
    // The root goes to the back of the ready queue: when it runs again,
    // every greenlet has started and parked in sleep.
    greenrt::yield_now();
    let all = t.elapsed();
    let rss1 = common::rss_kib();
    assert_eq!(started.get(), n, "not every greenlet started");
    let per = all.as_nanos() as f64 / n as f64;
    let note = format!(
        "N={n}, 16 KiB stacks via Builder::stack_size; spawn alone {:.0} ns/greenlet; \
         {} stacks mapped{limit}",
        spawned.as_nanos() as f64 / n as f64,
        greenrt::mapped_stacks()
    );
    emit("sleepers_spawn", SYS, per, &[per], &note);
    let kib = (rss1.saturating_sub(rss0)) as f64 / n as f64;
    let note = format!("N={n}, VmRSS {rss0} -> {rss1} KiB{limit}");
    emit("sleepers_rss", SYS, kib, &[kib], &note);
    common::exit_now();
}

/// Spawn + wait of a trivial child (`true`), one after another from the
/// root greenlet: `process::Command::status()` (std's fork/exec, then a
/// pidfd wait on the hub). Spawns + waits per second.
fn subprocess() {
    const N: usize = 300;
    let (v, runs) = bench(|| {
        let t = Instant::now();
        for _ in 0..N {
            let s = greenrt::process::Command::new("true").status().unwrap();
            assert!(s.success());
        }
        N as f64 / t.elapsed().as_secs_f64()
    });
    // The same, 8 greenlets at a time: waits overlap with other spawns.
    let (par, _) = bench(|| {
        let t = Instant::now();
        let gs: Vec<_> = (0..8)
            .map(|_| {
                greenrt::spawn(|| {
                    for _ in 0..N / 8 {
                        assert!(greenrt::process::Command::new("true").status().unwrap().success());
                    }
                })
            })
            .collect();
        greenrt::joinall(&gs, None).unwrap();
        (N / 8 * 8) as f64 / t.elapsed().as_secs_f64()
    });
    let note = format!(
        "{N} x process::Command::new(\"true\").status() from the root greenlet; \
         8 greenlets at a time: {par:.0}/s"
    );
    emit("subprocess", SYS, v, &runs, &note);
}

/// The echo rows' server: `StreamServer` (TCP_NODELAY is its default) with
/// a read/write_all loop per connection, on this thread's hub, or on
/// `workers` hubs and threads (`StreamServer::workers`, SO_REUSEPORT).
fn serve_echo(workers: usize) {
    fn echo(mut conn: greenrt::net::TcpStream, _peer: std::net::SocketAddr) {
        use std::io::{Read, Write};
        let mut buf = vec![0u8; common::ECHO_BUF];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    }
    if workers > 1 {
        let w = greenrt::server::StreamServer::workers(workers)
            .bind("127.0.0.1:0", || echo)
            .expect("bind");
        common::listening(w.local_addr());
        w.join().expect("workers");
    } else {
        let server = greenrt::server::StreamServer::bind("127.0.0.1:0", echo).expect("bind");
        common::listening(server.local_addr());
        server.serve_forever().expect("serve_forever");
    }
}

/// The HTTP row's server: `server::http` with the default `HttpConfig`
/// (keep-alive, Date header, header and idle timeouts), answering
/// "Hello, World!\n" as text/plain, like examples/http_hello.rs.
fn serve_http(workers: usize) {
    use greenrt::server::http::{self, HttpConfig, Request, Response};
    fn hello(req: &mut Request<'_>) -> Response {
        match req.path() {
            "/" => Response::text("Hello, World!\n"),
            _ => Response::new(404).body("not found\n"),
        }
    }
    if workers > 1 {
        let w = greenrt::server::StreamServer::workers(workers)
            .bind("127.0.0.1:0", || http::handler(HttpConfig::new(), hello))
            .expect("bind");
        common::listening(w.local_addr());
        w.join().expect("workers");
    } else {
        let server = http::bind("127.0.0.1:0", hello).expect("bind");
        common::listening(server.local_addr());
        server.serve_forever().expect("serve_forever");
    }
}
