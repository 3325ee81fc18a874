#!/usr/bin/env python3
"""Runs every benchmark row on greenrt and its peers, prints one table and
writes target/bench/results.jsonl (one JSON object per row).

Called by benches/run.sh, which builds the Rust runner and the gevent venv
first. To add a row: give a runner (Rust: a job in benches/src/*_rows.rs;
Python: a job in gevent_bench.py; anything else: a System below) that
prints `{"name","system","value","runs","note"}` lines, and append a Row
to ROWS. Nothing else changes: the table, ratios, goals and JSON follow.

Environment: BENCH_RUNS (timed runs per figure, default 7), BENCH_ONLY
(comma-separated row names to run), BENCH_BIN (the Rust runner),
BENCH_PYTHON (python with gevent), BENCH_SKIP (lines "system:reason" of
systems to skip, e.g. may when it does not build), BENCH_SETUP_NOTES (lines the
setup wants printed under the table).
"""

import json
import shutil
import os
import subprocess
import sys
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
JOB_TIMEOUT = 240  # seconds for one (job, system) process


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
    "gevent": System(
        "gevent",
        lambda job: [PYTHON, os.path.join(HERE, "gevent_bench.py"), *job.split()],
        gevent_missing,
    ),
}
# Table columns, in order (greenrt first; the others are peers).
COLUMNS = ["greenrt", "raw", "std", "tokio", "may", "gevent"]


# ===== goals =====

@dataclass(frozen=True)
class Goal:
    """A target printed beside a row (never an assertion). `check` gets the
    row's values and returns True/False, or None when it cannot tell."""
    text: str
    check: Optional[Callable[[dict], Optional[bool]]] = None


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


# ===== rows =====

PIN_CPU0 = ("taskset", "-c", "0") if shutil.which("taskset") else ()

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


# The 1M row: every system starts the same count (BENCH_SLEEPERS overrides
# it, e.g. on a small machine); greenrt and may start fewer when
# vm.max_map_count does not allow 1M stacks, and say so. One run is ~10 s
# for greenrt, ~30 s and 8 GiB for may and gevent: greenrt and tokio get 3
# runs (median), the slow peers one.
SLEEPERS_N = os.environ.get("BENCH_SLEEPERS", "1000000")
SLEEPERS = {s: f"sleepers {SLEEPERS_N}" for s in ("greenrt", "tokio", "may", "gevent")}
SLEEPERS_REPEAT = {"greenrt": 3, "tokio": 3}

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
            key = (system, job, row.prefix)
            if key not in cache:
                cache[key] = run_job(system, job, skip, row.repeat.get(system, 1), row.prefix)
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
        results.append({
            "name": row.name,
            "title": row.title,
            "unit": row.unit,
            "values": values,
            "goal": row.goal.text,
            "goal_met": met,
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
        met = r["goal_met"]
        mark = "" if met is None else (" [met]" if met else " [NOT met]")
        cells.append(r["goal"] + mark if r["goal"] != NO_GOAL.text else "-")
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
    print()
    print(show(header))
    print(show(["-" * w for w in widths]))
    for cells in lines:
        print(show(cells))
    notes = []
    for r in results:
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
