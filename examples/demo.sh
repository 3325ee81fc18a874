#!/usr/bin/env bash
# `make demo` (after `cargo build --release`):
#   1. blocking C code running concurrently in greenlets through the C API
#      (examples/c/demo.c, examples/c/fetch.c), under `greenrt run`;
#   2. an unmodified system program — curl against a local server started
#      here — running unchanged under the launcher;
#   3. the Rust API (examples/demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
CC=${CC:-cc}
rel="$(pwd)/target/release"
greenrt="$rel/greenrt"
[ -x "$greenrt" ] && [ -f "$rel/libgreenrt_preload.so" ] || {
    echo "demo: $greenrt or its library is missing; run '$CARGO build --release' first" >&2
    exit 1
}

echo "== 1. Blocking C code in greenlets (examples/c/demo.c), under greenrt run"
echo
mkdir -p "$rel/c"
for prog in demo fetch; do
    "$CC" -std=gnu11 -O2 -Wall -Iinclude "examples/c/$prog.c" -o "$rel/c/$prog" \
        -L"$rel" -lgreenrt_preload -Wl,-rpath,"$rel"
done
echo "\$ greenrt run -- target/release/c/demo"
"$greenrt" run -- "$rel/c/demo"
echo
echo "\$ greenrt run -- target/release/c/fetch    # 10 local servers, plain blocking sockets"
"$greenrt" run -- "$rel/c/fetch" || echo "demo: fetch reported a problem (exit status $?)"
echo

echo "== 2. An unmodified system program under the launcher: curl against a local server"
echo
if ! command -v curl >/dev/null; then
    echo "curl is not installed; install it with 'apt-get install -y curl' (.ci/run does)."
    echo "Skipping this step."
elif ! command -v python3 >/dev/null; then
    echo "python3 (the local server) is not installed; install it with 'apt-get install -y python3'."
    echo "Skipping this step."
else
    dir=$(mktemp -d)
    server=""
    cleanup() {
        if [ -n "$server" ]; then
            kill "$server" 2>/dev/null || true
            wait "$server" 2>/dev/null || true
            server=""
        fi
        rm -rf "$dir"
    }
    trap cleanup EXIT
    echo "hello from a local server, fetched by an unmodified curl" >"$dir/hello.txt"
    python3 -u -m http.server --bind 127.0.0.1 --directory "$dir" 0 >"$dir/server.log" 2>&1 &
    server=$!
    port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$dir/server.log" | head -n 1)
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "demo: the local server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }
    url="http://localhost:$port/hello.txt"
    echo "\$ greenrt run -- curl -sS $url"
    "$greenrt" run -- curl -sS "$url"
    echo "\$ greenrt run --hooks always -- curl -sS -o /dev/null -w ... $url"
    "$greenrt" run --hooks always -- curl -sS -o /dev/null \
        -w 'HTTP %{http_code}, %{size_download} bytes in %{time_total} s (every hooked call through the hub)\n' "$url"
    cleanup
    trap - EXIT
fi
echo

echo "== 3. The Rust API (examples/demo.rs)"
echo
"$CARGO" run --release --quiet --example demo
