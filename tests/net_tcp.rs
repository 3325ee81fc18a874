//! greenrt::net TCP: byte-exact transfers, concurrent reader and writer,
//! close while waiting, timeouts, refused/reset/half-closed connections,
//! no SIGPIPE, kills, and a thousand connections on one hub.

mod util;

use std::cell::Cell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::net::{TcpListener, TcpStream};
use greenrt::sync::Event;
use greenrt::{spawn, Error};

/// Generous upper bound on scheduling noise for timing assertions.
const SLACK: Duration = Duration::from_millis(500);

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A connected pair over loopback: (client, server side).
fn connected() -> (TcpStream, TcpStream) {
    let (l, a) = listener();
    let c = TcpStream::connect(a).unwrap();
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    (c, s)
}

/// The test stream: byte `i` of a stream is `PATTERN[i % PERIOD]`, a
/// pseudo-random block whose prime length never divides a chunk size, so
/// a lost, duplicated or reordered chunk shows up as a mismatch.
const PERIOD: usize = 65_521;

fn pattern() -> Rc<Vec<u8>> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let base = (0..PERIOD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect::<Vec<u8>>();
    // Periodic and long enough that any window [off % PERIOD, +len) of a
    // chunk is valid.
    Rc::new((0..PERIOD + (1 << 20)).map(|i| base[i % PERIOD]).collect())
}

fn send_pattern(mut w: impl Write, total: usize, pat: &[u8]) -> io::Result<()> {
    let mut off = 0;
    let mut chunk = 1000;
    while off < total {
        let n = chunk.min(total - off).min(1 << 20);
        let start = off % PERIOD;
        w.write_all(&pat[start..start + n])?;
        off += n;
        // Vary write sizes: small, odd and large.
        chunk = if chunk >= 200_000 { 1 } else { chunk * 3 + 7 };
    }
    Ok(())
}

/// Reads to end of file, checking every byte; returns the count.
fn check_pattern(mut r: impl Read, pat: &[u8]) -> io::Result<usize> {
    let mut buf = vec![0u8; 150_001];
    let mut off = 0;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(off);
        }
        let start = off % PERIOD;
        assert!(
            buf[..n] == pat[start..start + n],
            "content mismatch in bytes {off}..{}",
            off + n
        );
        off += n;
    }
}

#[test]
fn tcp_transfer_64_mib_byte_exact_both_ways() {
    const TOTAL: usize = 64 << 20;
    let pat = pattern();
    let (c, s) = connected();
    let (c, s) = (Rc::new(c), Rc::new(s));
    let start = Instant::now();
    let mut gs = Vec::new();
    // Each side: one greenlet writes, another reads, at the same time.
    for (me, _) in [(c.clone(), "client"), (s.clone(), "server")] {
        let (w, p) = (me.clone(), pat.clone());
        gs.push(spawn(move || {
            send_pattern(&*w, TOTAL, &p).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
            0
        }));
        let (r, p) = (me.clone(), pat.clone());
        gs.push(spawn(move || check_pattern(&*r, &p).unwrap()));
    }
    let counts: Vec<usize> = gs.iter().map(|g| g.get().unwrap()).collect();
    assert_eq!(counts, [0, TOTAL, 0, TOTAL]);
    eprintln!("2 x 64 MiB in {:?}", start.elapsed());
}

#[test]
fn concurrent_reader_and_writer_on_one_socket() {
    // An echo peer: unless the reader drains while the writer writes, the
    // socket buffers (a few MiB) fill and both sides stall.
    const TOTAL: usize = 32 << 20;
    let (c, s) = connected();
    let echo = spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut s = s;
        let mut n_total = 0;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return n_total;
            }
            s.write_all(&buf[..n]).unwrap();
            n_total += n;
        }
    });
    let c = Rc::new(c);
    let pat = pattern();
    let both_waiting = Rc::new(Cell::new(false));
    let (w, p) = (c.clone(), pat.clone());
    let writer = spawn(move || {
        send_pattern(&*w, TOTAL, &p).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    // Sample this hub's greenlets until the transfer ends: at some point
    // the reader and the writer are parked on the one fd together.
    let fd = c.as_raw_fd();
    let done = Rc::new(Cell::new(false));
    let (d, bw) = (done.clone(), both_waiting.clone());
    let probe = spawn(move || {
        let (want_r, want_w) = (format!("fd {fd} (read)"), format!("fd {fd} (write)"));
        while !d.get() && !bw.get() {
            let info = greenrt::run_info();
            let mine = info.hubs.iter().filter(|h| h.is_caller);
            let states: Vec<&String> = mine.flat_map(|h| h.greenlets.iter()).map(|g| &g.waiting_on).collect();
            if states.contains(&&want_r) && states.contains(&&want_w) {
                bw.set(true);
            }
            greenrt::sleep(Duration::from_millis(1));
        }
    });
    let (r, p) = (c.clone(), pat.clone());
    let reader = spawn(move || check_pattern(&*r, &p).unwrap());
    writer.get().unwrap();
    assert_eq!(reader.get().unwrap(), TOTAL);
    assert_eq!(echo.get().unwrap(), TOTAL);
    done.set(true);
    probe.join().unwrap();
    assert!(
        both_waiting.get(),
        "never saw a reader and a writer parked on one fd together"
    );
}

#[test]
fn close_wakes_waiting_reader() {
    let (c, mut s) = connected();
    let c = Rc::new(c);
    let c2 = c.clone();
    let reader = spawn(move || {
        let mut buf = [0; 16];
        (&*c2).read(&mut buf).map_err(|e| e.raw_os_error())
    });
    greenrt::sleep(Duration::from_millis(20));
    assert!(!reader.dead(), "reader should be parked");
    let start = Instant::now();
    c.close();
    assert_eq!(reader.get().unwrap(), Err(Some(libc::EBADF)));
    assert!(start.elapsed() < SLACK);
    // Later operations fail with EBADF too, and the peer sees end of file.
    let mut buf = [0; 4];
    assert_eq!((&*c).read(&mut buf).unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!((&*c).write(b"x").unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!(c.peer_addr().unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    c.close(); // idempotent
}

#[test]
fn close_wakes_waiting_writer_and_every_waiter() {
    let (c, _s) = connected();
    let c = Rc::new(c);
    let (w, r) = (c.clone(), c.clone());
    // The peer never reads: the writer fills the buffers and parks.
    let writer = spawn(move || {
        let chunk = vec![7u8; 1 << 20];
        loop {
            if let Err(e) = (&*w).write_all(&chunk) {
                return e.raw_os_error();
            }
        }
    });
    let reader = spawn(move || (&*r).read(&mut [0; 8]).unwrap_err().raw_os_error());
    greenrt::sleep(Duration::from_millis(50));
    assert!(!writer.dead() && !reader.dead());
    c.close();
    assert_eq!(writer.get().unwrap(), Some(libc::EBADF));
    assert_eq!(reader.get().unwrap(), Some(libc::EBADF));
}

#[test]
fn drop_cancels_waits_on_its_fd_with_ebadf() {
    // A greenlet waiting on the fd number (gevent's wait_read) wakes with
    // EBADF when the socket is dropped: the fd leaves the poller first.
    let (c, _s) = connected();
    let fd = c.as_raw_fd();
    let waiter = spawn(move || greenrt::wait_readable(fd, None).map_err(|e| e.raw_os_error()));
    greenrt::sleep(Duration::from_millis(20));
    drop(c);
    assert_eq!(waiter.get().unwrap(), Err(Some(libc::EBADF)));
}

#[test]
fn read_timeout_returns_would_block_after_deadline() {
    let (c, _s) = connected();
    let t = Duration::from_millis(150);
    c.set_read_timeout(Some(t)).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(t));
    // Others keep running while the reader waits.
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let ticker = spawn(move || loop {
        greenrt::sleep(Duration::from_millis(10));
        t2.set(t2.get() + 1);
    });
    let start = Instant::now();
    let e = (&c).read(&mut [0; 8]).unwrap_err();
    let elapsed = start.elapsed();
    ticker.kill();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    assert!(elapsed >= t, "{elapsed:?}");
    assert!(elapsed < t + SLACK, "{elapsed:?}");
    assert!(ticks.get() >= 5, "only {} ticks", ticks.get());
    // Zero is rejected, as in std; None clears.
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    c.set_read_timeout(None).unwrap();
    assert_eq!(c.read_timeout().unwrap(), None);
}

#[test]
fn write_timeout_returns_would_block_when_peer_does_not_read() {
    let (c, _s) = connected();
    let t = Duration::from_millis(100);
    c.set_write_timeout(Some(t)).unwrap();
    let chunk = vec![1u8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0usize;
    let e = loop {
        match (&c).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never filled the buffers");
    };
    let waited = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(sent > 0);
    assert!(waited >= t, "{waited:?}");
}

#[test]
fn nonblocking_mode_returns_would_block_instead_of_waiting() {
    let (l, a) = listener();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    let c = TcpStream::connect(a).unwrap();
    let s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => greenrt::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
    };
    c.set_nonblocking(true).unwrap();
    let start = Instant::now();
    assert_eq!((&c).read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() < SLACK);
    (&s).write_all(b"ok").unwrap();
    greenrt::sleep(Duration::from_millis(10));
    let mut buf = [0; 4];
    assert_eq!((&c).read(&mut buf).unwrap(), 2);
    c.set_nonblocking(false).unwrap();
    let g = spawn(move || {
        let mut b = [0; 3];
        (&c).read_exact(&mut b).map(|_| b)
    });
    greenrt::sleep(Duration::from_millis(10));
    (&s).write_all(b"abc").unwrap();
    assert_eq!(&g.get().unwrap().unwrap(), b"abc");
}

#[test]
fn connect_to_closed_port_is_connection_refused() {
    let (l, a) = listener();
    drop(l);
    let e = TcpStream::connect(a).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let e = TcpStream::connect_timeout(&a, Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    assert_eq!(
        TcpStream::connect_timeout(&a, Duration::ZERO).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn connect_timeout_succeeds_and_connect_resolves_names() {
    let (l, a) = listener();
    let c = TcpStream::connect_timeout(&a, Duration::from_secs(5)).unwrap();
    let (s, _) = l.accept().unwrap();
    assert_eq!(c.peer_addr().unwrap(), s.local_addr().unwrap());
    // "localhost" may name ::1 first; each address is tried in turn.
    let c = TcpStream::connect(format!("localhost:{}", a.port())).unwrap();
    let (s, _) = l.accept().unwrap();
    assert_eq!(c.peer_addr().unwrap(), s.local_addr().unwrap());
    let c = TcpStream::connect(("localhost", a.port())).unwrap();
    let _ = l.accept().unwrap();
    drop(c);
    assert_eq!(
        TcpStream::connect("127.0.0.1:notaport").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(TcpStream::connect("no-such-host.invalid:80").is_err());
}

#[test]
fn with_timeout_interrupts_accept_and_listener_still_works() {
    let (l, a) = listener();
    let start = Instant::now();
    let r = greenrt::with_timeout(Duration::from_millis(50), || l.accept());
    assert!(r.is_err(), "accept returned without a connection");
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(50) && elapsed < Duration::from_millis(50) + SLACK);
    let c = spawn(move || TcpStream::connect(a).unwrap());
    let (s, _) = l.accept().unwrap();
    assert_eq!(s.peer_addr().unwrap(), c.get().unwrap().local_addr().unwrap());
}

#[test]
fn kill_greenlet_blocked_in_accept() {
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let (l, a) = listener();
    let l = Rc::new(l);
    let dropped = Rc::new(Cell::new(false));
    let (l2, d2) = (l.clone(), dropped.clone());
    let g = spawn(move || {
        let _guard = Guard(d2);
        l2.accept().map(|_| ())
    });
    greenrt::sleep(Duration::from_millis(20));
    assert!(!g.dead());
    g.kill();
    assert!(g.dead());
    assert_eq!(g.exception(), Some(Error::Killed));
    assert!(dropped.get(), "the killed greenlet's destructors did not run");
    // Its wait is gone: another greenlet accepts normally.
    let l3 = l.clone();
    let acceptor = spawn(move || l3.accept().map(|(s, _)| s.peer_addr().unwrap()));
    let c = TcpStream::connect(a).unwrap();
    assert_eq!(acceptor.get().unwrap().unwrap(), c.local_addr().unwrap());
}

#[test]
fn peer_reset_gives_connection_reset() {
    let (c, s) = connected();
    let c = Rc::new(c);
    let c2 = c.clone();
    // Blocked in read when the reset arrives.
    let reader = spawn(move || (&*c2).read(&mut [0; 16]).map_err(|e| e.kind()));
    greenrt::sleep(Duration::from_millis(20));
    s.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    drop(s); // RST instead of FIN
    assert_eq!(reader.get().unwrap(), Err(ErrorKind::ConnectionReset));
    let e = (&*c).write(b"after reset").unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
        "{e}"
    );
}

#[test]
fn half_close_read_returns_zero_then_write_still_works() {
    let (mut c, mut s) = connected();
    c.write_all(b"request").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut req = Vec::new();
    s.read_to_end(&mut req).unwrap();
    assert_eq!(req, b"request");
    assert_eq!(s.read(&mut [0; 4]).unwrap(), 0, "EOF stays EOF");
    // The other direction is still open.
    s.write_all(b"response").unwrap();
    drop(s);
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    assert_eq!(resp, b"response");
    assert_eq!(c.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn shutdown_read_wakes_waiting_reader_with_eof() {
    let (c, _s) = connected();
    let c = Rc::new(c);
    let c2 = c.clone();
    let reader = spawn(move || (&*c2).read(&mut [0; 16]).unwrap());
    greenrt::sleep(Duration::from_millis(20));
    c.shutdown(Shutdown::Read).unwrap();
    assert_eq!(reader.get().unwrap(), 0);
}

#[test]
fn write_to_closed_peer_is_epipe_not_sigpipe() {
    if util::is_child() {
        // SIGPIPE back to its default action (the Rust runtime ignores it):
        // a single send without MSG_NOSIGNAL would now kill the process.
        // SAFETY: plain signal-disposition change in a single-purpose child.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let (c, s) = connected();
        drop(s);
        let mut errors = Vec::new();
        for i in 0..50 {
            let r = if i % 2 == 0 {
                (&c).write(&[0u8; 1024])
            } else {
                (&c).write_vectored(&[io::IoSlice::new(b"ab"), io::IoSlice::new(&[1u8; 512])])
            };
            if let Err(e) = r {
                errors.push(e.kind());
            }
            greenrt::sleep(Duration::from_millis(2));
        }
        assert!(errors.len() >= 40, "{errors:?}");
        assert!(errors
            .iter()
            .all(|k| matches!(k, ErrorKind::BrokenPipe | ErrorKind::ConnectionReset)));
        assert!(errors.contains(&ErrorKind::BrokenPipe), "{errors:?}");
        let e = (&c).write_all(&vec![0u8; 1 << 20]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
        println!("CHILD-SURVIVED");
        return;
    }
    util::assert_child_prints("write_to_closed_peer_is_epipe_not_sigpipe", &[], "CHILD-SURVIVED");
}

#[test]
fn thousand_concurrent_connections_echo() {
    const N: usize = 1000;
    let (l, a) = listener();
    let open = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let (o, p) = (open.clone(), peak.clone());
    let server = spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..N {
            let (mut s, _) = l.accept().unwrap();
            let (o, p) = (o.clone(), p.clone());
            handlers.push(spawn(move || {
                o.set(o.get() + 1);
                p.set(p.get().max(o.get()));
                let mut buf = [0u8; 4096];
                let mut echoed = 0;
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => break,
                        n => {
                            s.write_all(&buf[..n]).unwrap();
                            echoed += n;
                        }
                    }
                }
                o.set(o.get() - 1);
                echoed
            }));
        }
        handlers.iter().map(|h| h.get().unwrap()).sum::<usize>()
    });
    // Every client connects, then waits until all are connected, so the
    // server holds N connections at once.
    let connected = Rc::new(Cell::new(0usize));
    let all_in = Rc::new(Event::new());
    let start = Instant::now();
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let (connected, all_in) = (connected.clone(), all_in.clone());
            spawn(move || {
                let mut c = TcpStream::connect(a).unwrap();
                connected.set(connected.get() + 1);
                if connected.get() == N {
                    all_in.set();
                }
                all_in.wait().unwrap();
                let msg: Vec<u8> = (0..512).map(|j| (i * 31 + j) as u8).collect();
                for _ in 0..3 {
                    c.write_all(&msg).unwrap();
                    let mut back = vec![0; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                }
                c.shutdown(Shutdown::Write).unwrap();
                assert_eq!(c.read(&mut [0; 8]).unwrap(), 0);
            })
        })
        .collect();
    greenrt::joinall(&clients, Some(Duration::from_secs(60))).unwrap();
    for c in &clients {
        c.get().unwrap();
    }
    assert_eq!(server.get().unwrap(), N * 512 * 3);
    assert_eq!(peak.get(), N, "the server never held all connections at once");
    eprintln!("{N} connections echoed in {:?}", start.elapsed());
}

#[test]
fn ipv6_loopback_transfer() {
    let l = match TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipping: no IPv6 loopback here ({e})");
            return;
        }
    };
    let a = l.local_addr().unwrap();
    assert!(a.is_ipv6());
    let g = spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        assert!(peer.is_ipv6());
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v.len()
    });
    let mut c = TcpStream::connect(a).unwrap();
    c.write_all(&vec![9u8; 1 << 20]).unwrap();
    drop(c);
    assert_eq!(g.get().unwrap(), 1 << 20);
}

#[test]
fn peek_options_and_clone() {
    let (c, s) = connected();
    (&s).write_all(b"peekaboo").unwrap();
    let mut buf = [0; 4];
    assert_eq!(c.peek(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"peek");
    let mut all = [0; 8];
    (&c).read_exact(&mut all).unwrap();
    assert_eq!(&all, b"peekaboo");

    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    c.set_nodelay(false).unwrap();
    assert!(!c.nodelay().unwrap());
    c.set_ttl(42).unwrap();
    assert_eq!(c.ttl().unwrap(), 42);
    assert!(c.take_error().unwrap().is_none());

    // A clone is another fd for the same connection, with its own state.
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let c2 = c.try_clone().unwrap();
    assert_ne!(c2.as_raw_fd(), c.as_raw_fd());
    assert_eq!(c2.read_timeout().unwrap(), Some(Duration::from_secs(3)));
    (&c2).write_all(b"via clone").unwrap();
    drop(c);
    let mut got = [0; 9];
    (&s).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"via clone");
    assert!(format!("{c2:?}").contains("TcpStream"));
}

fn is_nonblocking(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFL on an fd the caller keeps open reads its flags only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

#[test]
fn std_and_raw_fd_conversions() {
    // std -> greenrt keeps std's timeouts (now cooperative) and makes the
    // fd non-blocking.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let l = TcpListener::from(l);
    let std_c = std::net::TcpStream::connect(a).unwrap();
    std_c.set_read_timeout(Some(Duration::from_millis(80))).unwrap();
    let c = TcpStream::from(std_c);
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(80)));
    assert!(is_nonblocking(c.as_raw_fd()));
    let (s, _) = l.accept().unwrap();
    assert_eq!((&c).read(&mut [0; 1]).unwrap_err().kind(), ErrorKind::WouldBlock);

    // greenrt -> std: blocking again, with the timeout as SO_RCVTIMEO.
    let mut std_c = c.into_std().unwrap();
    assert!(!is_nonblocking(std_c.as_raw_fd()));
    assert_eq!(std_c.read_timeout().unwrap(), Some(Duration::from_millis(80)));
    (&s).write_all(b"z").unwrap();
    let mut b = [0; 1];
    std_c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"z");

    // Raw fds and OwnedFd round trips.
    let raw = s.into_raw_fd();
    // SAFETY: `raw` was just released by into_raw_fd and is owned here.
    let s = unsafe { TcpStream::from_raw_fd(raw) };
    std_c.write_all(b"raw").unwrap();
    let mut b = [0; 3];
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"raw");
    let owned: OwnedFd = s.into();
    let s = TcpStream::from(owned);
    assert!(s.peer_addr().is_ok());
}

#[test]
fn many_greenlets_accept_on_one_listener() {
    let (l, a) = listener();
    let l = Rc::new(l);
    let acceptors: Vec<_> = (0..5)
        .map(|_| {
            let l = l.clone();
            spawn(move || l.accept().unwrap().0)
        })
        .collect();
    let clients: Vec<_> = (0..5).map(|_| TcpStream::connect(a).unwrap()).collect();
    let mut got: Vec<_> = acceptors
        .iter()
        .map(|g| g.get().unwrap().peer_addr().unwrap())
        .collect();
    let mut want: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn incoming_yields_connections() {
    let (l, a) = listener();
    let server = spawn(move || {
        l.incoming()
            .take(3)
            .map(|s| {
                let mut s = s.unwrap();
                let mut v = String::new();
                s.read_to_string(&mut v).unwrap();
                v
            })
            .collect::<Vec<_>>()
    });
    for i in 0..3 {
        let mut c = TcpStream::connect(a).unwrap();
        write!(c, "conn {i}").unwrap();
    }
    assert_eq!(server.get().unwrap(), ["conn 0", "conn 1", "conn 2"]);
}

#[test]
fn runs_on_the_configured_backend() {
    // The suite is run once per poller backend (GREENRT_BACKEND).
    let want = std::env::var("GREENRT_BACKEND").unwrap_or_else(|_| "epoll".into());
    assert_eq!(greenrt::hub::backend(), want);
}

#[test]
fn vectored_io_roundtrip() {
    let (c, s) = connected();
    let parts: Vec<Vec<u8>> = (0..2000).map(|i| vec![(i % 251) as u8; i % 7 + 1]).collect();
    let want: Vec<u8> = parts.concat();
    let w = spawn(move || {
        // More slices than IOV_MAX: write_vectored takes what it can.
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            let n = (&c).write_vectored(bufs).unwrap();
            io::IoSlice::advance_slices(&mut bufs, n);
        }
    });
    let mut got = vec![0u8; want.len()];
    let mut off = 0;
    while off < got.len() {
        let first = 3.min(got.len() - off);
        let (a, b) = got[off..].split_at_mut(first);
        let n = (&s)
            .read_vectored(&mut [io::IoSliceMut::new(a), io::IoSliceMut::new(b)])
            .unwrap();
        assert!(n > 0);
        off += n;
    }
    w.get().unwrap();
    assert_eq!(got, want);
}
