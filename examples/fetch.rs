//! A concurrent TLS fetcher (gevent's `examples/concurrent_download.py`,
//! over HTTPS): many requests at once from one thread, each in its own
//! greenlet.
//!
//!     cargo run --release --example fetch -- [REQUESTS] [CONCURRENCY]
//!
//! It starts its own HTTPS server on 127.0.0.1 (another OS thread with its
//! own hub, a certificate made on the spot with rcgen, and 20 ms of
//! simulated work per request), then fetches `REQUESTS` pages (default
//! 200) with at most `CONCURRENCY` (default 100) in flight: TCP connect,
//! TLS handshake verifying the server's certificate, `GET`, read to the
//! clean close. It prints the wall time beside the sum of the requests'
//! latencies: the ratio is how many requests overlapped.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenrt::net::{TcpListener, TcpStream};
use greenrt::pool::Pool;
use greenrt::tls::{self, ClientConfig, RootCertStore, TlsAcceptor};

/// Simulated server-side work per request.
const WORK: Duration = Duration::from_millis(20);

fn arg(n: usize, default: usize) -> usize {
    match std::env::args().nth(n) {
        None => default,
        Some(a) => match a.parse() {
            Ok(v) if v > 0 => v,
            _ => {
                eprintln!("fetch: expected a positive number, got {a:?}");
                eprintln!("usage: fetch [REQUESTS] [CONCURRENCY]");
                std::process::exit(2)
            }
        },
    }
}

/// A CA, and a certificate for `localhost` it signed: (client config
/// trusting the CA, server acceptor).
fn make_pki() -> (Arc<ClientConfig>, TlsAcceptor) {
    let ca_key = rcgen::KeyPair::generate().expect("generate CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "greenrt fetch example CA");
    let ca = ca_params.self_signed(&ca_key).expect("self-sign CA");
    let key = rcgen::KeyPair::generate().expect("generate server key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("server params")
        .signed_by(&key, &ca, &ca_key)
        .expect("sign server certificate");

    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).expect("add CA to roots");
    let acceptor =
        TlsAcceptor::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).expect("server certificate");
    (tls::client_config_with_roots(roots), acceptor)
}

/// The local HTTPS server: a greenlet per connection on its own thread.
fn start_server(acceptor: TlsAcceptor) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        tx.send(listener.local_addr().expect("local_addr"))
            .expect("report address");
        loop {
            let (tcp, _) = match listener.accept() {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("server: accept: {e}");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            greenrt::spawn(move || {
                if let Err(e) = serve(&acceptor, tcp) {
                    eprintln!("server: {e}");
                }
            });
        }
    });
    rx.recv().expect("server thread started")
}

fn serve(acceptor: &TlsAcceptor, tcp: TcpStream) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut tls = acceptor.accept(tcp)?;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request cut short"));
        }
        request.extend_from_slice(&buf[..n]);
    }
    greenrt::sleep(WORK);
    let path = String::from_utf8_lossy(&request)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let body = format!("hello from greenrt over TLS, you asked for {path}\n");
    write!(
        tls,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    tls.shutdown()
}

/// One HTTPS GET; returns the body length and how long it took.
fn fetch(addr: SocketAddr, config: Arc<ClientConfig>, i: usize) -> io::Result<(usize, Duration)> {
    let start = Instant::now();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut tls = tls::connect("localhost", tcp, config)?;
    write!(
        tls,
        "GET /page/{i} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 200 ") || !text.contains(&format!("/page/{i}\n")) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad response: {text:?}"),
        ));
    }
    let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    Ok((body, start.elapsed()))
}

fn main() {
    let requests = arg(1, 200);
    let concurrency = arg(2, 100);
    let (config, acceptor) = make_pki();
    let addr = start_server(acceptor);
    println!("HTTPS server on {addr}; {requests} requests, at most {concurrency} at once");

    let pool = Pool::new(concurrency);
    let start = Instant::now();
    let switches = greenrt::hub::switch_count();
    let fetches: Vec<_> = (0..requests)
        .map(|i| {
            let config = config.clone();
            // Waits for a free slot when `concurrency` are in flight.
            pool.spawn(move || fetch(addr, config, i)).expect("spawn fetch")
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let mut bytes = 0;
    let mut failed = 0;
    for (i, f) in fetches.iter().enumerate() {
        match f.get() {
            Ok(Ok((n, latency))) => {
                bytes += n;
                latencies.push(latency);
            }
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("request {i}: {e}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("request {i}: greenlet failed: {e}");
            }
        }
    }
    let wall = start.elapsed();
    let sum: Duration = latencies.iter().sum();
    latencies.sort();
    let pct = |p: usize| latencies.get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)));

    println!(
        "{} ok, {failed} failed, {bytes} body bytes, {} hub switches",
        latencies.len(),
        greenrt::hub::switch_count() - switches
    );
    if let (Some(p50), Some(p99)) = (pct(50), pct(99)) {
        println!("latency p50 {p50:?}, p99 {p99:?}");
    }
    println!("wall time         {wall:?}");
    println!("sum of latencies  {sum:?}");
    println!(
        "overlap           {:.1}x (sum of latencies / wall time)",
        sum.as_secs_f64() / wall.as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
