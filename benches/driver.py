#!/usr/bin/env python3
"""Runs every benchmark row on greenrt and its peers, prints one table and
writes target/bench/results.jsonl (one JSON object per row).

Called by benches/run.sh, which builds the Rust runner and the gevent venv
first. To add a row: give a runner (Rust: a job in benches/src/*_rows.rs;
Python: a job in gevent_bench.py; anything else: a System below) that
prints `{"name","system","value","runs","note"}` lines, and append a Row
to ROWS. Nothing else changes: the table, ratios, goals and JSON follow.

Network rows (Row.net set) run differently: for each system the driver
starts its server (`greenrt-bench SYSTEM serve-echo|serve-http WORKERS`,
gevent_bench.py, or the C epoll echo), which prints `LISTEN ADDR`, then
load-tests it from another process pinned to another CPU (`greenrt-bench
loadgen echo ...` or wrk), kills the server's process group, and repeats
BENCH_NET_RUNS times (default 5; BENCH_NET_SECS seconds each, default 3,
after a 1 s warm-up), a round of every system at a time, keeping the
median; a run that other load disturbed is retried (see `disturbed`).

Environment: BENCH_RUNS (timed runs per figure, default 7), BENCH_ONLY
(comma-separated row names to run), BENCH_BIN (the Rust runner),
BENCH_PYTHON (python with gevent), BENCH_SKIP (lines "system:reason" of
systems to skip, e.g. may when it does not build), BENCH_SETUP_NOTES (lines the
setup wants printed under the table), BENCH_C_ECHO (the C epoll echo server
run.sh builds), BENCH_NET_RUNS, BENCH_NET_SECS (network rows, see above).
"""

import ctypes
import json
import shutil
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
OUT_DIR = os.path.join(ROOT, "target", "bench")
RESULTS = os.path.join(OUT_DIR, "results.jsonl")
BIN = os.environ.get("BENCH_BIN") or os.path.join(TARGET, "release", "greenrt-bench")
PYTHON = os.environ.get("BENCH_PYTHON") or os.path.join(OUT_DIR, "venv", "bin", "python")
C_ECHO = os.environ.get("BENCH_C_ECHO") or os.path.join(OUT_DIR, "epoll_echo")
C_CAPI = os.environ.get("BENCH_C_CAPI") or os.path.join(OUT_DIR, "capi_echo")
PRELOAD = os.environ.get("BENCH_PRELOAD") or os.path.join(TARGET, "release",
                                                          "libgreenrt_preload.so")
JOB_TIMEOUT = 240  # seconds for one (job, system) process
NET_RUNS = max(1, int(os.environ.get("BENCH_NET_RUNS", "5")))
NET_SECS = max(1, int(float(os.environ.get("BENCH_NET_SECS", "3"))))
NET_WARMUP = 1  # seconds of load before the measured window


# ===== systems: how to run a job on each =====

@dataclass
class System:
    name: str
    argv: Callable[[str], list]  # job -> command line
    why_missing: Callable[[], Optional[str]] = lambda: None


def rust(name):
    return System(
        name,
        lambda job: [BIN, name, *job.split()],
        lambda: None if os.access(BIN, os.X_OK) else f"runner not built ({BIN})",
    )


def gevent_missing():
    if not os.access(PYTHON, os.X_OK):
        return f"no python with gevent at {PYTHON}"
    return None


SYSTEMS = {
    "greenrt": rust("greenrt"),
    "raw": rust("raw"),
    "tokio": rust("tokio"),
    "may": rust("may"),
    "std": rust("std"),
    "hyper": rust("hyper"),
    # The echo rows' limit: benches/c/epoll_echo.c, built by run.sh.
    "c_epoll": System(
        "c_epoll",
        lambda job: [C_ECHO],
        lambda: None if os.access(C_ECHO, os.X_OK) else f"not built ({C_ECHO}; see run.sh)",
    ),
    # Issue 5's preload rows (benches/preload_rows.py): the same program
    # under the preload (shown in the greenrt column) and without it.
    "preload": System("preload", lambda job: [sys.executable, os.path.join(HERE, "preload_rows.py"),
                                              job, "preload"]),
    "plain": System("plain", lambda job: [sys.executable, os.path.join(HERE, "preload_rows.py"),
                                          job, "plain"]),
    # benches/c/capi_echo.c (C API + blocking calls), built by run.sh, under the preload.
    "c_capi": System(
        "c_capi",
        lambda job: ["env", f"LD_PRELOAD={PRELOAD}", C_CAPI],
        lambda: None if os.access(C_CAPI, os.X_OK) else f"not built ({C_CAPI}; see run.sh)",
    ),
    "gevent": System(
        "gevent",
        lambda job: [PYTHON, os.path.join(HERE, "gevent_bench.py"), *job.split()],
        gevent_missing,
    ),
}
# Table columns, in order (greenrt first; the others are peers).
COLUMNS = ["greenrt", "plain", "raw", "c_epoll", "std", "tokio", "hyper", "may", "gevent"]


# ===== goals =====

@dataclass(frozen=True)
class Goal:
    """A target printed beside a row (never an assertion). `check` gets the
    row's values and returns True/False, or None when it cannot tell."""
    text: str
    check: Optional[Callable[[dict], Optional[bool]]] = None
    parts: tuple = ()  # for all_of: each part is shown with its own mark


def all_of(*goals):
    """Every one of `goals` (each printed with its own [met] mark)."""
    def check(v):
        r = [g.check(v) for g in goals]
        return None if None in r else all(r)
    return Goal(", ".join(g.text for g in goals), check, goals)


def at_most_times(peer, factor):
    """greenrt's figure at most `factor` times `peer`'s (lower is better)."""
    def check(v):
        if v.get("greenrt") is None or v.get(peer) is None:
            return None
        return v["greenrt"] <= factor * v[peer]
    return Goal(f"greenrt <= {factor:g}x {peer}", check)


def at_least_times(peer, factor):
    """greenrt's figure at least `factor` times `peer`'s (higher is better)."""
    def check(v):
        if v.get("greenrt") is None or v.get(peer) is None:
            return None
        return v["greenrt"] >= factor * v[peer]
    return Goal(f"greenrt >= {factor:g}x {peer}", check)


def at_most(limit, unit):
    def check(v):
        return None if v.get("greenrt") is None else v["greenrt"] <= limit
    return Goal(f"greenrt <= {limit:g} {unit}", check)


NO_GOAL = Goal("no fixed goal")


def added_at_most(peer, limit, unit):
    """greenrt's figure at most `limit` above `peer`'s."""
    def check(v):
        if v.get("greenrt") is None or v.get(peer) is None:
            return None
        return v["greenrt"] - v[peer] <= limit
    return Goal(f"greenrt - {peer} <= {limit:g} {unit}", check)


# ===== rows =====

PIN_CPU0 = ("taskset", "-c", "0") if shutil.which("taskset") else ()


@dataclass(frozen=True)
class Net:
    """A network row: servers load-tested from another process."""
    kind: str         # "echo" (greenrt-bench loadgen) or "http" (wrk)
    conns: int
    workers: int = 1  # server threads (greenrt workers(n), tokio/may workers)


@dataclass
class Row:
    name: str            # key in the runners' output and in results.jsonl
    title: str           # shown in the table
    unit: str
    job: str             # the job each system runs (its argv tail)
    systems: list
    goal: Goal = NO_GOAL
    lower_is_better: bool = True
    show_notes: bool = False  # print the runners' notes under the table
    jobs: dict = field(default_factory=dict)  # per-system job override
    repeat: dict = field(default_factory=dict)  # per-system process runs (default 1)
    source: Optional[str] = None  # the name the runners print, if not `name`
    prefix: tuple = ()  # argv prefix, e.g. PIN_CPU0
    net: Optional[Net] = None  # a network row (see run_net)
    note: Optional[str] = None  # printed under the table
    impl: dict = field(default_factory=dict)  # column -> the SYSTEMS entry that runs it


# The 1M row: every system starts the same count (BENCH_SLEEPERS overrides
# it, e.g. on a small machine); greenrt and may start fewer when
# vm.max_map_count does not allow 1M stacks, and say so. One run is ~10 s
# for greenrt, ~30 s and 8 GiB for may and gevent: greenrt and tokio get 3
# runs (median), the slow peers one.
SLEEPERS_N = os.environ.get("BENCH_SLEEPERS", "1000000")
SLEEPERS = {s: f"sleepers {SLEEPERS_N}" for s in ("greenrt", "tokio", "may", "gevent")}
SLEEPERS_REPEAT = {"greenrt": 3, "tokio": 3}

# Issue 3's network rows: each Net config gives two rows, the throughput
# (what the goals are about) and the server's CPU time per round trip or
# request (user + system, all its threads), which the load generator being
# near its own limit does not hide.
ECHO_PEERS = ["greenrt", "c_epoll", "tokio", "may", "gevent"]
ECHO_GOAL = all_of(at_least_times("tokio", 1.2), at_least_times("c_epoll", 0.95))
HTTP_PEERS = ["greenrt", "hyper", "gevent"]
HTTP_GOAL = all_of(at_least_times("hyper", 1.2), at_least_times("gevent", 10))
ECHO_NOTE = ("the load generator pays the same kernel TCP cost per round trip as a lean server "
             "(on loopback the sender's CPU does both ends' TCP work), so on one CPU it keeps up "
             "with the C loop but not by much: near the top, round trips/s are bounded by both "
             "processes; the server-CPU-per-round-trip row compares the servers alone")
W2_NOTE = ("2 server threads: greenrt StreamServer::workers(2) (SO_REUSEPORT), tokio and hyper "
           "on a multi-thread runtime with 2 workers, may with 2 workers; the one-thread load "
           "generator shares the CPUs with them (unpinned when there are only 2)")


def net_rows(name, title, net, systems, goal, note=None, impl=None):
    per = "round trip" if net.kind == "echo" else "request"
    job = f"serve-{net.kind} {net.workers}"
    impl = impl or {}
    return [
        Row(name, title, "round trips/s" if net.kind == "echo" else "req/s", job, systems, goal,
            lower_is_better=False, show_notes=True, net=net, note=note, impl=impl),
        Row(f"{name}_cpu", f"  server CPU per {per}", "µs", job, systems, net=net, impl=impl),
    ]


NET_ROWS = [
    *net_rows("echo_1000", "echo 512 B, 1000 conns, 1 hub", Net("echo", 1000), ECHO_PEERS,
              ECHO_GOAL, ECHO_NOTE),
    *net_rows("echo_50", "echo 512 B, 50 conns, 1 hub", Net("echo", 50), ECHO_PEERS, ECHO_GOAL),
    *net_rows("http_hello", "HTTP hello, keep-alive, wrk 100 conns, 1 hub", Net("http", 100),
              HTTP_PEERS, HTTP_GOAL),
    *net_rows("echo_1000_w2", "echo 512 B, 1000 conns, 2 workers", Net("echo", 1000, 2),
              ["greenrt", "tokio", "may"], at_least_times("tokio", 1.2), W2_NOTE),
    *net_rows("echo_50_w2", "echo 512 B, 50 conns, 2 workers", Net("echo", 50, 2),
              ["greenrt", "tokio", "may"], at_least_times("tokio", 1.2)),
    *net_rows("http_hello_w2", "HTTP hello, wrk 100 conns, 2 workers", Net("http", 100, 2),
              ["greenrt", "hyper"], at_least_times("hyper", 1.2)),
]

# Issue 5: the preload's cost, each program with and without it.
PRELOAD_IMPL = {"greenrt": "preload"}
CAPI_NOTE = ("greenrt column = benches/c/capi_echo.c: accept loop in the main greenlet, "
             "greenrt_spawn per connection running plain blocking read/write, under the preload")
PRELOAD_ROWS = [
    Row("hook_rw_auto", "hooked read/write, ready fd, HOOKS=auto", "ns/call", "rw",
        ["greenrt", "plain"], added_at_most("plain", 20, "ns"), show_notes=True,
        impl=PRELOAD_IMPL, prefix=PIN_CPU0),
    Row("hook_rw_always", "hooked read/write, ready fd, HOOKS=always", "ns/call", "rw",
        ["greenrt", "plain"], added_at_most("plain", 20, "ns"), show_notes=True,
        impl=PRELOAD_IMPL, prefix=PIN_CPU0),
    Row("redis_set", "redis-benchmark SET, -c 50 -P 1", "req/s", "redis", ["greenrt", "plain"],
        at_least_times("plain", 0.97), lower_is_better=False, show_notes=True,
        impl=PRELOAD_IMPL),
    Row("redis_get", "redis-benchmark GET, -c 50 -P 1", "req/s", "redis", ["greenrt", "plain"],
        at_least_times("plain", 0.97), lower_is_better=False, show_notes=True,
        impl=PRELOAD_IMPL),
    *net_rows("capi_echo_1000", "C API blocking echo, 1000 conns", Net("echo", 1000),
              ["greenrt", "c_epoll"], at_least_times("c_epoll", 0.9), CAPI_NOTE,
              {"greenrt": "c_capi"}),
    *net_rows("capi_echo_50", "C API blocking echo, 50 conns", Net("echo", 50),
              ["greenrt", "c_epoll"], at_least_times("c_epoll", 0.9), impl={"greenrt": "c_capi"}),
]

ROWS = [
    Row("switch", "switch (2 greenlets, yield ping-pong)", "ns/switch", "switch",
        ["greenrt", "raw", "tokio", "may", "gevent"], at_most_times("raw", 2)),
    # The blocking monitor (GREENRT_MONITOR=1) against the same loop with it
    # off, alternating in one process (issue 4: under 5% cost when on).
    Row("switch_monitor", "switch with monitor on", "ns/switch", "switch_monitor",
        ["greenrt"], show_notes=True),
    Row("switch_monitor_cost", "switch: monitor on vs off", "% cost", "switch_monitor",
        ["greenrt"], at_most(5, "%")),
    Row("spawn_join", "spawn + join, N=100k", "ns/greenlet", "spawn",
        ["greenrt", "tokio", "may", "gevent"], at_most_times("tokio", 1)),
    Row("queue_pingpong", "Queue ping-pong (2 unbounded)", "ns/round trip", "queue",
        ["greenrt", "tokio", "may", "gevent"]),
    Row("semaphore", "Semaphore acquire+release", "ns", "semaphore",
        ["greenrt", "tokio", "may", "gevent"]),
    Row("timeout", "Timeout start+cancel", "ns", "timeout",
        ["greenrt", "tokio", "gevent"], show_notes=True),
    Row("threadpool_apply", "ThreadPool apply round trip", "µs", "threadpool",
        ["greenrt", "tokio", "gevent"]),
    # Cross-CPU wake-ups of an idle vCPU dominate the row above on a VM;
    # pinned to one CPU it shows the pool's own cost (needs taskset).
    *([Row("threadpool_apply_1cpu", "ThreadPool apply, pinned to 1 CPU", "µs", "threadpool",
           ["greenrt", "tokio", "gevent"], source="threadpool_apply", prefix=PIN_CPU0)]
      if PIN_CPU0 else []),
    # Spawn + wait of `true`, one at a time (issue 4): greenrt's Command
    # wraps std's fork/exec and waits on a pidfd, so it should keep up with
    # std's blocking status(); gevent.subprocess for reference.
    Row("subprocess", "spawn+wait `true`", "spawns/s", "subprocess",
        ["greenrt", "std", "gevent"], at_least_times("std", 0.9), lower_is_better=False,
        show_notes=True),
    Row("sleepers_spawn", "1M sleepers: spawn+start", "ns/greenlet", "sleepers",
        ["greenrt", "tokio", "may", "gevent"], show_notes=True, jobs=SLEEPERS,
        repeat=SLEEPERS_REPEAT),
    Row("sleepers_rss", "1M sleepers: RSS growth", "KiB/greenlet", "sleepers",
        ["greenrt", "tokio", "may", "gevent"], at_most(8, "KiB"), show_notes=True,
        jobs=SLEEPERS, repeat=SLEEPERS_REPEAT),
    *NET_ROWS,
    *PRELOAD_ROWS,
]


# ===== running =====

def run_job(system, job, skip, repeat=1, prefix=()):
    """Runs one job on one system `repeat` times (separate processes);
    returns {row name: record}, each record from the run whose figure is
    the median, with every run's figure in "runs"."""
    outs = [run_once(system, job, skip, prefix) for _ in range(repeat)]
    if repeat == 1:
        return outs[0]
    merged = {}
    for name in outs[0]:
        recs = [o[name] for o in outs if o.get(name, {}).get("value") is not None]
        if not recs:
            merged[name] = outs[0][name]
            continue
        recs.sort(key=lambda r: r["value"])
        med = dict(recs[(len(recs) - 1) // 2])
        med["runs"] = [r["value"] for r in recs]
        med["note"] = (med.get("note", "") + f"; median of {len(recs)} processes").lstrip("; ")
        merged[name] = med
    return merged


def run_once(system, job, skip, prefix=()):
    """Runs one job on one system; returns {row name: record}."""
    s = SYSTEMS[system]
    if system in skip:
        return {"*": {"unavailable": skip[system]}}
    why = s.why_missing()
    if why:
        return {"*": {"unavailable": why}}
    argv = [*prefix, *s.argv(job)]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=JOB_TIMEOUT,
                           cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"*": {"unavailable": f"timed out after {JOB_TIMEOUT} s"}}
    out = {}
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            out[r["name"]] = r
    if p.returncode != 0 and not out:
        err = [l for l in p.stderr.splitlines() if l.strip()]
        last = err[-1] if err else ""
        for l in err:  # prefer the panic message over the backtrace tail
            if "panicked" in l or "error" in l.lower():
                i = err.index(l)
                last = " ".join(err[i:i + 2])
                break
        return {"*": {"unavailable": f"exit {p.returncode}: {last[:200]}"}}
    print(f"bench: {system:8} {job:18} {time.monotonic() - t0:5.1f} s {' '.join(prefix)}",
          file=sys.stderr, flush=True)
    return out


# ===== network rows =====

def raise_nofile():
    """1000 connections need more than the usual soft limit of 1024 fds in
    the servers and the load generator (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def pinning(workers):
    """(server prefix, load generator prefix, note): the server on its own
    CPU(s), the load generator on the next one, when taskset and enough
    CPUs allow; else both unpinned."""
    cpus = sorted(os.sched_getaffinity(0))
    if not shutil.which("taskset"):
        return (), (), "unpinned (no taskset)"
    if len(cpus) < workers + 1:
        return (), (), f"unpinned: server and load generator share the {len(cpus)} CPUs"
    srv = ",".join(map(str, cpus[:workers]))
    lg = str(cpus[workers])
    return (("taskset", "-c", srv), ("taskset", "-c", lg),
            f"server on CPU {srv}, load generator on CPU {lg}")


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    """In the server's child: SIGKILL it if the driver dies (PR_SET_PDEATHSIG)."""
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def proc_cpu(pid):
    """CPU seconds (user + system, every thread) of process `pid`."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def all_cpu():
    """{pid: CPU seconds} of every process (all threads), from /proc;
    without ksoftirqd, which does the benchmark's own network softirq work
    when it piles up."""
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().startswith("ksoftirqd"):
                        continue
            except OSError:
                continue
            c = proc_cpu(pid)
            if c is not None:
                out[int(pid)] = c
    return out


def other_cpu(before, after, wall, ours):
    """CPU seconds per second that processes other than `ours` used
    between two all_cpu() snapshots (a test suite or build running beside
    the benchmark). Softirq time spent while a CPU was idle belongs to no
    process and is not counted."""
    return sum(c - before.get(pid, 0.0) for pid, c in after.items() if pid not in ours) / wall


def read_listen(p, timeout):
    """Reads the server's `LISTEN ADDR` line; None if it does not come."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = p.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    m = re.match(rb"LISTEN (\S+)", buf)
    return m.group(1).decode() if m else None


def stop_server(p):
    """Kills the server's whole process group and reaps it."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    if p.stdout:
        p.stdout.close()


def run_timed(argv, timeout, server=None):
    """Runs argv; returns (stdout text, CPU seconds it used, exit status,
    CPU share that other processes than it, `server` and this driver took
    meanwhile)."""
    with tempfile.TemporaryFile() as out:
        snap, t0 = all_cpu(), time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=ROOT)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        other = other_cpu(snap, all_cpu(), time.monotonic() - t0, {p.pid, server, os.getpid()})
        out.seek(0)
        return (out.read().decode(errors="replace"), ru.ru_utime + ru.ru_stime, p.returncode,
                other)


def wrk(lg_pin, conns, secs, url):
    return [*lg_pin, "wrk", "-t1", f"-c{conns}", f"-d{secs}s", url]


def net_once(system, net, srv_pin, lg_pin):
    """One server process, one measurement: {"rate", "server_cpu" (CPU
    seconds per second), "loadgen_cpu", "extra"} or {"unavailable"}."""
    argv = [*srv_pin, *SYSTEMS[system].argv(f"serve-{net.kind} {net.workers}")]
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                             cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            addr = read_listen(p, 30)

            def failed(what):
                stop_server(p)
                err.seek(0)
                tail = [l for l in err.read().decode(errors="replace").splitlines() if l.strip()]
                return {"unavailable": f"{what}: {' '.join(tail[-2:])[:200]}".rstrip(": ")}

            if addr is None:
                return failed("the server printed no LISTEN line")
            if net.kind == "echo":
                out, _, rc, other = run_timed([*lg_pin, BIN, "loadgen", "echo", addr,
                                               str(net.conns), str(NET_SECS), str(p.pid)],
                                              NET_SECS + 120, p.pid)
                rec = next((json.loads(l) for l in out.splitlines()
                            if l.startswith('{"name":"loadgen"')), None)
                if rc != 0 or rec is None:
                    return failed(f"load generator exit {rc} ({out.strip()[-150:]})")
                if p.poll() is not None:
                    return failed(f"the server died (exit {p.returncode})")
                extra = f"{rec['closed']} connections closed" if rec["closed"] else ""
                return {"rate": rec["value"], "server_cpu": rec["server_cpu"],
                        "loadgen_cpu": rec["loadgen_cpu"], "other": other, "extra": extra}
            url = f"http://{addr}/"
            run_timed(wrk(lg_pin, net.conns, NET_WARMUP, url), NET_WARMUP + 60)
            cpu0, t0 = proc_cpu(p.pid), time.monotonic()
            out, lg_cpu, rc, other = run_timed(wrk(lg_pin, net.conns, NET_SECS, url),
                                               NET_SECS + 60, p.pid)
            wall, cpu1 = time.monotonic() - t0, proc_cpu(p.pid)
            m = re.search(r"Requests/sec:\s*([0-9.]+)", out)
            if rc != 0 or not m:
                return failed(f"wrk exit {rc} ({out.strip()[-150:]})")
            if p.poll() is not None:
                return failed(f"the server died (exit {p.returncode})")
            extra = []
            for pat in (r"Socket errors:[^\n]*", r"Non-2xx or 3xx responses:[^\n]*"):
                e = re.search(pat, out)
                if e:
                    extra.append(e.group(0).strip())
            srv = (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None
            return {"rate": float(m.group(1)), "server_cpu": srv, "loadgen_cpu": lg_cpu / wall,
                    "other": other, "extra": "; ".join(extra)}
        finally:
            stop_server(p)


# A run where other processes took more than this share of one CPU is
# retried (see disturbed).
OTHER_LOAD_MAX = 0.10


def disturbed(r, pinned):
    """Whether something outside the benchmark took CPU from a run: other
    processes used more than OTHER_LOAD_MAX of a CPU, or neither the
    server nor the load generator kept its CPU busy (pinned: at least one
    of them is the bottleneck and runs flat out when the machine is
    quiet, as every server here does; unpinned: together with the others
    they use 3/4 of the machine at least). Short-lived processes (a test
    suite's children) and other virtual machines on the host show only
    in the second test."""
    if r["other"] > OTHER_LOAD_MAX:
        return True
    srv, lg = r["server_cpu"], r["loadgen_cpu"]
    if srv is None:
        return False
    if pinned:
        return max(srv, lg) < 0.85
    return srv + lg + r["other"] < 0.75 * len(os.sched_getaffinity(0))


def run_net(row, skip):
    """Runs a network row on each of its systems NET_RUNS times, a round
    of every system at a time (the order rotating each round), so that a
    machine whose load drifts hurts every system alike. Returns {system:
    {row name: record, row name + "_cpu": record}}."""
    net, name = row.net, row.name.removesuffix("_cpu")
    results, live = {}, []
    for system in row.systems:
        why = skip.get(system) or SYSTEMS[row.impl.get(system, system)].why_missing()
        if not why and net.kind == "http" and not shutil.which("wrk"):
            why = "wrk not installed (run.sh installs the Debian package when root)"
        if why:
            results[system] = {"*": {"unavailable": why}}
        else:
            live.append(system)
    srv_pin, lg_pin, pin_note = pinning(net.workers)
    t0 = time.monotonic()
    runs = {s: [] for s in live}
    retried = {s: 0 for s in live}
    for i in range(NET_RUNS):
        order = live[i % len(live):] + live[:i % len(live)] if live else []
        for system in order:
            if system in results:
                continue  # failed in an earlier round
            # Retry a disturbed run (twice at most, NET_RUNS times in all
            # per system) and keep the last attempt; the note says so.
            for attempt in range(3):
                r = net_once(row.impl.get(system, system), net, srv_pin, lg_pin)
                if ("unavailable" in r or attempt == 2 or retried[system] >= NET_RUNS
                        or not disturbed(r, bool(srv_pin))):
                    break
                retried[system] += 1
            if "unavailable" in r:
                results[system] = {"*": r}
            else:
                runs[system].append(r)
    if live:
        print(f"bench: {net.kind} {net.conns} conns, {net.workers} worker(s), "
              f"{' '.join(live)}: {time.monotonic() - t0:5.1f} s", file=sys.stderr, flush=True)
    for system in live:
        if system not in results:
            results[system] = summarize_net(net, name, runs[system], retried[system], pin_note)
    return results


def summarize_net(net, name, runs, retried, pin_note):
    """The median run's records for a network row and its CPU row."""
    runs = sorted(runs, key=lambda r: r["rate"])
    med = runs[(len(runs) - 1) // 2]
    per = "round trip" if net.kind == "echo" else "request"
    us = sorted(r["server_cpu"] * 1e6 / r["rate"] for r in runs
                if r["server_cpu"] is not None and r["rate"] > 0)
    lg = "load generator" if net.kind == "echo" else "wrk -t1"
    note = (f"median of {len(runs)} x {NET_SECS} s; server CPU "
            f"{100 * (med['server_cpu'] or 0):.0f}%, {lg} CPU {100 * med['loadgen_cpu']:.0f}%")
    note += f", other processes {100 * max(r['other'] for r in runs):.0f}% at most"
    if retried:
        note += f" ({retried} disturbed run(s) retried)"
    note += f"; {pin_note}"
    if med["extra"]:
        note += f"; {med['extra']}"
    out = {name: {"value": med["rate"], "runs": [r["rate"] for r in runs], "note": note}}
    if us:
        out[name + "_cpu"] = {
            "value": us[(len(us) - 1) // 2], "runs": us,
            "note": f"server CPU seconds (user + system, all threads) per {per}, median"}
    else:
        out[name + "_cpu"] = {"unavailable": "server CPU time unreadable"}
    return out


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def advantage(row, g, p):
    """greenrt's advantage over a peer: >1 means greenrt is better."""
    if g is None or p is None or g <= 0 or p <= 0:
        return None
    return p / g if row.lower_is_better else g / p


def main():
    raise_nofile()
    only = {x for x in os.environ.get("BENCH_ONLY", "").split(",") if x}
    skip = {}
    for item in os.environ.get("BENCH_SKIP", "").splitlines():
        if item:
            name, _, why = item.partition(":")
            skip[name] = why or "skipped"
    rows = [r for r in ROWS if not only or r.name in only]

    cache = {}  # (system, job) -> output of run_job
    results = []
    for row in rows:
        values, notes, ratios, runs = {}, {}, {}, {}
        for system in row.systems:
            job = row.jobs.get(system, row.job)
            key = (system, job, row.prefix, row.net, row.impl.get(system))
            if key not in cache:
                if row.net:
                    for sys_, out in run_net(row, skip).items():
                        cache[(sys_, row.jobs.get(sys_, row.job), row.prefix, row.net,
                               row.impl.get(sys_))] = out
                else:
                    cache[key] = run_job(row.impl.get(system, system), job, skip,
                                         row.repeat.get(system, 1), row.prefix)
            out = cache[key]
            rec = (out.get(row.source or row.name) or out.get("*")
                   or next((r for r in out.values() if r.get("unavailable")), None)
                   or {"unavailable": "runner printed no figure for this row"})
            values[system] = rec.get("value")
            if rec.get("runs"):
                runs[system] = rec["runs"]
            if rec.get("unavailable"):
                notes[system] = "unavailable: " + rec["unavailable"]
            elif rec.get("note"):
                notes[system] = rec["note"]
        for system in row.systems:
            if system != "greenrt":
                ratios[system] = advantage(row, values.get("greenrt"), values.get(system))
        met = row.goal.check(values) if row.goal.check else None
        parts = [{"goal": g.text, "met": g.check(values)} for g in row.goal.parts]
        results.append({
            "name": row.name,
            "title": row.title,
            "unit": row.unit,
            "values": values,
            "goal": row.goal.text,
            "goal_met": met,
            **({"goal_parts": parts} if parts else {}),
            "better": "lower" if row.lower_is_better else "higher",
            "advantage": ratios,
            "notes": notes,
            "runs": runs,
            "row": row,
        })

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(RESULTS, "w") as f:
        for r in results:
            f.write(json.dumps({k: v for k, v in r.items() if k != "row"}) + "\n")
    print_table(results)
    print(f"\nJSON lines: {os.path.relpath(RESULTS, os.getcwd())}")


def print_table(results):
    header = ["benchmark", "unit"] + COLUMNS + ["goal"]
    lines = []
    for r in results:
        row, vals = r["row"], r["values"]
        cells = [row.title, row.unit]
        for c in COLUMNS:
            if c not in row.systems:
                cells.append("")
            elif c == "greenrt":
                cells.append(fmt(vals.get(c)))
            else:
                v, a = vals.get(c), r["advantage"].get(c)
                cells.append(fmt(v) + (f" ({a:.2f}x)" if a is not None else ""))
        def mark(met):
            return "" if met is None else (" [met]" if met else " [NOT met]")
        if r.get("goal_parts"):
            cells.append(", ".join(p["goal"] + mark(p["met"]) for p in r["goal_parts"]))
        else:
            cells.append(r["goal"] + mark(r["goal_met"]) if r["goal"] != NO_GOAL.text else "-")
        lines.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]

    def show(cells):
        out = []
        for i, (c, w) in enumerate(zip(cells, widths)):
            out.append(c.ljust(w) if i < 2 or i == len(cells) - 1 else c.rjust(w))
        return "  ".join(out).rstrip()

    print()
    print("greenrt vs peers (medians; one run of the same machine: compare ratios only)")
    print("(Nx) after a peer's figure = greenrt's advantage: peer/greenrt for lower-is-"
          "better units, so >1 means greenrt is better, <1 means the peer is.")
    print("raw = bare corosensei resume+suspend pair (the switch limit); std = plain std, no runtime.")
    print("plain = the same program without the preload (issue-5 rows; greenrt = under it).")
    print("c_epoll = hand-written single-threaded C epoll echo server (the echo rows' limit); "
          "hyper = hyper 1 on tokio.")
    print()
    print(show(header))
    print(show(["-" * w for w in widths]))
    for cells in lines:
        print(show(cells))
    notes = []
    for r in results:
        if r["row"].note:
            notes.append(f"  {r['name']}: {r['row'].note}")
        for system, n in r["notes"].items():
            if r["row"].show_notes or n.startswith("unavailable"):
                notes.append(f"  {r['name']} / {system}: {n}")
    setup = os.environ.get("BENCH_SETUP_NOTES", "").strip()
    if notes or setup:
        print("\nnotes:")
        for line in setup.splitlines():
            print(f"  {line}")
        seen = set()
        for n in notes:
            if n not in seen:
                seen.add(n)
                print(n)


if __name__ == "__main__":
    main()
