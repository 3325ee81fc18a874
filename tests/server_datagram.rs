//! DatagramServer over real loopback sockets.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::net::UdpSocket;
use greenrt::pool::Pool;
use greenrt::server::DatagramServer;

fn client() -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

#[test]
fn datagram_echo() {
    let count = Rc::new(Cell::new(0));
    let c2 = count.clone();
    let server = DatagramServer::bind("127.0.0.1:0", move |data, peer, sock| {
        c2.set(c2.get() + 1);
        let mut reply = b"echo:".to_vec();
        reply.extend_from_slice(data);
        sock.send_to(&reply, peer).unwrap();
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    greenrt::spawn(move || {
        let c = client();
        let mut buf = [0u8; 2048];
        for i in 0..100 {
            let msg = format!("datagram number {i}");
            c.send_to(msg.as_bytes(), addr).unwrap();
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            assert_eq!(&buf[..n], format!("echo:{msg}").as_bytes());
        }
        // A large datagram arrives whole.
        let big = vec![7u8; 1400];
        c.send_to(&big, addr).unwrap();
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(n, 1405);
        assert_eq!(&buf[5..n], &big[..]);
    })
    .get()
    .unwrap();
    assert_eq!(count.get(), 101);
    server.stop(Duration::from_secs(1));
    assert!(server.closed() && !server.started());
}

#[test]
fn datagram_handlers_run_concurrently_and_pool_bounds_them() {
    for (pool, min_ms, max_ms) in [(None, 100, 400), (Some(2), 500, 2000)] {
        let server = DatagramServer::bind("127.0.0.1:0", |data, peer, sock| {
            greenrt::sleep(Duration::from_millis(100));
            sock.send_to(data, peer).unwrap();
        })
        .unwrap();
        let server = match pool {
            Some(n) => server.with_pool(Pool::new(n)),
            None => server,
        };
        server.start().unwrap();
        let addr = server.local_addr();
        let took = greenrt::spawn(move || {
            let c = client();
            let start = Instant::now();
            for i in 0..10u8 {
                c.send_to(&[i], addr).unwrap();
            }
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            for _ in 0..10 {
                let (n, _) = c.recv_from(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got.sort_unstable();
            assert_eq!(got, (0..10).collect::<Vec<u8>>());
            start.elapsed()
        })
        .get()
        .unwrap();
        // Ten 100 ms handlers: together in ~100 ms, or 2 at a time in ~500 ms.
        assert!(
            took >= Duration::from_millis(min_ms) && took < Duration::from_millis(max_ms),
            "pool {pool:?}: {took:?}"
        );
        server.stop(Duration::from_secs(1));
    }
}

#[test]
fn datagram_stop_waits_then_kills_and_closes() {
    let finished = Rc::new(Cell::new(0));
    let f2 = finished.clone();
    let server = DatagramServer::bind("127.0.0.1:0", move |data, _, _| {
        let ms = if data == b"slow" { 10_000 } else { 50 };
        greenrt::sleep(Duration::from_millis(ms));
        f2.set(f2.get() + 1);
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    let c = client();
    c.send_to(b"fast", addr).unwrap();
    c.send_to(b"slow", addr).unwrap();
    greenrt::sleep(Duration::from_millis(20));
    let t0 = Instant::now();
    server.stop(Duration::from_millis(200));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(finished.get(), 1, "the fast handler finished, the slow one was killed");
    // The socket is closed: nothing answers any more.
    assert!(server.socket().local_addr().is_err());
}
