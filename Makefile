# Craft: `make demo` shows the system working, `make test` runs the test suite.
# Both install the system libraries they need first (scripts/ensure-system-deps.sh).
SWIFT ?= swift
BIN := .build/release

.PHONY: deps build test demo bench reproduce clean

deps:
	@scripts/ensure-system-deps.sh

build: deps
	$(SWIFT) build -c release --product craft
	$(SWIFT) build -c release --product craft-registry

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

demo: build
	@scripts/demo.sh $(BIN)

bench: deps
	$(SWIFT) build -c release --product craft-bench
	$(BIN)/craft-bench

clean:
	rm -rf .build
