//! Real programs nobody here wrote, under the preload: curl against a local
//! server, Python 3's urllib with threads, Python 3's subprocess, a bash
//! pipeline, redis-server answering redis-cli. Each runs plain, with
//! `GREENRT_HOOKS=auto` and with `GREENRT_HOOKS=always`; the outputs must
//! match the plain run's exactly.
//!
//! A program that is not installed fails its test with what to install:
//! `.ci/run` installs them (curl, redis-server, redis-tools; python3 and bash
//! come with the machine).

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{diff, free_port, preload_so, run_timeout, tail, which, Mode};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The program's path, or a failure naming the package that provides it.
fn require(program: &str, package: &str) -> PathBuf {
    which(program).unwrap_or_else(|| {
        panic!(
            "{program} is not installed, and the real-program tests need it: \
             `apt-get install -y {package}` (.ci/run does this)"
        )
    })
}

/// Runs `make(mode)` plain, auto and always; every run must succeed and
/// print what the plain run printed. Returns the plain output.
fn same_in_every_mode(what: &str, make: impl Fn(Mode) -> Command) -> String {
    same_in_every_mode_with(what, |m| (make(m), ()))
}

/// Like [`same_in_every_mode`]; `make` also returns a guard (a server the
/// run talks to) that lives until that run is checked.
fn same_in_every_mode_with<G>(what: &str, make: impl Fn(Mode) -> (Command, G)) -> String {
    let so = preload_so();
    let mut plain = None::<String>;
    for mode in Mode::ALL {
        let (mut cmd, guard) = make(mode);
        mode.apply(&mut cmd, &so);
        let o = run_timeout(&mut cmd, TIMEOUT);
        assert!(
            o.success() && !o.stderr.contains("cannot be preloaded"),
            "{what} ({}): {}\nstdout:\n{}stderr:\n{}",
            mode.name(),
            o.status_text(),
            tail(&o.stdout, 20),
            tail(&o.stderr, 20)
        );
        match &plain {
            None => plain = Some(o.stdout),
            Some(p) => assert!(
                *p == o.stdout,
                "{what}: stdout under the preload ({}) differs from the plain run (- plain, + {}):\n{}stderr:\n{}",
                mode.name(),
                mode.name(),
                diff(p, &o.stdout, 5),
                tail(&o.stderr, 20)
            ),
        }
        drop(guard);
    }
    plain.unwrap()
}

/// A tiny HTTP/1.0 server on a thread: `/hello` and `/big` (1 MiB of a
/// deterministic pattern), each connection closed after its answer.
fn http_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body: Vec<u8> = match path.as_str() {
                    "/hello" => b"hello from greenrt's test server\n".to_vec(),
                    "/big" => (0..1 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect(),
                    p => format!("path {p}\n").into_bytes(),
                };
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&body);
            });
        }
    });
    port
}

#[test]
fn curl_against_a_local_server() {
    let curl = require("curl", "curl");
    let port = http_server();
    let out = same_in_every_mode("curl", |_| {
        let mut c = Command::new(&curl);
        c.args(["-sS", "--max-time", "30", "-w", "\\n%{http_code} %{size_download}\\n"])
            .arg(format!("http://127.0.0.1:{port}/hello"))
            .arg(format!("http://localhost:{port}/big"))
            .arg(format!("http://127.0.0.1:{port}/x/y?z=1"));
        c
    });
    assert!(
        out.starts_with("hello from greenrt's test server\n\n200 33\n"),
        "{}",
        &out[..80.min(out.len())]
    );
    assert!(out.contains("\n200 1048576\n"));
    assert!(
        out.ends_with("path /x/y?z=1\n\n200 14\n"),
        "{}",
        &out[out.len().saturating_sub(80)..]
    );
}

const URLLIB_THREADS: &str = r#"
import http.server, threading, urllib.request

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s\n" % self.path).encode() * 200
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]
results = {}

def fetch(i):
    host = "localhost" if i % 2 else "127.0.0.1"
    with urllib.request.urlopen("http://%s:%d/item/%d" % (host, port, i), timeout=30) as r:
        body = r.read()
        results[i] = (r.status, len(body), body.splitlines()[0].decode())

threads = [threading.Thread(target=fetch, args=(i,)) for i in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
server.shutdown()
for i in sorted(results):
    print(i, *results[i])
print("fetched", len(results))
"#;

#[test]
fn python_urllib_with_threads() {
    let py = require("python3", "python3");
    let out = same_in_every_mode("python3 urllib with threads", |_| {
        let mut c = Command::new(&py);
        c.args(["-c", URLLIB_THREADS]);
        c
    });
    assert!(out.ends_with("fetched 16\n"), "{out}");
    assert!(out.contains("\n7 200 1600 /item/7\n"), "{out}");
}

const SUBPROCESS: &str = r#"
import subprocess, sys
from subprocess import PIPE

print(subprocess.run(["echo", "hello"], capture_output=True, text=True).stdout, end="")
p = subprocess.Popen(["sort"], stdin=PIPE, stdout=PIPE, text=True)
out, _ = p.communicate("pear\napple\nfig\n")
print(out, end="")
print("sort exited", p.returncode)
print("sh exited", subprocess.run(["sh", "-c", "exit 3"]).returncode)
try:
    subprocess.run(["sleep", "5"], timeout=0.3)
except subprocess.TimeoutExpired:
    print("sleep timed out")
big = subprocess.run(["head", "-c", "3000000", "/dev/zero"], capture_output=True)
print("read", len(big.stdout), "bytes")
echo = subprocess.run(["cat"], input=b"x" * 2000000, capture_output=True)
print("cat echoed", len(echo.stdout), "bytes")
print(subprocess.check_output("seq 1 1000 | tail -n 2", shell=True, text=True), end="")
p1 = subprocess.Popen(["seq", "1", "5000"], stdout=PIPE)
p2 = subprocess.Popen(["wc", "-l"], stdin=p1.stdout, stdout=PIPE)
p1.stdout.close()
print("wc says", p2.communicate()[0].decode().strip(), "and seq exited", p1.wait())
err = subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('e' * 100000); print('done')"],
                     capture_output=True, text=True)
print(err.stdout.strip(), len(err.stderr))
"#;

#[test]
fn python_subprocess() {
    let py = require("python3", "python3");
    let out = same_in_every_mode("python3 subprocess", |_| {
        let mut c = Command::new(&py);
        c.args(["-c", SUBPROCESS]);
        c
    });
    assert_eq!(
        out,
        "hello\napple\nfig\npear\nsort exited 0\nsh exited 3\nsleep timed out\nread 3000000 bytes\n\
         cat echoed 2000000 bytes\n999\n1000\nwc says 5000 and seq exited 0\ndone 100000\n"
    );
}

const PIPELINE: &str = r#"
set -eu -o pipefail
seq 1 200000 | grep 7 | sort -n | tail -n 3
seq 1 100000 | sha256sum
while read -r n word; do echo "$word=$n"; done < <(printf '1 one\n2 two\n3 three\n')
tr a-z A-Z <<'EOF'
a here document
EOF
{ sleep 0.2; echo late; } &
echo early
wait
echo "lines: $(yes | head -n 1000 | wc -l)"
total=0
for i in $(seq 1 100); do total=$((total + i)); done
echo "sum: $total"
exec 3< <(echo from fd 3)
read -r line <&3
echo "$line"
"#;

#[test]
fn bash_pipeline() {
    let bash = require("bash", "bash");
    let out = same_in_every_mode("bash pipeline", |_| {
        let mut c = Command::new(&bash);
        c.args(["-c", PIPELINE]);
        c
    });
    assert!(out.starts_with("199979\n199987\n199997\n"), "{out}");
    assert!(
        out.contains("one=1\ntwo=2\nthree=3\nA HERE DOCUMENT\nearly\nlate\nlines: 1000\nsum: 5050\nfrom fd 3\n"),
        "{out}"
    );
}

/// A redis-server under `mode` on a free loopback port, stopped on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(server: &PathBuf, mode: Mode) -> Redis {
        let port = free_port();
        let mut c = Command::new(server);
        c.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--daemonize", "no", "--loglevel", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        mode.apply(&mut c, &preload_so());
        let child = c.spawn().expect("start redis-server");
        let r = Redis { child, port };
        let t0 = Instant::now();
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| &buf[..n] == b"+PONG\r\n") {
                    return r;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "redis-server ({}) did not answer PING on port {port} within 20 s",
                mode.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

const REDIS_SESSION: &str = "FLUSHALL
SET greeting hello
GET greeting
INCR counter
INCRBY counter 41
RPUSH list a b c d
LRANGE list 0 -1
HSET h field1 v1 field2 v2
HGETALL h
SADD s x y z
SCARD s
DEL greeting
EXISTS greeting
DBSIZE
";

#[test]
fn redis_server_answering_redis_cli() {
    let server = require("redis-server", "redis-server");
    let cli = require("redis-cli", "redis-tools");
    let sh = require("sh", "dash");
    let out = same_in_every_mode_with("redis-server + redis-cli", |mode| {
        // The server runs under the same mode as the client and lives for
        // this one run.
        let redis = Redis::start(&server, mode);
        let port = redis.port;
        let script = format!(
            "printf '%s' \"$SESSION\" | {cli} -p {port} && {cli} -p {port} -r 200 INCR many >/dev/null && \
             {cli} -p {port} GET many && {cli} -p {port} SET big \"$(head -c 100000 /dev/zero | tr '\\0' x)\" && \
             {cli} -p {port} STRLEN big",
            cli = cli.display()
        );
        let mut c = Command::new(&sh);
        c.args(["-c", &script]).env("SESSION", REDIS_SESSION);
        (c, redis)
    });
    assert!(
        out.starts_with("OK\nOK\nhello\n1\n42\n4\na\nb\nc\nd\n2\nfield1\nv1\nfield2\nv2\n3\n3\n1\n0\n"),
        "{out}"
    );
    assert!(out.ends_with("200\nOK\n100000\n"), "{out}");
}
