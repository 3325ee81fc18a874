//! A UDP echo server (gevent's `examples/udp_server.py`).
//!
//!     cargo run --release --example udp_echo -- [PORT]
//!
//! Listens on 127.0.0.1:PORT (the first argument, else `$PORT`, else
//! 9000; 0 picks a free port) and prints the address. Try it with
//! `nc -u 127.0.0.1 9000`.

use greenrt::server::DatagramServer;

fn main() {
    let port: u16 = match std::env::args().nth(1).or_else(|| std::env::var("PORT").ok()) {
        None => 9000,
        Some(p) => p.parse().unwrap_or_else(|_| {
            eprintln!("udp_echo: bad port {p:?}");
            std::process::exit(2)
        }),
    };
    let server = DatagramServer::bind(("127.0.0.1", port), |data, peer, sock| {
        if let Err(e) = sock.send_to(data, peer) {
            eprintln!("{peer}: {e}");
        }
    })
    .unwrap_or_else(|e| {
        eprintln!("udp_echo: cannot bind: {e}");
        std::process::exit(1)
    });
    println!("udp echo server listening on {}", server.local_addr());
    if let Err(e) = server.serve_forever() {
        eprintln!("udp_echo: {e}");
        std::process::exit(1);
    }
}
