//! tokio's side: a current-thread runtime (time enabled) for every row;
//! the echo server also runs on a multi-thread runtime (`serve-echo N`).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};

use crate::common::{self, bench, emit, ns_per};

const SYS: &str = "tokio";

fn rt() -> Runtime {
    Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

pub fn run(job: &str) {
    if job == "serve-echo" {
        return serve_echo(common::workers_arg());
    }
    if job == "serve-http" {
        return common::unavailable(job, SYS, "the HTTP rows run hyper on tokio (system `hyper`)");
    }
    let rt = rt();
    match job {
        "switch" => switch(&rt),
        "spawn" => spawn_join(&rt),
        "queue" => queue(&rt),
        "semaphore" => semaphore(&rt),
        "timeout" => timeout(&rt),
        "threadpool" => threadpool(&rt),
        "sleepers" => sleepers(rt),
        _ => unreachable!(),
    }
}

/// Two tasks loop on `tokio::task::yield_now`.
fn switch(rt: &Runtime) {
    const N: usize = 200_000;
    let (v, runs) = bench(|| {
        rt.block_on(async {
            let t = Instant::now();
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    tokio::spawn(async {
                        for _ in 0..N {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
            ns_per(t, 2 * N)
        })
    });
    emit("switch", SYS, v, &runs, &format!("2 tasks x {N} yield_now"));
}

/// Spawn N trivial tasks, then await every JoinHandle.
fn spawn_join(rt: &Runtime) {
    const N: usize = 100_000;
    let (v, runs) = bench(|| {
        rt.block_on(async {
            let t = Instant::now();
            let hs: Vec<_> = (0..N).map(|i| tokio::spawn(async move { black_box(i) })).collect();
            for h in hs {
                black_box(h.await.unwrap());
            }
            ns_per(t, N)
        })
    });
    emit("spawn_join", SYS, v, &runs, &format!("N={N}, spawn + await"));
}

/// Two tasks bounce an item through two unbounded mpsc channels.
fn queue(rt: &Runtime) {
    const N: usize = 200_000;
    let (v, runs) = bench(|| {
        rt.block_on(async {
            let (tx1, mut rx1) = tokio::sync::mpsc::unbounded_channel::<usize>();
            let (tx2, mut rx2) = tokio::sync::mpsc::unbounded_channel::<usize>();
            let t = Instant::now();
            let echo = tokio::spawn(async move {
                while let Some(x) = rx1.recv().await {
                    tx2.send(x).unwrap();
                }
            });
            let ping = tokio::spawn(async move {
                for i in 0..N {
                    tx1.send(i).unwrap();
                    black_box(rx2.recv().await.unwrap());
                }
            });
            ping.await.unwrap();
            echo.await.unwrap();
            ns_per(t, N)
        })
    });
    emit(
        "queue_pingpong",
        SYS,
        v,
        &runs,
        &format!("{N} round trips, 2 tasks, mpsc::unbounded_channel"),
    );
}

/// Uncontended `Semaphore::acquire().await` + drop of the permit.
fn semaphore(rt: &Runtime) {
    const N: usize = 1_000_000;
    let (v, runs) = bench(|| {
        rt.block_on(async {
            let sem = tokio::sync::Semaphore::new(1);
            let t = Instant::now();
            for _ in 0..N {
                let p = sem.acquire().await.unwrap();
                black_box(&p);
                drop(p);
            }
            ns_per(t, N)
        })
    });
    emit("semaphore", SYS, v, &runs, "sync::Semaphore acquire().await + drop");
}

/// A `sleep(10s)` polled once (which registers it in the timer wheel, as
/// greenrt's `Timeout::start` does) and dropped. `timeout()` around a
/// ready future never registers a timer; its figure is in the note.
fn timeout(rt: &Runtime) {
    const N: usize = 500_000;
    let (v, runs) = bench(|| {
        rt.block_on(async {
            let t = Instant::now();
            for _ in 0..N {
                let mut s = pin!(tokio::time::sleep(Duration::from_secs(10)));
                std::future::poll_fn(|cx| {
                    assert!(s.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
            }
            ns_per(t, N)
        })
    });
    let (lazy, _) = bench(|| {
        rt.block_on(async {
            let t = Instant::now();
            for i in 0..N {
                let r = tokio::time::timeout(Duration::from_secs(10), async { i }).await;
                black_box(r.unwrap());
            }
            ns_per(t, N)
        })
    });
    let note =
        format!("sleep(10s) polled once + dropped; timeout(10s, ready future) = {lazy:.1} ns (never arms a timer)");
    emit("timeout", SYS, v, &runs, &note);
}

/// `spawn_blocking(f).await` from the current-thread runtime.
fn threadpool(rt: &Runtime) {
    const N: usize = 20_000;
    let (v, runs) = bench(|| {
        rt.block_on(async {
            let t = Instant::now();
            for i in 0..N {
                black_box(tokio::task::spawn_blocking(move || i).await.unwrap());
            }
            ns_per(t, N) / 1000.0
        })
    });
    emit(
        "threadpool_apply",
        SYS,
        v,
        &runs,
        &format!("{N} x spawn_blocking().await"),
    );
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// 1M tasks each sleeping 30 s.
fn sleepers(rt: Runtime) {
    let n = crate::count_arg(1_000_000);
    rt.block_on(async move {
        tokio::task::yield_now().await;
        let rss0 = common::rss_kib();
        let t = Instant::now();
        for _ in 0..n {
            tokio::spawn(async {
                STARTED.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
        let spawned = t.elapsed();
        while STARTED.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        let all = t.elapsed();
        let rss1 = common::rss_kib();
        let per = all.as_nanos() as f64 / n as f64;
        let note = format!("N={n}; spawn alone {:.0} ns/task", spawned.as_nanos() as f64 / n as f64);
        emit("sleepers_spawn", SYS, per, &[per], &note);
        let kib = rss1.saturating_sub(rss0) as f64 / n as f64;
        let note = format!("N={n}, VmRSS {rss0} -> {rss1} KiB");
        emit("sleepers_rss", SYS, kib, &[kib], &note);
    });
    common::exit_now();
}

/// A runtime for a server: current-thread for one worker, else
/// multi-thread with `workers` worker threads.
pub fn server_rt(workers: usize) -> Runtime {
    let mut b = if workers > 1 {
        let mut b = Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    } else {
        Builder::new_current_thread()
    };
    b.enable_io().enable_time().build().expect("tokio runtime")
}

/// The echo rows' server: a task per connection, read + write_all with a
/// 16 KiB buffer, TCP_NODELAY.
fn serve_echo(workers: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    server_rt(workers).block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        common::listening(l.local_addr().unwrap());
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; common::ECHO_BUF];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}
