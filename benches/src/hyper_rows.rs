//! hyper's side of the HTTP rows: hyper 1 (`server::conn::http1`, with
//! hyper-util's tokio glue) on a current-thread tokio runtime, or a
//! multi-thread one for `serve-http N`. Keep-alive and the Date header are
//! hyper's defaults; the tokio timer arms hyper's header-read timeout
//! (30 s), the counterpart of greenrt's header timeout.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::common::{self, unavailable};

const SYS: &str = "hyper";

pub fn run(job: &str) {
    match job {
        "serve-http" => serve_http(common::workers_arg()),
        other => unavailable(other, SYS, "hyper is only in the HTTP rows"),
    }
}

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/" => (200, "Hello, World!\n"),
        _ => (404, "not found\n"),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap())
}

fn serve_http(workers: usize) {
    crate::tokio_rows::server_rt(workers).block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        common::listening(l.local_addr().unwrap());
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(s), service_fn(hello))
                    .await;
            });
        }
    })
}
