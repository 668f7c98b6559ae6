# xferproxy — every entry point a developer or CI needs.
# `make test` and `make demo` work from a fresh clone on Debian with only Node.js and npm.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

DENO_VERSION := 2.9.6
DENO := .tools/bin/deno
# CI installs exactly what deno.lock pins; locally the lock may be refreshed with `make lock`.
FROZEN := --frozen
# Every test folder but the end-to-end one (and the beds, fakes and fixtures, which hold no tests).
UNIT_TESTS := $(filter-out tests/e2e/ tests/testbed/ tests/_fakes/ tests/fixtures/,$(wildcard tests/*/))
E2E_TESTS := tests/e2e

.PHONY: help deps sysdeps dist bin build test check-static test-unit test-e2e demo demo-scale bench fmt lint typecheck lock clean

help:
	@echo "make demo   build dist/xferproxy and run it on examples/aspera.conf"
	@echo "make test   static checks, unit and end-to-end tests (end-to-end needs root)"
	@echo "make dist   dist/xferproxy (one self-contained file) and the .deb and .rpm packages"
	@echo "make bin    dist/xferproxy only"
	@echo "make build  dist/xferproxy as a deno compile binary, or fail (needs DENORT_BIN)"
	@echo "make demo-scale  two proxy nodes behind one address: spread, affinity, drain (root)"
	@echo "make bench  benchmarks as ratios against same-run baselines (root)"
	@echo "make fmt    format the sources"

$(DENO): scripts/install-deno.sh
	@scripts/install-deno.sh $(DENO_VERSION)
	@touch $(DENO)

# npm dependencies from deno.json imports, exactly as deno.lock pins them.
# Readable by all: they are packed into dist/xferproxy, which runs as each proxy user, and
# some npm tarballs ship files with mode 0600.
node_modules/.xferproxy-deps: deno.json deno.lock $(DENO)
	@$(DENO) install --quiet $(FROZEN)
	@chmod -R a+rX node_modules
	@touch $@

deps: $(DENO) node_modules/.xferproxy-deps

sysdeps:
	@scripts/install-system-deps.sh

bin: deps
	@scripts/build-dist.sh

dist: bin
	@scripts/build-packages.sh

build: deps
	@scripts/build-dist.sh --strict

check-static: deps
	@$(DENO) fmt --check --quiet
	@$(DENO) lint --quiet
	@$(DENO) check --quiet main.ts tests/ bench/ scripts/

test-unit: deps
	@$(DENO) test --quiet $(FROZEN) --allow-read=. --allow-env=TMPDIR,TMP,TEMP $(UNIT_TESTS)

test-e2e: sysdeps dist
	@$(DENO) test --quiet $(FROZEN) --allow-all $(E2E_TESTS)

test: check-static test-unit test-e2e

demo: sysdeps bin
	@examples/demo.sh

# Two proxy nodes behind one address (docs/scale-out.md), in namespaces; under a minute. Root only.
demo-scale: sysdeps bin
	@$(DENO) run --quiet --cached-only -A scripts/demo_scale.ts

# Ratios against baselines measured in the same run; writes bench/results.{md,json}. Root only.
bench: sysdeps bin
	@$(DENO) run --quiet --cached-only -A bench/bench.ts

fmt: deps
	@$(DENO) fmt

lint: deps
	@$(DENO) lint

typecheck: deps
	@$(DENO) check main.ts tests/

lock: $(DENO)
	@$(DENO) install
	@chmod -R a+rX node_modules
	@touch node_modules/.xferproxy-deps

clean:
	rm -rf dist node_modules .tools
