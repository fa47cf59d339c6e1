# Craft: `make demo` shows the system working, `make test` runs the test suite, `make reproduce`
# rebuilds the embedded miniature of the CRAFT experiment (docs/experiment.md).
# Both install the system packages they need first (scripts/ensure-system-deps.sh; the tests also
# need docker-registry and chromium).
SWIFT ?= swift
BIN := .build/release

.PHONY: deps test-deps build test demo bench reproduce fuzz clean

deps:
	@scripts/ensure-system-deps.sh

test-deps:
	@scripts/ensure-system-deps.sh --tests

build: deps
	$(SWIFT) build -c release --product craft
	$(SWIFT) build -c release --product craft-registry

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	@SWIFT=$(SWIFT) scripts/check-craft-pack.sh

demo: build
	@scripts/demo.sh $(BIN)

bench: deps
	$(SWIFT) build -c release --product craft-bench
	$(BIN)/craft-bench all

reproduce: deps
	$(SWIFT) build -c release --product craft-experiment
	$(BIN)/craft-experiment all

# libFuzzer targets (docs/fuzzing.md): FUZZ_RUNS inputs per target (default 10^6). Not part of make test.
fuzz: deps
	@scripts/fuzz.sh

clean:
	rm -rf .build .build-fuzz
