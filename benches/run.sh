#!/usr/bin/env bash
# `make bench`: builds the Rust runner (greenrt, raw corosensei, tokio,
# may) in release mode, puts gevent in a venv under target/bench/venv,
# raises vm.max_map_count for the 1M-greenlet row when it can, then runs
# benches/driver.py, which prints one table on stdout and writes
# target/bench/results.jsonl. Progress and build output go to stderr.
#
# Environment: BENCH_RUNS (timed runs per figure, default 7), BENCH_ONLY
# (comma-separated row names), PYTHON (interpreter for the venv and the
# driver, default python3).
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUT=target/bench
VENV=$OUT/venv
mkdir -p "$OUT"
notes=()
skip=()

# --- vm.max_map_count: each greenlet stack is 2 mappings ---------------
want=2200000
cur=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 65530)
if [ "$cur" -ge "$want" ]; then
    notes+=("vm.max_map_count=$cur (enough for 1M stacks)")
elif [ "$(id -u)" = 0 ] && err=$(sysctl -w vm.max_map_count=$want 2>&1 >/dev/null) \
        && [ "$(cat /proc/sys/vm/max_map_count)" -ge "$want" ]; then
    notes+=("vm.max_map_count raised from $cur to $want (sysctl -w)")
else
    why=${err:-"not root"}
    notes+=("vm.max_map_count=$cur and raising it to $want failed (${why}): the 1M rows of greenrt and may run as many as fit (see their N)")
fi

# --- the Rust runner -----------------------------------------------------
build() {
    if cargo build --release -p greenrt-benches "$@" >"$OUT/build.log" 2>&1; then
        grep -E '^ *Finished' "$OUT/build.log" >&2
    else
        cat "$OUT/build.log" >&2
        return 1
    fi
}
echo "bench: building greenrt-benches (release)..." >&2
if ! build; then
    # Only a failure inside may (or its own dependencies) is worth a retry
    # without it; anything else is reported as is.
    if ! grep -qE 'could not compile `(may|generator|may_queue)' "$OUT/build.log"; then
        echo "bench: the benchmark runner does not build" >&2
        exit 1
    fi
    reason=$(grep -m1 -E 'could not compile `(may|generator|may_queue)' "$OUT/build.log" | cut -c1-160)
    echo "bench: may does not build; retrying without it" >&2
    if build --no-default-features; then
        skip+=("may:build failed (${reason:-see $OUT/build.log})")
    else
        echo "bench: the benchmark runner does not build" >&2
        exit 1
    fi
fi
bin=${CARGO_TARGET_DIR:-target}/release/greenrt-bench

# --- gevent in a venv -------------------------------------------------------
if ! "$VENV/bin/python" -c 'import gevent' 2>/dev/null; then
    echo "bench: installing gevent into $VENV..." >&2
    if ! { "$PY" -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check gevent; } >&2 2>"$OUT/pip.log"; then
        cat "$OUT/pip.log" >&2
        skip+=("gevent:pip install gevent failed (see $OUT/pip.log)")
    fi
fi
if gv=$("$VENV/bin/python" -c 'import gevent, sys; print(gevent.__version__, "on Python", sys.version.split()[0])' 2>/dev/null); then
    notes+=("gevent $gv")
fi
lockver() { awk -v n="$1" '$0=="name = \""n"\"" {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock; }
notes+=("tokio $(lockver tokio) (current_thread), may $(lockver may) (1 worker), corosensei $(lockver corosensei); $(nproc) cores")

setup_notes=$(printf '%s\n' "${notes[@]}")
skips=$(printf '%s\n' "${skip[@]}")
BENCH_BIN="$bin" BENCH_PYTHON="$VENV/bin/python" BENCH_SKIP="$skips" \
    BENCH_SETUP_NOTES="$setup_notes" exec "$PY" benches/driver.py
