#!/usr/bin/env bash
# `make bench`: builds the Rust runner (greenrt, raw corosensei, tokio,
# may) in release mode, puts gevent in a venv under target/bench/venv,
# raises vm.max_map_count for the 1M-greenlet row when it can, then runs
# benches/driver.py, which prints one table on stdout and writes
# target/bench/results.jsonl. Progress and build output go to stderr.
#
# It also builds benches/c/epoll_echo.c (cc -O2) and installs wrk (apt-get,
# when root and missing) for the network rows, and for issue 5's preload
# rows the release preload, benches/c/capi_echo.c, cdylib-tests/bench_rw.c
# and redis-server + redis-tools (apt-get, when root and missing).
#
# Environment: BENCH_RUNS (timed runs per figure, default 7), BENCH_ONLY
# (comma-separated row names), BENCH_NET_RUNS / BENCH_NET_SECS (network
# rows: runs per figure, default 5, and seconds each, default 3), PYTHON
# (interpreter for the venv and the driver, default python3).
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
# --- the C epoll echo server: the echo rows' limit ---------------------------
cecho=$OUT/epoll_echo
if ! command -v cc >/dev/null; then
    skip+=("c_epoll:no C compiler (cc)")
elif ! cc -O2 -Wall -o "$cecho" benches/c/epoll_echo.c 2>"$OUT/epoll_echo.log"; then
    cat "$OUT/epoll_echo.log" >&2
    skip+=("c_epoll:cc -O2 benches/c/epoll_echo.c failed (see $OUT/epoll_echo.log)")
fi

# --- issue 5's preload rows: the release preload, the C API echo, bench_rw,
# redis (Debian: redis-server, redis-tools) -----------------------------------
preload=${CARGO_TARGET_DIR:-target}/release/libgreenrt_preload.so
capi=$OUT/capi_echo
rwbin=$OUT/bench_rw
echo "bench: building greenrt-preload (release)..." >&2
if ! cargo build --release -p greenrt-preload >"$OUT/preload-build.log" 2>&1; then
    cat "$OUT/preload-build.log" >&2
    skip+=("preload:cargo build --release -p greenrt-preload failed (see $OUT/preload-build.log)")
    skip+=("c_capi:the preload does not build")
elif command -v cc >/dev/null; then
    libdir=$(cd "$(dirname "$preload")" && pwd)
    cc -O2 -Wall -Iinclude -o "$capi" benches/c/capi_echo.c -L"$libdir" -lgreenrt_preload \
        -Wl,-rpath,"$libdir" 2>"$OUT/capi_echo.log" \
        || { cat "$OUT/capi_echo.log" >&2; skip+=("c_capi:cc benches/c/capi_echo.c failed (see $OUT/capi_echo.log)"); }
fi
command -v cc >/dev/null && ! cc -O2 -o "$rwbin" cdylib-tests/bench_rw.c 2>"$OUT/bench_rw.log" \
    && cat "$OUT/bench_rw.log" >&2
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bench: installing redis-server, redis-tools with apt-get..." >&2
        { apt-get install -y -q redis-server redis-tools \
            || { apt-get update -q && apt-get install -y -q redis-server redis-tools; }; } \
            >>"$OUT/apt.log" 2>&1
    fi
fi

# --- wrk for the HTTP rows (Debian package) -----------------------------------
if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bench: installing wrk with apt-get..." >&2
        { apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }; } \
            >"$OUT/apt.log" 2>&1
    fi
    command -v wrk >/dev/null || notes+=("wrk is missing and could not be installed (not root, or apt-get failed: $OUT/apt.log): the HTTP rows are unavailable")
fi
if command -v wrk >/dev/null; then
    notes+=("$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2) (-t1) for the HTTP rows; greenrt-bench loadgen (one thread, epoll) for the echo rows")
fi
command -v taskset >/dev/null || notes+=("no taskset (util-linux): network rows run unpinned")

lockver() { awk -v n="$1" '$0=="name = \""n"\"" {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock; }
notes+=("tokio $(lockver tokio) (current_thread), may $(lockver may) (1 worker), corosensei $(lockver corosensei), hyper $(lockver hyper) + hyper-util $(lockver hyper-util); $(nproc) cores")

setup_notes=$(printf '%s\n' "${notes[@]}")
skips=$(printf '%s\n' "${skip[@]}")
BENCH_BIN="$bin" BENCH_C_ECHO="$cecho" BENCH_C_CAPI="$capi" BENCH_RW="$rwbin" \
    BENCH_PRELOAD="$preload" BENCH_PYTHON="$VENV/bin/python" BENCH_SKIP="$skips" \
    BENCH_SETUP_NOTES="$setup_notes" exec "$PY" benches/driver.py
