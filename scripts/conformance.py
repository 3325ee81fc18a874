#!/usr/bin/env python3
"""CPython's stdlib tests, natively and under the preload, test by test.

Each test module runs three times: plainly (the oracle), and under
libgreenrt_preload.so with GREENRT_HOOKS=auto and with always. Every test
whose outcome under the preload differs from the plain run is a defect,
unless conformance/known-differences.txt lists it (with its reason):

    # test id                                   modes        reason
    test.test_x.Class.test_y                    always       why it differs

Usage:
    python3 scripts/conformance.py [--fast] [--lib PATH] [--timeout S] [MODULE ...]

--fast runs the subset `make test` runs; no modules: the full list.
Exits 0 when nothing unlisted differs; 1 with a report otherwise; 2 when
the setup is wrong (no preload library, no test package).
"""

import argparse
import json
import os
import subprocess
import sys

FULL = [
    "test.test_socket", "test.test_select", "test.test_poll", "test.test_selectors",
    "test.test_subprocess", "test.test_fcntl", "test.test_epoll", "test.test_signal",
    "test.test_httplib", "test.test_urllib2_localnet", "test.test_wait3", "test.test_wait4",
    "test.test_time", "test.test_socketserver", "test.test_threading", "test.test_queue",
]
FAST = [
    "test.test_signal", "test.test_socketserver", "test.test_select", "test.test_poll",
    "test.test_selectors", "test.test_epoll", "test.test_fcntl", "test.test_wait3", "test.test_wait4",
]
MODES = ["plain", "auto", "always"]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUNNER = os.path.join(ROOT, "conformance", "runner.py")
MANIFEST = os.path.join(ROOT, "conformance", "known-differences.txt")


def load_manifest(path):
    """{test id: (set of modes, reason)}; modes "any" means auto and always."""
    known = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
            if not line:
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                sys.exit(f"{path}:{n}: expected 'test-id modes reason'")
            tid, modes, reason = parts
            ms = {"auto", "always"} if modes == "any" else set(modes.split(","))
            if not ms <= {"auto", "always"}:
                sys.exit(f"{path}:{n}: modes are auto, always or any, not {modes!r}")
            known[tid] = (ms, reason)
    return known


def run_module(module, mode, lib, timeout):
    """{test id: outcome} for one module in one mode; tests that never
    reported (the run hung or crashed) are "missing"."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if mode != "plain":
        env["LD_PRELOAD"] = lib
        env["GREENRT_HOOKS"] = mode
    try:
        p = subprocess.run([sys.executable, RUNNER, module], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout,
                           start_new_session=True)
        out, status = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out, status = e.stdout or b"", "timeout"
    results = {}
    for line in out.decode(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        # A test may print to stdout itself (a bare number parses as JSON).
        if isinstance(rec, dict) and "id" in rec and "outcome" in rec:
            results[rec["id"]] = rec["outcome"]
    return results, status


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--lib", default=os.path.join(ROOT, "target", "debug", "libgreenrt_preload.so"))
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("modules", nargs="*")
    args = ap.parse_args()
    modules = args.modules or (FAST if args.fast else FULL)
    if not os.path.exists(args.lib):
        print(f"conformance: no preload library at {args.lib} (make preload)", file=sys.stderr)
        return 2
    try:
        import test.support  # noqa: F401
    except ImportError:
        print("conformance: this Python has no stdlib test package "
              "(Debian: apt-get install libpython3-testsuite)", file=sys.stderr)
        return 2
    known = load_manifest(MANIFEST)
    used = set()
    problems = []
    for module in modules:
        plain, pstatus = run_module(module, "plain", args.lib, args.timeout)
        counts = {}
        for mode in ("auto", "always"):
            got, status = run_module(module, mode, args.lib, args.timeout)
            diffs = 0
            for tid in sorted(set(plain) | set(got)):
                a, b = plain.get(tid, "missing"), got.get(tid, "missing")
                if a == b:
                    continue
                entry = known.get(tid)
                if entry and mode in entry[0]:
                    used.add(tid)
                    continue
                diffs += 1
                problems.append(f"{module} [{mode}] {tid}: plain {a}, under the preload {b}")
            if status == "timeout":
                problems.append(f"{module} [{mode}]: timed out after {args.timeout:.0f} s")
            counts[mode] = diffs
        print(f"{module}: {len(plain)} tests; unlisted differences: auto {counts['auto']}, "
              f"always {counts['always']}" + ("" if pstatus != "timeout" else " (the plain run timed out)"))
    for p in problems:
        print("  " + p)
    if problems:
        print(f"conformance: {len(problems)} difference(s) not in {os.path.relpath(MANIFEST, ROOT)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
