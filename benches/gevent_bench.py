"""gevent's side of `make bench`: `python gevent_bench.py JOB [COUNT]`.

Prints the same JSON lines as the Rust runners (see benches/src/common.rs):
{"name","system","value","runs","note"}. Run with the venv's python that
benches/run.sh creates (it pip-installs gevent there).
"""

import json
import os
import statistics
import sys
import time

import gevent
import gevent.lock
import gevent.queue
import gevent.subprocess

SYS = "gevent"
RUNS = int(os.environ.get("BENCH_RUNS", "7"))


def emit(name, value, runs, note):
    print(json.dumps({"name": name, "system": SYS, "value": value,
                      "runs": runs, "note": note}), flush=True)


def bench(f):
    """One warm-up run, then RUNS timed runs; returns (median, runs)."""
    f()
    runs = [f() for _ in range(RUNS)]
    return statistics.median(runs), runs


def ns_per(t0, ops):
    return (time.perf_counter_ns() - t0) / ops


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def switch():
    n = 50_000

    def loop():
        for _ in range(n):
            gevent.sleep(0)

    def run():
        t0 = time.perf_counter_ns()
        gevent.joinall([gevent.spawn(loop), gevent.spawn(loop)])
        return ns_per(t0, 2 * n)

    v, runs = bench(run)
    emit("switch", v, runs, f"2 greenlets x {n} gevent.sleep(0)")


def spawn():
    n = 100_000

    def run():
        t0 = time.perf_counter_ns()
        gs = [gevent.spawn(int, i) for i in range(n)]
        gevent.joinall(gs)
        return ns_per(t0, n)

    v, runs = bench(run)
    emit("spawn_join", v, runs, f"N={n}, spawn + joinall")


def queue():
    n = 50_000

    def run():
        q1, q2 = gevent.queue.Queue(), gevent.queue.Queue()

        def echo():
            while True:
                x = q1.get()
                if x is None:
                    return
                q2.put(x)

        def ping():
            for i in range(n):
                q1.put(i)
                q2.get()
            q1.put(None)

        t0 = time.perf_counter_ns()
        gevent.joinall([gevent.spawn(echo), gevent.spawn(ping)])
        return ns_per(t0, n)

    v, runs = bench(run)
    emit("queue_pingpong", v, runs, f"{n} round trips, 2 greenlets, 2 queue.Queue()")


def semaphore():
    n = 300_000

    def run():
        s = gevent.lock.Semaphore(1)
        t0 = time.perf_counter_ns()
        for _ in range(n):
            s.acquire()
            s.release()
        return ns_per(t0, n)

    v, runs = bench(run)
    emit("semaphore", v, runs, "lock.Semaphore acquire() + release()")


def timeout():
    n = 200_000

    def run():
        t0 = time.perf_counter_ns()
        for _ in range(n):
            gevent.Timeout.start_new(10).cancel()
        return ns_per(t0, n)

    v, runs = bench(run)
    emit("timeout", v, runs, "Timeout.start_new(10).cancel()")


def threadpool():
    n = 5_000
    pool = gevent.get_hub().threadpool

    def run():
        t0 = time.perf_counter_ns()
        for i in range(n):
            pool.apply(abs, (i,))
        return ns_per(t0, n) / 1000.0

    v, runs = bench(run)
    emit("threadpool_apply", v, runs,
         f"{n} x hub.threadpool.apply (maxsize {pool.maxsize})")


def subprocess_():
    n = 300

    def run():
        t0 = time.perf_counter_ns()
        for _ in range(n):
            assert gevent.subprocess.call(["true"]) == 0
        return n / ((time.perf_counter_ns() - t0) / 1e9)

    v, runs = bench(run)
    emit("subprocess", v, runs, f'{n} x gevent.subprocess.call(["true"])')


def sleepers(n):
    started = [0]

    def sleeper():
        started[0] += 1
        gevent.sleep(30)

    gevent.sleep(0)
    rss0 = rss_kib()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        gevent.spawn(sleeper)
    spawned = time.perf_counter_ns() - t0
    while started[0] < n:
        gevent.sleep(0)
    per = ns_per(t0, n)
    rss1 = rss_kib()
    emit("sleepers_spawn", per, [per], f"N={n}; spawn alone {spawned / n:.0f} ns")
    kib = max(rss1 - rss0, 0) / n
    emit("sleepers_rss", kib, [kib], f"N={n}, VmRSS {rss0} -> {rss1} KiB")
    sys.stdout.flush()
    os._exit(0)


def listening(server):
    host, port = server.address[:2]
    print(f"LISTEN {host}:{port}", flush=True)


def serve_echo():
    """The echo rows' server: gevent.server.StreamServer, recv + sendall
    with a 16 KiB buffer, TCP_NODELAY (as every server in the row)."""
    import socket
    from gevent.server import StreamServer

    def echo(sock, _addr):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        recv, sendall = sock.recv, sock.sendall
        while True:
            data = recv(16384)
            if not data:
                break
            sendall(data)

    server = StreamServer(("127.0.0.1", 0), echo, backlog=4096)
    server.start()
    listening(server)
    server.serve_forever()


def serve_http():
    """The HTTP row's server: gevent.pywsgi.WSGIServer with a tiny WSGI
    app, TCP_NODELAY set on every connection (pywsgi leaves Nagle on and
    would pay ~40 ms per response otherwise) and the access log off."""
    import socket
    from gevent.pywsgi import WSGIHandler, WSGIServer

    body = b"Hello, World!\n"

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    class NoDelayHandler(WSGIHandler):
        def handle(self):
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return super().handle()

    server = WSGIServer(("127.0.0.1", 0), app, handler_class=NoDelayHandler, log=None,
                        backlog=4096)
    server.start()
    listening(server)
    server.serve_forever()


JOBS = {
    "switch": switch,
    "spawn": spawn,
    "queue": queue,
    "semaphore": semaphore,
    "timeout": timeout,
    "threadpool": threadpool,
    "subprocess": subprocess_,
    "serve-echo": serve_echo,
    "serve-http": serve_http,
}


def main():
    if len(sys.argv) < 2 or (sys.argv[1] not in JOBS and sys.argv[1] != "sleepers"):
        sys.exit("usage: gevent_bench.py %s|sleepers [COUNT]" % "|".join(JOBS))
    if sys.argv[1] == "sleepers":
        sleepers(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
    else:
        JOBS[sys.argv[1]]()


if __name__ == "__main__":
    main()
