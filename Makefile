# The README's two commands are `make demo` and `make test`; both install what they
# need first (npm packages, a Python virtualenv) and skip that when it is up to date.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := node_modules/.bin
STAMPS := .stamps
TS_TESTS = $(sort $(wildcard packages/*/test/*.test.ts))
# grpcurl, for the test that runs the README's grpcurl commands: built from source with the
# Go toolchain (it is not packaged in Debian) into the project-local .tools/bin.
GRPCURL_VERSION := v1.9.3
TOOLS_BIN := .tools/bin

.PHONY: setup build demo demo-client demo-optimize demo-deploy demo-variables demo-workers demo-cluster bench test lint typecheck check-generated test-ts test-py gen clean redis-server grpcurl

setup: $(STAMPS)/npm $(STAMPS)/venv

$(STAMPS)/npm: package.json package-lock.json packages/core/package.json packages/server/package.json packages/client/package.json
	@echo "==> installing npm packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/venv: python/pyproject.toml python/constraints.txt
	@echo "==> creating the Python virtualenv in $(VENV)"
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c python/constraints.txt -e "python[test]"
	@mkdir -p $(STAMPS) && touch $@

grpcurl: $(STAMPS)/grpcurl-$(GRPCURL_VERSION)

$(STAMPS)/grpcurl-$(GRPCURL_VERSION):
	@echo "==> installing grpcurl $(GRPCURL_VERSION) into $(TOOLS_BIN) (go install)"
	GOBIN="$(CURDIR)/$(TOOLS_BIN)" GOFLAGS=-buildvcs=false go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@mkdir -p $(STAMPS) && touch $@

# Compiling needs only the npm packages (a fresh checkout can `make build` and `npx toolbridge`).
build: $(STAMPS)/npm
	@echo "==> compiling TypeScript"
	$(BIN)/tsc -b packages/core packages/server packages/client

demo: build $(STAMPS)/venv
	@echo "==> demo: a DSPy ReAct agent in Python using the tools of a TypeScript host"
	TOOLBRIDGE_PYTHON="$${TOOLBRIDGE_PYTHON:-$(PY)}" node --import tsx examples/agent/demo.ts

demo-client: build $(STAMPS)/venv
	@echo "==> demo: a Python program calling TypeScript tools"
	$(PY) examples/python/shop_client.py

lint: setup
	@echo "==> lint (biome, ruff)"
	scripts/biome-check.sh
	cd python && ../$(VENV)/bin/ruff check . ../bench ../testdata/workers ../examples/workers ../examples/python ../examples/deploy ../examples/cluster && ../$(VENV)/bin/ruff format --check . ../bench ../testdata/workers ../examples/workers ../examples/python ../examples/deploy ../examples/cluster

typecheck: build $(STAMPS)/venv
	@echo "==> type checks (tsc on tests and examples, mypy --strict)"
	$(BIN)/tsc -p tsconfig.tests.json
	cd python && ../$(VENV)/bin/mypy

check-generated: setup
	@echo "==> generated code is up to date"
	scripts/gen.sh --check
	$(PY) testdata/values/generate.py --check || { echo "testdata/values/vectors.json is stale: run $(PY) testdata/values/generate.py"; exit 1; }

demo-optimize: build $(STAMPS)/venv
	@echo "==> demo: optimizing, saving and loading a DSPy agent that uses TypeScript tools"
	$(PY) examples/python/optimize_agent.py

demo-deploy: build $(STAMPS)/venv
	@echo "==> demo: a host with TLS and bearer tokens, and Python clients using them"
	$(PY) examples/deploy/secure_host.py

demo-variables: build $(STAMPS)/venv
	@echo "==> demo: the TypeScript application and a Python worker sharing session variables"
	TOOLBRIDGE_PYTHON="$${TOOLBRIDGE_PYTHON:-$(PY)}" node --import tsx examples/variables/shared-state.ts

demo-workers: build $(STAMPS)/venv
	@echo "==> demo: warm Python workers owned by the TypeScript host (Python tools, a DSPy agent)"
	TOOLBRIDGE_PYTHON="$${TOOLBRIDGE_PYTHON:-$(PY)}" node --import tsx examples/workers/demo.ts

# CLUSTER=redis-cluster runs it on a Redis Cluster of three masters instead of one redis-server.
CLUSTER ?= redis

demo-cluster: build redis-server
	@echo "==> demo: three hosts on $(CLUSTER), a Python client spread over them, one node killed mid-run"
	$(PY) examples/cluster/demo.py --store $(CLUSTER)

# Not part of `make test` (the tests run the harness once with tiny counts); several minutes.
bench: build redis-server $(STAMPS)/venv
	@echo "==> benchmarks: toolbridge against bare grpc-js and MCP (stdio, HTTP), results in bench/results/"
	$(PY) bench/run.py $(BENCH_ARGS)
	TOOLBRIDGE_PYTHON="$(PY)" node --import tsx bench/workers.ts $(BENCH_WORKERS_ARGS)

# The Redis store's tests start their own redis-server, Redis Cluster and Sentinel group
# (Debian's redis-server and redis-sentinel, with redis-cli from redis-tools) on free loopback
# ports; this installs the packages that are missing (CI runs as root on Debian).
redis-server:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	if [ -n "$$missing" ]; then \
		echo "==> missing:$$missing; installing Debian's packages (apt-get install -y$$missing)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		echo "==> installed $$(redis-server --version)"; \
	fi

# A test that stops making progress fails instead of holding CI up: Node 20's runner applies
# --test-timeout to each test file as a whole (later Nodes to each test), and the tests' own
# waits are bounded. The bound is far above the slowest file (packing and installing the
# packages, cloning and building a checkout: about a minute each).
TS_TEST_TIMEOUT_MS := 600000

test-ts: build redis-server grpcurl $(STAMPS)/venv
	@echo "==> TypeScript tests"
	node --import tsx --test --test-timeout=$(TS_TEST_TIMEOUT_MS) $(TS_TESTS)

test-py: build redis-server $(STAMPS)/venv
	@echo "==> Python tests"
	cd python && ../$(VENV)/bin/pytest -q

test: lint typecheck check-generated test-ts test-py

gen: setup
	scripts/gen.sh
	$(PY) testdata/values/generate.py

clean:
	rm -rf $(STAMPS) $(VENV) node_modules packages/*/dist .tools
