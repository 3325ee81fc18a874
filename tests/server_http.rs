//! The HTTP/1.1 server over real loopback sockets: keep-alive,
//! pipelining, bodies both ways, 100-continue, HEAD, limits, timeouts,
//! errors; and the request path fed 100k generated inputs.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::net::TcpStream;
use greenrt::server::http::{self, HttpConfig, Request, Response, Version};
use greenrt::server::StreamServer;
use util::{test_pki, Rng};

/// No `Date`, so responses are byte-exact.
fn cfg() -> HttpConfig {
    HttpConfig::new().date_header(false)
}

fn serve(config: HttpConfig, h: impl Fn(&mut Request<'_>) -> Response + 'static) -> StreamServer {
    let server = StreamServer::bind("127.0.0.1:0", http::handler(config, h)).unwrap();
    server.start().unwrap();
    server
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads until the server closes; fails the test if it does not within
/// the read timeout.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!(
                "server did not close the connection: {e}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Reads exactly `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    s.read_exact(&mut v).unwrap();
    v
}

/// Sends `req`, half-closes, and returns everything the server sent.
fn exchange(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    let req = req.to_vec();
    greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(&req).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_to_close(&mut s)
    })
    .get()
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn echo_handler(req: &mut Request<'_>) -> Response {
    let body = req.read_body().unwrap_or_default();
    Response::new(200).body(format!("{} {} {}", req.method(), req.target(), text(&body)))
}

#[test]
fn keep_alive_two_requests_one_connection() {
    let peers = Rc::new(RefCell::new(Vec::new()));
    let p2 = peers.clone();
    let server = serve(cfg(), move |req| {
        p2.borrow_mut().push(req.peer_addr().unwrap());
        Response::new(200).body(format!("you asked for {}", req.path()))
    });
    let addr = server.local_addr();
    greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let want1 = b"HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 18\r\n\r\nyou asked for /one";
        assert_eq!(text(&read_n(&mut s, want1.len())), text(want1));
        s.write_all(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let want2 = b"HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 18\r\n\r\nyou asked for /two";
        assert_eq!(text(&read_n(&mut s, want2.len())), text(want2));
    })
    .get()
    .unwrap();
    let peers = peers.borrow();
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0], peers[1], "both requests came over one connection");
    server.stop(Duration::from_secs(1));
}

#[test]
fn pipelined_requests_answered_in_order() {
    let server = serve(cfg(), |req| {
        if req.path() == "/slow" {
            // The later, faster requests must still be answered after it.
            greenrt::sleep(Duration::from_millis(50));
        }
        echo_handler(req)
    });
    let out = exchange(
        server.local_addr(),
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
          GET /c?d HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 10\r\n\r\nGET /slow \
         HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 11\r\n\r\nPOST /b abc\
         HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 9\r\n\r\nGET /c?d "
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn chunked_request_body_decoded() {
    let seen = Rc::new(Cell::new(false));
    let s2 = seen.clone();
    let server = serve(cfg(), move |req| {
        if req.method() == "POST" {
            assert!(req.is_chunked());
            assert_eq!(req.content_length(), None);
            s2.set(true);
        }
        echo_handler(req)
    });
    let out = exchange(
        server.local_addr(),
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n\
          GET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(seen.get());
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 25\r\n\r\nPOST /up hello 0123456789\
         HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 11\r\n\r\nGET /after "
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn malformed_chunked_body_is_400() {
    let server = serve(cfg(), echo_handler);
    let out = exchange(
        server.local_addr(),
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    assert!(text(&out).starts_with("HTTP/1.1 400 Bad Request\r\n"), "{}", text(&out));
    assert!(text(&out).contains("\r\nConnection: close\r\n"));
    server.stop(Duration::from_secs(1));
}

#[test]
fn chunked_response_when_streaming() {
    let server = serve(cfg(), |req| {
        let who = req.query().unwrap_or("nobody").to_string();
        Response::stream(move |w| {
            w.write_all(b"hello ")?;
            w.flush()?;
            w.write_all(who.as_bytes())?;
            Ok(())
        })
        .header("Content-Type", "text/plain")
    });
    let out = exchange(
        server.local_addr(),
        b"GET /?world HTTP/1.1\r\nHost: x\r\n\r\nGET /?again HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
         6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n\
         HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
         6\r\nhello \r\n5\r\nagain\r\n0\r\n\r\n"
    );
    // An HTTP/1.0 client cannot take chunks: the body ends at the close.
    let out = exchange(server.local_addr(), b"GET /?old HTTP/1.0\r\n\r\n");
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello old"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn expect_100_continue() {
    let server = serve(cfg(), |req| {
        if req.path() == "/ignore" {
            return Response::new(403).body("no");
        }
        echo_handler(req)
    });
    let addr = server.local_addr();
    greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            .unwrap();
        // The go-ahead comes before we send a byte of the body.
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(text(&read_n(&mut s, cont.len())), text(cont));
        s.write_all(b"data").unwrap();
        let want = b"HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 11\r\n\r\nPUT /f data";
        assert_eq!(text(&read_n(&mut s, want.len())), text(want));

        // A handler that answers without reading the body: no 100, and the
        // connection closes (the client may or may not send the body now).
        s.write_all(b"PUT /ignore HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            .unwrap();
        assert_eq!(
            text(&read_to_close(&mut s)),
            "HTTP/1.1 403 Forbidden\r\nServer: greenrt\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
        );
    })
    .get()
    .unwrap();
    server.stop(Duration::from_secs(1));
}

#[test]
fn head_has_no_body() {
    let server = serve(cfg(), |_req| Response::text("hello"));
    // The GET after the HEAD proves no body bytes followed the HEAD's head.
    let out = exchange(
        server.local_addr(),
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let head =
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(text(&out), format!("{head}{head}hello"));
    server.stop(Duration::from_secs(1));
}

#[test]
fn uri_too_long_414() {
    let called = Rc::new(Cell::new(0));
    let c2 = called.clone();
    let server = serve(cfg(), move |_| {
        c2.set(c2.get() + 1);
        Response::new(200)
    });
    let req = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    let out = exchange(server.local_addr(), req.as_bytes());
    assert_eq!(
        text(&out),
        "HTTP/1.1 414 URI Too Long\r\nServer: greenrt\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 17\r\nConnection: close\r\n\r\n414 URI Too Long\n"
    );
    // Just under the limit is fine.
    let req = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(8000));
    let out = exchange(server.local_addr(), req.as_bytes());
    assert!(text(&out).starts_with("HTTP/1.1 200 OK\r\n"), "{}", text(&out));
    assert_eq!(called.get(), 1);
    server.stop(Duration::from_secs(1));
}

#[test]
fn headers_too_large_431() {
    let server = serve(cfg(), |_| Response::new(200));
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(9000));
    let out = exchange(server.local_addr(), big.as_bytes());
    assert!(
        text(&out).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("\r\nConnection: close\r\n"));
    // Too many small headers.
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(101));
    let out = exchange(server.local_addr(), many.as_bytes());
    assert!(text(&out).starts_with("HTTP/1.1 431 "), "{}", text(&out));
    server.stop(Duration::from_secs(1));
}

#[test]
fn body_too_large_413() {
    let called = Rc::new(Cell::new(0));
    let c2 = called.clone();
    let server = serve(cfg().max_body(1000), move |req| {
        c2.set(c2.get() + 1);
        echo_handler(req)
    });
    let addr = server.local_addr();
    // Declared too large: refused before the handler runs, without
    // waiting for the body.
    let out = greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
            .unwrap();
        read_to_close(&mut s)
    })
    .get()
    .unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 413 Content Too Large\r\nServer: greenrt\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 22\r\nConnection: close\r\n\r\n413 Content Too Large\n"
    );
    assert_eq!(called.get(), 0);
    // Chunked, growing past the limit while the handler reads it.
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"190\r\n");
        req.extend_from_slice(&[b'z'; 400]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let out = exchange(addr, &req);
    assert!(
        text(&out).starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{}",
        text(&out)
    );
    assert_eq!(called.get(), 1);
    // At the limit is fine.
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".to_vec();
    req.extend_from_slice(&[b'k'; 1000]);
    let out = exchange(addr, &req);
    assert!(text(&out).starts_with("HTTP/1.1 200 OK\r\n"), "{}", text(&out));
    server.stop(Duration::from_secs(1));
}

#[test]
fn malformed_request_400_then_close() {
    let server = serve(cfg(), |_| Response::new(200));
    let addr = server.local_addr();
    for bad in [
        &b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n"[..],
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
        b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let req = bad.to_vec();
        // The client does not close its side: the server must.
        let out = greenrt::spawn(move || {
            let mut s = connect(addr);
            s.write_all(&req).unwrap();
            read_to_close(&mut s)
        })
        .get()
        .unwrap();
        assert_eq!(
            text(&out),
            "HTTP/1.1 400 Bad Request\r\nServer: greenrt\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n",
            "for {:?}",
            text(bad)
        );
    }
    server.stop(Duration::from_secs(1));
}

#[test]
fn slowloris_dropped_after_header_timeout() {
    let server = serve(cfg().header_timeout(Some(Duration::from_millis(300))), |_| {
        Response::new(200)
    });
    let addr = server.local_addr();
    let (out, elapsed) = greenrt::spawn(move || {
        let mut s = connect(addr);
        let start = Instant::now();
        s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        // One header byte every 50 ms: each read succeeds, only a deadline
        // for the whole head stops this.
        for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            greenrt::sleep(Duration::from_millis(50));
            if s.write_all(&[*b]).is_err() {
                break;
            }
        }
        (read_to_close(&mut s), start.elapsed())
    })
    .get()
    .unwrap();
    assert!(
        text(&out).starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{}",
        text(&out)
    );
    assert!(elapsed >= Duration::from_millis(280), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // The handler greenlet is gone.
    assert_eq!(server.connections(), 0);
    server.stop(Duration::from_secs(1));
}

#[test]
fn silent_connection_dropped_after_header_timeout() {
    let server = serve(cfg().header_timeout(Some(Duration::from_millis(200))), |_| {
        Response::new(200)
    });
    let addr = server.local_addr();
    let (out, elapsed) = greenrt::spawn(move || {
        let mut s = connect(addr);
        let start = Instant::now();
        (read_to_close(&mut s), start.elapsed())
    })
    .get()
    .unwrap();
    assert_eq!(out, b"", "nothing was asked, nothing is answered");
    assert!(
        elapsed >= Duration::from_millis(180) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(server.connections(), 0);
    server.stop(Duration::from_secs(1));
}

#[test]
fn idle_keep_alive_closed_after_idle_timeout() {
    let server = serve(cfg().idle_timeout(Some(Duration::from_millis(200))), |_| {
        Response::text("x")
    });
    let addr = server.local_addr();
    let (out, elapsed) = greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let start = Instant::now();
        (read_to_close(&mut s), start.elapsed())
    })
    .get()
    .unwrap();
    assert!(text(&out).starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        text(&out).ends_with("\r\n\r\nx"),
        "no 408 for an idle connection: {}",
        text(&out)
    );
    assert!(
        elapsed >= Duration::from_millis(180) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn http10_closes_by_default() {
    let server = serve(cfg(), |req| {
        assert_eq!(req.version(), Version::Http10);
        Response::new(200).body("ten")
    });
    let addr = server.local_addr();
    let out = greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        read_to_close(&mut s)
    })
    .get()
    .unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 3\r\nConnection: close\r\n\r\nten"
    );
    // Unless it asks for keep-alive.
    greenrt::spawn(move || {
        let mut s = connect(addr);
        let want = b"HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nten";
        for _ in 0..2 {
            s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            assert_eq!(text(&read_n(&mut s, want.len())), text(want));
        }
    })
    .get()
    .unwrap();
    server.stop(Duration::from_secs(1));
}

#[test]
fn connection_close_honoured_both_ways() {
    let server = serve(cfg(), |req| {
        if req.path() == "/bye" {
            Response::new(200).header("Connection", "close").body("bye")
        } else {
            Response::new(200).body("hi")
        }
    });
    let addr = server.local_addr();
    // The client's Connection: close; the server closes without a
    // half-close from the client.
    let out = greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        read_to_close(&mut s)
    })
    .get()
    .unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    // The handler's Connection: close: the pipelined request after it is
    // never answered.
    let out = greenrt::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET /bye HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n").unwrap();
        read_to_close(&mut s)
    })
    .get()
    .unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn handler_panic_is_500_and_server_survives() {
    let server = serve(cfg(), |req| {
        if req.path() == "/boom" {
            panic!("handler bug");
        }
        Response::new(200).body("fine")
    });
    let out = exchange(server.local_addr(), b"GET /boom HTTP/1.1\r\n\r\n");
    assert!(
        text(&out).starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{}",
        text(&out)
    );
    let out = exchange(server.local_addr(), b"GET / HTTP/1.1\r\n\r\n");
    assert!(text(&out).ends_with("\r\n\r\nfine"), "{}", text(&out));
    server.stop(Duration::from_secs(1));
}

#[test]
fn unread_body_is_drained_before_next_request() {
    let server = serve(cfg(), |req| Response::new(200).body(req.path().to_string()));
    let mut req = b"POST /first HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789".to_vec();
    req.extend_from_slice(b"POST /second HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    req.extend_from_slice(b"GET /third HTTP/1.1\r\n\r\n");
    let out = exchange(server.local_addr(), &req);
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 6\r\n\r\n/first\
         HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 7\r\n\r\n/second\
         HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 6\r\n\r\n/third"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn request_parts() {
    let server = serve(cfg(), |req| {
        let parts = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}|{}",
            req.method(),
            req.target(),
            req.path(),
            req.query(),
            req.header("x-Thing"),
            req.content_length(),
            req.headers().map(|(n, _)| n).collect::<Vec<_>>().join(","),
        );
        Response::new(200).body(parts)
    });
    let out = exchange(
        server.local_addr(),
        b"OPTIONS http://example.com/a/b?c=d&e HTTP/1.1\r\nHost: example.com\r\nX-Thing: yes\r\n\r\n\
          DELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    let text = text(&out);
    assert!(
        text.contains(
            "\r\n\r\nOPTIONS|http://example.com/a/b?c=d&e|/a/b|Some(\"c=d&e\")|Some(\"yes\")|None|Host,X-Thing"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\nDELETE|/x|/x|None|None|Some(0)|Content-Length"),
        "{text}"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn date_and_server_headers() {
    let server = serve(HttpConfig::new(), |_| Response::new(204));
    let out = text(&exchange(server.local_addr(), b"GET / HTTP/1.1\r\n\r\n"));
    let date = out
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap_or_else(|| panic!("no Date in {out}"));
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
    assert_eq!(date.len(), 29, "{date}");
    assert!(date.ends_with(" GMT") && date.as_bytes()[3] == b',', "{date}");
    assert!(
        out.starts_with("HTTP/1.1 204 No Content\r\nServer: greenrt\r\n"),
        "{out}"
    );
    assert!(!out.contains("Content-Length"), "204 has no Content-Length: {out}");
    server.stop(Duration::from_secs(1));
}

// ===== generated input =====

const VALID: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\n\r\n",
    b"GET /close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"PUT /skip HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n",
];

/// Requests that are malformed however they are split.
const MALFORMED: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"GE(T / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/2.5\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nQ\r\n",
    b"GET / HTTP/1.1\r\n\x01: y\r\n\r\n",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..=rng.below(4) {
        if v.is_empty() {
            v.push(rng.next() as u8);
            continue;
        }
        let i = rng.below(v.len());
        match rng.below(6) {
            0 => v[i] = rng.next() as u8,
            1 => {
                v.remove(i);
            }
            2 => v.insert(i, rng.next() as u8),
            3 => v.insert(i, b"\r\n:; ,0Ff"[rng.below(9)]),
            4 => {
                let j = rng.below(v.len());
                let piece = v[i.min(j)..i.max(j)].to_vec();
                v.splice(i..i, piece);
            }
            _ => v.truncate(i),
        }
    }
    v
}

/// The output is a series of well-formed status lines: empty (closed),
/// or starting with "HTTP/1.1 NNN ".
fn status(out: &[u8]) -> Option<u16> {
    if out.is_empty() {
        return None;
    }
    assert!(
        out.len() >= 13 && out.starts_with(b"HTTP/1.1 "),
        "bad output {:?}",
        text(out)
    );
    let code = &out[9..12];
    assert!(
        code.iter().all(u8::is_ascii_digit) && out[12] == b' ',
        "bad status {:?}",
        text(out)
    );
    Some(text(code).parse().unwrap())
}

#[test]
fn fuzz_100k_generated_requests_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut answered = 0;
    for i in 0..100_000u32 {
        let input = match i % 4 {
            // Arbitrary bytes, sometimes behind a valid request line.
            0 => {
                let n = rng.below(200);
                let mut v: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                if rng.below(2) == 0 {
                    v.splice(0..0, b"GET / HTTP/1.1\r\n".iter().copied());
                }
                v
            }
            // A valid request, mutated.
            1 | 2 => {
                let base = VALID[rng.below(VALID.len())];
                mutate(&mut rng, base)
            }
            // Malformed: must be refused with a 4xx (or 501).
            _ => MALFORMED[rng.below(MALFORMED.len())].to_vec(),
        };
        let out = http::fuzz_http_request_bytes(&input);
        let code = status(&out);
        if i % 4 == 3 {
            let code = code.unwrap_or_else(|| panic!("no answer to malformed {:?}", text(&input)));
            assert!((400..500).contains(&code), "{code} for malformed {:?}", text(&input));
        }
        if code.is_some() {
            answered += 1;
        }
    }
    // The generator reaches the server's answers, not only its closes.
    assert!(answered > 30_000, "{answered}");
}

#[test]
fn fuzz_entry_answers_valid_requests() {
    for req in VALID {
        let out = http::fuzz_http_request_bytes(req);
        let code = status(&out).unwrap_or_else(|| panic!("no answer to {:?}", text(req)));
        assert!((200..300).contains(&code), "{:?} -> {:?}", text(req), text(&out));
    }
    let out = http::fuzz_http_request_bytes(b"POST /stream HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    );
}

// ===== TLS =====

#[test]
fn https_keep_alive_and_clean_close() {
    let (acceptor, client_config) = test_pki();
    let server = StreamServer::bind("127.0.0.1:0", http::tls_handler(cfg(), acceptor, echo_handler)).unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    let out = greenrt::spawn(move || {
        let tcp = connect(addr);
        let mut tls = greenrt::tls::connect("localhost", tcp, client_config).unwrap();
        tls.write_all(b"GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let want = b"HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 9\r\n\r\nGET /one ";
        let mut got = vec![0; want.len()];
        tls.read_exact(&mut got).unwrap();
        assert_eq!(text(&got), text(want));
        tls.write_all(b"POST /two HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            .unwrap();
        // read_to_end succeeds only on the server's close_notify.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).unwrap();
        rest
    })
    .get()
    .unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nServer: greenrt\r\nContent-Length: 12\r\nConnection: close\r\n\r\nPOST /two hi"
    );
    server.stop(Duration::from_secs(1));
}
