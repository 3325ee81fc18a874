//! StreamServer over real loopback sockets: concurrency, pools, graceful
//! stop, EMFILE at accept, accept batching, workers on two threads,
//! TCP_NODELAY.

mod util;

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenrt::net::TcpStream;
use greenrt::pool::Pool;
use greenrt::server::StreamServer;
use util::test_pki;

/// Waits cooperatively (the hub keeps serving) until `flag` is set.
fn wait_flag(flag: &AtomicBool, limit: Duration) {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) {
        assert!(start.elapsed() < limit, "timed out waiting");
        greenrt::sleep(Duration::from_millis(5));
    }
}

/// Reads up to `n` bytes or until the peer closes.
fn read_some(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut v[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    v.truncate(got);
    v
}

#[test]
fn stream_server_echo_concurrent() {
    const CLIENTS: usize = 500;
    let live = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let (l2, p2) = (live.clone(), peak.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        l2.set(l2.get() + 1);
        p2.set(p2.get().max(l2.get()));
        let mut buf = [0u8; 256];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        l2.set(l2.get() - 1);
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();

    // The clients: greenlets on another thread's hub. Each keeps its
    // connection open until all of them have been echoed, so the server
    // holds all 500 at once.
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let clients = std::thread::spawn(move || {
        let echoed = Rc::new(Cell::new(0usize));
        let all = Rc::new(greenrt::sync::Event::new());
        let gs: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (echoed, all) = (echoed.clone(), all.clone());
                greenrt::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let msg = format!("hello from client {i}");
                    s.write_all(msg.as_bytes()).unwrap();
                    let back = read_some(&mut s, msg.len());
                    assert_eq!(back, msg.as_bytes());
                    echoed.set(echoed.get() + 1);
                    if echoed.get() == CLIENTS {
                        all.set();
                    }
                    assert!(all.wait_timeout(Duration::from_secs(20)), "not all clients were echoed");
                    // Once more, to be sure the connection is still served.
                    s.write_all(b"bye").unwrap();
                    assert_eq!(read_some(&mut s, 3), b"bye");
                })
            })
            .collect();
        greenrt::joinall(&gs, None).unwrap();
        let ok = gs.iter().filter(|g| g.successful()).count();
        d2.store(true, Ordering::Release);
        ok
    });
    wait_flag(&done, Duration::from_secs(60));
    assert_eq!(clients.join().unwrap(), CLIENTS);
    assert_eq!(peak.get(), CLIENTS, "all clients were served at once");
    server.stop(Duration::from_secs(5));
    assert_eq!(live.get(), 0);
}

#[test]
fn pool_bounds_concurrent_handlers() {
    const POOL: usize = 5;
    const CLIENTS: usize = 30;
    let live = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let (l2, p2) = (live.clone(), peak.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        l2.set(l2.get() + 1);
        p2.set(p2.get().max(l2.get()));
        greenrt::sleep(Duration::from_millis(30));
        let _ = conn.write_all(b"ok");
        l2.set(l2.get() - 1);
    })
    .unwrap()
    .with_pool(Pool::new(POOL));
    server.start().unwrap();
    let addr = server.local_addr();
    let srv = server.clone();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let srv = srv.clone();
            greenrt::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                assert!(srv.connections() <= POOL, "accepted past the pool's bound");
                read_some(&mut s, 2)
            })
        })
        .collect();
    let start = Instant::now();
    for c in &clients {
        assert_eq!(c.get().unwrap(), b"ok");
    }
    assert_eq!(peak.get(), POOL, "never more than the pool's size, and that many");
    // 30 handlers of 30 ms, 5 at a time: at least six rounds.
    assert!(start.elapsed() >= Duration::from_millis(170), "{:?}", start.elapsed());
    server.stop(Duration::from_secs(1));
}

#[test]
fn stop_stops_accepting_and_kills_stragglers_after_timeout() {
    struct Killed(Rc<Cell<bool>>);
    impl Drop for Killed {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.set(true);
            }
        }
    }
    let started = Rc::new(Cell::new(0));
    let quick_done = Rc::new(Cell::new(false));
    let straggler_done = Rc::new(Cell::new(false));
    let straggler_killed = Rc::new(Cell::new(false));
    let (st, qd, sd, sk) = (
        started.clone(),
        quick_done.clone(),
        straggler_done.clone(),
        straggler_killed.clone(),
    );
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut b = [0u8; 1];
        conn.read_exact(&mut b).unwrap();
        st.set(st.get() + 1);
        if b[0] == b'q' {
            greenrt::sleep(Duration::from_millis(100));
            conn.write_all(b"done").unwrap();
            qd.set(true);
        } else {
            let _guard = Killed(sk.clone());
            greenrt::sleep(Duration::from_secs(30));
            sd.set(true);
        }
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    let quick = greenrt::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"q").unwrap();
        read_some(&mut s, 4)
    });
    let straggler = greenrt::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"s").unwrap();
        read_some(&mut s, 4)
    });
    while started.get() < 2 {
        greenrt::sleep(Duration::from_millis(5));
    }
    let t0 = Instant::now();
    server.stop(Duration::from_millis(300));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(290),
        "stop waited for the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(quick_done.get(), "a handler that finished in time was not killed");
    assert_eq!(quick.get().unwrap(), b"done");
    assert!(
        straggler_killed.get() && !straggler_done.get(),
        "the straggler was killed"
    );
    assert_eq!(straggler.get().unwrap(), b"", "its connection was closed");
    assert_eq!(server.connections(), 0);
    assert!(server.closed() && !server.started());
    // No longer accepting: the port refuses connections.
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    assert!(server.start().is_err());
}

#[test]
fn serve_forever_returns_after_stop_from_a_handler() {
    let holder: Rc<Cell<Option<StreamServer>>> = Rc::new(Cell::new(None));
    let h2 = holder.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let _ = conn.write_all(b"stopping");
        if let Some(s) = h2.take() {
            s.stop(Duration::from_secs(1));
        }
    })
    .unwrap();
    holder.set(Some(server.clone()));
    let addr = server.local_addr();
    let client = greenrt::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        read_some(&mut s, 8)
    });
    let t0 = Instant::now();
    server.serve_forever().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(client.get().unwrap(), b"stopping");
    assert!(server.closed());
}

#[test]
fn accept_batches_yield_to_other_greenlets() {
    const MAX_ACCEPT: usize = 10;
    let server = StreamServer::bind("127.0.0.1:0", |_conn: TcpStream, _| {})
        .unwrap()
        .max_accept(MAX_ACCEPT);
    let addr = server.local_addr();
    // A backlog of connections waiting before the server starts.
    let waiting: Vec<std::net::TcpStream> = (0..60).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    server.start().unwrap();
    let srv = server.clone();
    // Runnable as soon as the accept loop yields: it sees how many
    // connections were accepted (handlers spawned, none run yet) first.
    let probe = greenrt::spawn(move || srv.connections());
    assert_eq!(probe.get().unwrap(), MAX_ACCEPT);
    drop(waiting);
    server.stop(Duration::from_secs(1));
}

#[test]
fn nodelay_is_on() {
    fn tcp_nodelay(fd: i32) -> i32 {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: v and len are valid for getsockopt to write.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        v
    }
    let handler = |mut conn: TcpStream, _: SocketAddr| {
        let on = tcp_nodelay(conn.as_raw_fd());
        let _ = conn.write_all(&[u8::from(on != 0)]);
    };
    for (server, want) in [
        (StreamServer::bind("127.0.0.1:0", handler).unwrap(), 1u8),
        (StreamServer::bind("127.0.0.1:0", handler).unwrap().nodelay(false), 0u8),
    ] {
        server.start().unwrap();
        let mut c = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(read_some(&mut c, 1), [want]);
        server.stop(Duration::from_secs(1));
    }
}

#[test]
fn workers_2_serve_on_both_threads() {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let s2 = seen.clone();
    let workers = StreamServer::workers(2)
        .bind("127.0.0.1:0", move || {
            // Built on each worker's own thread; may hold per-hub state.
            let seen = s2.clone();
            let served_here = Rc::new(Cell::new(0u32));
            move |mut conn: TcpStream, _| {
                served_here.set(served_here.get() + 1);
                let t = std::thread::current();
                seen.lock()
                    .unwrap()
                    .insert((t.id(), t.name().unwrap_or("").to_string()));
                let _ = conn.write_all(b"ok");
            }
        })
        .unwrap();
    assert_eq!(workers.len(), 2);
    let addr = workers.local_addr();
    assert_ne!(addr.port(), 0);
    for _ in 0..64 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 2];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ok");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "connections were handled on two threads: {seen:?}");
    let me = std::thread::current().id();
    for (id, name) in &seen {
        assert_ne!(*id, me);
        assert!(name.starts_with("greenrt-worker-"), "{name}");
    }
    workers.stop(Duration::from_secs(1)).unwrap();
    let e = std::net::TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

// ===== EMFILE at accept =====

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid rusage to fill.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The child's side: runs with a lowered RLIMIT_NOFILE and prints
/// `CHILD OK` when the server survived, stayed idle and recovered.
fn emfile_child() {
    let served = Rc::new(Cell::new(0));
    let s2 = served.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut b = [0u8; 4];
        if conn.read_exact(&mut b).is_ok() {
            s2.set(s2.get() + 1);
            let _ = conn.write_all(&b);
        }
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    // Connections complete in the kernel's backlog before any accept.
    let clients: Vec<std::net::TcpStream> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();

    // Use up every descriptor the (lowered) limit allows.
    let mut fd_limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: fd_limit is a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut fd_limit) }, 0);
    let low = libc::rlimit {
        rlim_cur: 64,
        rlim_max: fd_limit.rlim_max,
    };
    // SAFETY: a valid rlimit; lowering the soft limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    let mut fillers = Vec::new();
    loop {
        // SAFETY: dup of stdin (or any open fd) has no memory effects.
        let fd = unsafe { libc::dup(clients[0].as_raw_fd()) };
        if fd < 0 {
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EMFILE));
            break;
        }
        fillers.push(fd);
    }
    assert!(!fillers.is_empty());

    // The server now hits EMFILE on every accept: it must not spin.
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    greenrt::sleep(Duration::from_millis(600));
    let cpu = cpu_time() - cpu0;
    let wall = t0.elapsed();
    assert_eq!(served.get(), 0, "nothing could be accepted");
    assert!(!server.closed() && server.started(), "the server is still up");
    assert!(
        cpu < Duration::from_millis(150),
        "busy while out of fds: {cpu:?} CPU in {wall:?}"
    );

    // Free the descriptors: the server accepts again by itself.
    for fd in fillers {
        // SAFETY: closing fds this function opened.
        unsafe { libc::close(fd) };
    }
    let gs: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            greenrt::spawn(move || {
                let mut c = TcpStream::from(c);
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let msg = format!("ok{i:02}");
                c.write_all(msg.as_bytes()).unwrap();
                let mut b = [0u8; 4];
                c.read_exact(&mut b).unwrap();
                b == msg.as_bytes()
            })
        })
        .collect();
    for g in &gs {
        assert!(g.get().unwrap(), "served again after the fds were freed");
    }
    assert_eq!(served.get(), 3);
    server.stop(Duration::from_secs(1));
    println!("CHILD OK cpu={cpu:?}");
}

#[test]
fn emfile_at_accept_backs_off_and_recovers() {
    if util::is_child() {
        emfile_child();
        return;
    }
    let out = util::run_child("emfile_at_accept_backs_off_and_recovers", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("CHILD OK"), "{stdout}\n{stderr}");
    // Logged once for the whole episode, not once per attempt.
    let logged = stderr.matches("cannot accept: Too many open files").count();
    assert_eq!(logged, 1, "{stderr}");
}

// ===== TLS =====

#[test]
fn tls_stream_server_echo_and_bad_clients_dropped() {
    let (acceptor, client_config) = test_pki();
    let served = Rc::new(Cell::new(0));
    let s2 = served.clone();
    let server = StreamServer::bind_tls("127.0.0.1:0", acceptor, move |mut tls, _| {
        assert_eq!(tls.sni_hostname(), Some("localhost"));
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).unwrap();
        tls.write_all(&buf[..n]).unwrap();
        tls.shutdown().unwrap();
        s2.set(s2.get() + 1);
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    // A client that speaks plain text: its handshake fails, it is dropped.
    let plain = greenrt::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out.starts_with(b"HTTP")
    });
    let clients: Vec<_> = (0..5)
        .map(|i| {
            let cfg = client_config.clone();
            greenrt::spawn(move || {
                let tcp = TcpStream::connect(addr).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut tls = greenrt::tls::connect("localhost", tcp, cfg).unwrap();
                let msg = format!("secret {i}");
                tls.write_all(msg.as_bytes()).unwrap();
                let mut back = Vec::new();
                tls.read_to_end(&mut back).unwrap(); // Ok(0) only after close_notify
                back == msg.as_bytes()
            })
        })
        .collect();
    for c in &clients {
        assert!(c.get().unwrap());
    }
    assert!(!plain.get().unwrap(), "no plain-text answer to a plain-text client");
    assert_eq!(served.get(), 5, "only the TLS clients reached the handler");
    server.stop(Duration::from_secs(1));
}
