//! An HTTP/1.1 hello-world server (gevent's `examples/wsgiserver.py`).
//!
//!     cargo run --release --example http_hello -- [PORT] [WORKERS]
//!
//! Listens on 127.0.0.1:PORT (the first argument, else `$PORT`, else
//! 8000; 0 picks a free port) and prints the address. With WORKERS (the
//! second argument, else `$WORKERS`, else 1) above 1 it serves on that
//! many hubs and threads, sharing the port with `SO_REUSEPORT`. Try it
//! with `curl -i http://127.0.0.1:8000/`.

use greenrt::server::http::{self, HttpConfig, Request, Response};
use greenrt::server::StreamServer;

fn arg<T: std::str::FromStr>(index: usize, var: &str, default: T) -> T {
    match std::env::args().nth(index).or_else(|| std::env::var(var).ok()) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("http_hello: bad {var} {v:?}");
            std::process::exit(2)
        }),
    }
}

fn hello(req: &mut Request<'_>) -> Response {
    match req.path() {
        "/" => Response::text("Hello, World!\n"),
        _ => Response::new(404).body("not found\n"),
    }
}

fn main() {
    let port: u16 = arg(1, "PORT", 8000);
    let workers: usize = arg(2, "WORKERS", 1);
    let fail = |e: std::io::Error| -> ! {
        eprintln!("http_hello: {e}");
        std::process::exit(1)
    };
    if workers > 1 {
        let w = StreamServer::workers(workers)
            .bind(("127.0.0.1", port), || http::handler(HttpConfig::new(), hello))
            .unwrap_or_else(|e| fail(e));
        println!("http_hello listening on http://{} ({workers} workers)", w.local_addr());
        w.join().unwrap_or_else(|e| fail(e));
    } else {
        let server = http::bind(("127.0.0.1", port), hello).unwrap_or_else(|e| fail(e));
        println!("http_hello listening on http://{}", server.local_addr());
        server.serve_forever().unwrap_or_else(|e| fail(e));
    }
}
