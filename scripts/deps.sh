#!/usr/bin/env bash
# `make deps`: installs what `make test` needs beyond the Rust toolchain,
# or stops with one message naming every missing piece and the command
# that installs it. Run by `make test` first, so a fresh machine passes the
# README's test command by itself.
#
#   GREENRT_DEPS_DRY_RUN=1   report what is missing, install nothing
set -euo pipefail

# command  Debian package   (what needs it)
needs=(
    "cc            gcc          (the C test programs, preload/build.rs)"
    "c++           g++          (the C++ test programs)"
    "pkg-config    pkg-config   (the install test builds through greenrt.pc)"
    "curl          curl         (real_programs: curl against a local server)"
    "redis-server  redis-server (real_programs: redis-server with redis-cli)"
    "redis-cli     redis-tools  (real_programs: redis-server with redis-cli)"
    "python3       python3      (real_programs, demo's local server)"
    "bash          bash         (real_programs: a bash pipeline)"
    "dpkg-deb      dpkg         (make deb and its test)"
    "man           man-db       (the package test renders greenrt.1)"
)

missing_cmds=()
missing_pkgs=()
check() {
    missing_cmds=()
    missing_pkgs=()
    local line cmd pkg
    for line in "${needs[@]}"; do
        read -r cmd pkg _ <<<"$line"
        if ! command -v "$cmd" >/dev/null 2>&1; then
            missing_cmds+=("$cmd")
            missing_pkgs+=("$pkg")
        fi
    done
    # The C programs include libc's headers.
    if command -v cc >/dev/null 2>&1 && ! printf '#include <stdio.h>\nint main(void){return 0;}\n' |
        cc -x c -o /dev/null - >/dev/null 2>&1; then
        missing_cmds+=("libc headers")
        missing_pkgs+=("libc6-dev")
    fi
    # `make conformance` runs CPython's own stdlib tests (the `test`
    # package, which Debian ships apart from python3).
    if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import test.support' >/dev/null 2>&1; then
        local v
        v=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        missing_cmds+=("python3's stdlib test package")
        missing_pkgs+=("libpython$v-testsuite")
    fi
}

# rustfmt and clippy: `make lint` needs both.
components=()
cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
if [ ${#components[@]} -gt 0 ] && [ -z "${GREENRT_DEPS_DRY_RUN:-}" ] && command -v rustup >/dev/null 2>&1; then
    rustup component add "${components[@]}" >&2 || true
    components=()
    cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
fi

check
if [ ${#missing_pkgs[@]} -gt 0 ] && [ -z "${GREENRT_DEPS_DRY_RUN:-}" ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
    fi
    if [ "$sudo" != none ]; then
        echo "make deps: installing ${missing_pkgs[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >&2 || true
        check
    fi
fi

if [ ${#missing_pkgs[@]} -eq 0 ] && [ ${#components[@]} -eq 0 ]; then
    exit 0
fi
{
    echo "make deps: the tests need programs this machine does not have:"
    for i in "${!missing_cmds[@]}"; do
        echo "  ${missing_cmds[$i]} (Debian package ${missing_pkgs[$i]})"
    done
    for c in "${components[@]}"; do echo "  cargo $c (Rust component $c)"; done
    uniq_pkgs=$(printf '%s\n' "${missing_pkgs[@]}" | sort -u | tr '\n' ' ')
    [ ${#missing_pkgs[@]} -eq 0 ] || echo "install them with: sudo apt-get install -y ${uniq_pkgs% }"
    [ ${#components[@]} -eq 0 ] || echo "and: rustup component add ${components[*]}"
} >&2
exit 1
