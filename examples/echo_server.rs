//! A TCP echo server: one greenlet per connection (gevent's
//! `examples/echoserver.py`).
//!
//!     cargo run --release --example echo_server -- [PORT]
//!
//! Listens on 127.0.0.1:PORT (the first argument, else `$PORT`, else
//! 7000; 0 picks a free port) and prints the address. Try it with
//! `nc 127.0.0.1 7000`.

use std::io::{Read, Write};
use std::net::SocketAddr;

use greenrt::net::TcpStream;
use greenrt::server::StreamServer;

fn port() -> u16 {
    let arg = std::env::args().nth(1).or_else(|| std::env::var("PORT").ok());
    match arg {
        None => 7000,
        Some(p) => p.parse().unwrap_or_else(|_| {
            eprintln!("echo_server: bad port {p:?}");
            std::process::exit(2)
        }),
    }
}

fn echo(mut conn: TcpStream, peer: SocketAddr) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) => {
                eprintln!("{peer}: {e}");
                break;
            }
        }
    }
}

fn main() {
    let server = StreamServer::bind(("127.0.0.1", port()), echo).unwrap_or_else(|e| {
        eprintln!("echo_server: cannot listen: {e}");
        std::process::exit(1)
    });
    println!("echo server listening on {}", server.local_addr());
    if let Err(e) = server.serve_forever() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
