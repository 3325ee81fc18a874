# greenrt — build, demo, test, bench, lint.
CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all build preload demo test test-epoll test-poll lint bench install clean

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

## bin/greenrt, lib/libgreenrt_preload.so, include/greenrt.h under PREFIX
## (DESTDIR for staging); the launcher finds the library in ../lib.
install:
	$(CARGO) build --release -p greenrt-preload
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 target/release/greenrt $(DESTDIR)$(PREFIX)/bin/greenrt
	install -m 755 target/release/libgreenrt_preload.so $(DESTDIR)$(PREFIX)/lib/libgreenrt_preload.so
	install -m 644 include/greenrt.h $(DESTDIR)$(PREFIX)/include/greenrt.h

## The whole harness: lint, then every test under both poller backends.
test: lint test-epoll test-poll

test-epoll: preload
	GREENRT_BACKEND=epoll $(CARGO) test --workspace --exclude greenrt-benches

test-poll: preload
	GREENRT_BACKEND=poll $(CARGO) test --workspace --exclude greenrt-benches

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p greenrt -p greenrt-preload --all-targets -- -D warnings

## Peer comparisons: one table, plus target/bench/results.jsonl.
bench:
	bash benches/run.sh

clean:
	$(CARGO) clean
