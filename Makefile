# greenrt — build, demo, test, bench, lint.
CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: all build demo test test-epoll test-poll lint bench clean

all: build

build:
	$(CARGO) build --release

## The main job on a bundled example.
demo:
	$(CARGO) run --release --example demo

## The whole harness: lint, then every test under both poller backends.
test: lint test-epoll test-poll

test-epoll:
	GREENRT_BACKEND=epoll $(CARGO) test --workspace --exclude greenrt-benches

test-poll:
	GREENRT_BACKEND=poll $(CARGO) test --workspace --exclude greenrt-benches

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p greenrt -p greenrt-preload --all-targets -- -D warnings

## Peer comparisons: one table, plus target/bench/results.jsonl.
bench:
	bash benches/run.sh

clean:
	$(CARGO) clean
