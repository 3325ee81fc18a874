#!/usr/bin/env python3
"""Issue 5's preload rows for `make bench`, run by benches/driver.py as two
systems: `preload_rows.py JOB preload` (the program under LD_PRELOAD of
libgreenrt_preload.so: the table's greenrt column) and `preload_rows.py JOB
plain` (the same program without it). Each prints `{"name","system","value",
"runs","note"}` JSON lines, the median of BENCH_PRELOAD_RUNS processes
(default 3).

Jobs:
  rw     cdylib-tests/bench_rw.c (built by run.sh with cc -O2): a 1-byte
         write+read on a socketpair that is always ready; rows hook_rw_auto
         (GREENRT_HOOKS=auto, the pass-through path) and hook_rw_always (the
         cooperative path), in ns per call (half a write+read).
  redis  redis-server (--save '' --appendonly no, a free 127.0.0.1 port) under
         the preload or not, redis-benchmark -t set,get -n N -c 50 -P 1
         against it (server and client on different CPUs when taskset and
         two CPUs allow); rows redis_set, redis_get in requests/s.

Environment: BENCH_PRELOAD (the .so), BENCH_RW (the bench_rw binary),
BENCH_PRELOAD_RUNS, BENCH_REDIS_N (requests per test, default 200000).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
SO = os.environ.get("BENCH_PRELOAD") or os.path.join(TARGET, "release", "libgreenrt_preload.so")
BENCH_RW = os.environ.get("BENCH_RW") or os.path.join(ROOT, "target", "bench", "bench_rw")
RUNS = max(1, int(os.environ.get("BENCH_PRELOAD_RUNS", "3")))
REDIS_N = int(os.environ.get("BENCH_REDIS_N", "200000"))
RW_N = 100000  # rounds per timed run of bench_rw (9 runs per process)


def emit(name, system, value=None, runs=None, note="", unavailable=None):
    rec = {"name": name, "system": system}
    if unavailable:
        rec["unavailable"] = unavailable
    else:
        rec.update(value=value, runs=runs or [], note=note)
    print(json.dumps(rec), flush=True)


def median(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]


def env_for(preload, hooks=None):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = SO
    if hooks:
        env["GREENRT_HOOKS"] = hooks
    return env


def rw(system):
    names = {"hook_rw_auto": "auto", "hook_rw_always": "always"}
    if not os.access(BENCH_RW, os.X_OK):
        for n in names:
            emit(n, system, unavailable=f"bench_rw not built ({BENCH_RW}; see run.sh)")
        return
    preload = system == "preload"
    if preload and not os.path.exists(SO):
        for n in names:
            emit(n, system, unavailable=f"preload not built ({SO})")
        return

    def measure(hooks):
        sock, pipe = [], []
        for _ in range(RUNS):
            out = subprocess.run([BENCH_RW, str(RW_N)], env=env_for(preload, hooks),
                                 capture_output=True, text=True, timeout=120, check=True).stdout
            sock.append(float(re.search(r"socketpair ([0-9.]+)", out).group(1)) / 2)
            pipe.append(float(re.search(r"pipe ([0-9.]+)", out).group(1)) / 2)
        return sock, pipe

    plain = None if preload else measure(None)
    for name, hooks in names.items():
        sock, pipe = measure(hooks) if preload else plain
        what = f"LD_PRELOAD, GREENRT_HOOKS={hooks}" if preload else "no preload"
        emit(name, system, median(sock), sock,
             f"{what}: ns per call (half a 1-byte write+read on a ready socketpair; pipe "
             f"{median(pipe):.1f}), median of {RUNS} processes x 9 x {RW_N:,} rounds")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, p, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def pins():
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") and len(cpus) >= 2:
        return (["taskset", "-c", str(cpus[0])], ["taskset", "-c", str(cpus[1])],
                f"server on CPU {cpus[0]}, redis-benchmark on CPU {cpus[1]}")
    return [], [], "unpinned"


def redis_once(preload, srv_pin, cl_pin):
    port = free_port()
    argv = [*srv_pin, "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
    p = subprocess.Popen(argv, env=env_for(preload), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        if not wait_ready(port, p):
            raise RuntimeError(f"redis-server did not answer PING (exit {p.poll()})")
        out = subprocess.run([*cl_pin, "redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
                              "-q", "-t", "set,get", "-n", str(REDIS_N), "-c", "50", "-P", "1",
                              "--csv"], capture_output=True, text=True, timeout=300).stdout
        rates = {m.group(1): float(m.group(2))
                 for m in re.finditer(r'^"(SET|GET)","([0-9.]+)"', out, re.M)}
        if set(rates) != {"SET", "GET"}:
            raise RuntimeError(f"no rates in redis-benchmark output: {out.strip()[-150:]}")
        if p.poll() is not None:
            raise RuntimeError(f"redis-server died (exit {p.returncode})")
        return rates
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)


def redis(system):
    preload = system == "preload"
    why = None
    if not (shutil.which("redis-server") and shutil.which("redis-benchmark")):
        why = "redis-server/redis-benchmark not installed (run.sh installs redis-server, " \
              "redis-tools when root)"
    elif preload and not os.path.exists(SO):
        why = f"preload not built ({SO})"
    if why:
        for n in ("redis_set", "redis_get"):
            emit(n, system, unavailable=why)
        return
    srv_pin, cl_pin, pin_note = pins()
    ver = subprocess.run(["redis-server", "--version"], capture_output=True,
                         text=True).stdout.split()[2].removeprefix("v=")
    runs = [redis_once(preload, srv_pin, cl_pin) for _ in range(RUNS)]
    for cmd in ("SET", "GET"):
        xs = [r[cmd] for r in runs]
        emit(f"redis_{cmd.lower()}", system, median(xs), xs,
             f"redis {ver}{' under LD_PRELOAD (GREENRT_HOOKS default)' if preload else ''}; "
             f"redis-benchmark -t {cmd.lower()} -n {REDIS_N} -c 50 -P 1, median of {RUNS}; "
             f"{pin_note}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("rw", "redis") \
            or sys.argv[2] not in ("preload", "plain"):
        sys.exit("usage: preload_rows.py rw|redis preload|plain")
    {"rw": rw, "redis": redis}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
