# greenrt — build, demo, test, bench, lint.
CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all build preload dist deps demo test test-epoll test-poll test-loom conformance conformance-fast lint bench install uninstall deb clean

# The shipped build (Cargo.toml's dist profile: LTO, no debug info).
DIST_DIR = $(CURDIR)/target/dist

all: build

build:
	$(CARGO) build --release

## The main job: blocking C code in greenlets (examples/c/demo.c) under
## `greenrt run`, an unmodified curl under the launcher, then the Rust API
## (examples/demo.rs). See examples/demo.sh.
demo:
	$(CARGO) build --release
	CARGO="$(CARGO)" bash examples/demo.sh

## The preload library and the launcher (debug), which the tests run
## programs under (preload/tests/cdylib.rs, real_programs.rs, ...).
preload:
	$(CARGO) build -p greenrt-preload

## What the tests need beyond the Rust toolchain (a C compiler, curl,
## redis, python3, pkg-config, dpkg-deb, ...): installed with apt-get
## when possible, else one message naming each missing package.
deps:
	bash scripts/deps.sh

## The launcher and library as shipped (target/dist/).
dist:
	$(CARGO) build --profile dist -p greenrt-preload

## bin/greenrt, lib/libgreenrt_preload.so, include/greenrt.h,
## lib/pkgconfig/greenrt.pc and share/man/man1/greenrt.1 under PREFIX
## (DESTDIR for staging); the launcher finds the library in ../lib.
install: dist
	bash scripts/install.sh install $(DIST_DIR) $(PREFIX) $(DESTDIR)

## Removes exactly what `make install` put under the same PREFIX.
uninstall:
	bash scripts/install.sh uninstall $(DIST_DIR) $(PREFIX) $(DESTDIR)

## target/deb/greenrt_VERSION_ARCH.deb (dpkg-deb).
deb: dist
	bash scripts/deb.sh $(DIST_DIR) target/deb

## The whole harness: set-up, lint, then every test under both poller
## backends. The install, package and README tests use the dist build.
test: deps
	$(MAKE) lint
	$(MAKE) test-loom
	$(MAKE) test-epoll
	$(MAKE) test-poll
	$(MAKE) conformance-fast

test-epoll: preload dist
	GREENRT_DIST_DIR=$(DIST_DIR) GREENRT_BACKEND=epoll $(CARGO) test --workspace --exclude greenrt-benches

test-poll: preload dist
	GREENRT_DIST_DIR=$(DIST_DIR) GREENRT_BACKEND=poll $(CARGO) test --workspace --exclude greenrt-benches

## CPython's stdlib tests natively and under the preload (HOOKS=auto and
## always), compared test by test; conformance/known-differences.txt
## lists the accepted differences with their reasons (scripts/conformance.py).
conformance: preload
	python3 scripts/conformance.py

## The subset `make test` runs (signal, socketserver, select, poll,
## selectors, epoll, fcntl, wait3, wait4): about 4 minutes.
conformance-fast: preload
	python3 scripts/conformance.py --fast

## Model tests of the cross-thread protocols (loom-tests/): the hub's
## mailbox and remote waker, thread-pool wakeups and shutdown, the signal
## counters. A separate target dir: `--cfg loom` changes every build flag.
test-loom:
	RUSTFLAGS="--cfg loom" $(CARGO) test -p greenrt-loom --release --target-dir target/loom

## Formatting, clippy (every unsafe block documented), and the direction
## of imports (layers.toml, checked by scripts/check_layers.py).
lint:
	python3 scripts/check_layers.py --self-test
	python3 scripts/check_layers.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p greenrt -p greenrt-preload --all-targets -- -D warnings

## Peer comparisons: one table, plus target/bench/results.jsonl.
bench:
	bash benches/run.sh

clean:
	$(CARGO) clean
