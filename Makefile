# The README's two commands are `make demo` and `make test`; both install what they
# need first (npm packages, a Python virtualenv) and skip that when it is up to date.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := node_modules/.bin
STAMPS := .stamps
TS_TESTS = $(sort $(wildcard packages/*/test/*.test.ts))
# grpcurl, for the test that runs the grpcurl commands of docs/hosting.md: built from source with the
# Go toolchain (it is not packaged in Debian) into the project-local .tools/bin.
GRPCURL_VERSION := v1.9.3
TOOLS_BIN := .tools/bin
# The MCP conformance suite and the Node 22 it needs, in a package of their own: their `node`
# must not land in the workspace's node_modules/.bin, where npm scripts and npx would run it.
CONFORMANCE := testdata/mcp/conformance

.PHONY: setup build inspector-ui chromium inspector-images trace-image bench-inspector demo demo-traces demo-client demo-optimize demo-deploy demo-variables demo-workers demo-cluster demo-mcp bench test lint typecheck check-generated test-ts test-py gen clean redis-server grpcurl

setup: $(STAMPS)/npm $(STAMPS)/venv

$(STAMPS)/npm: package.json package-lock.json packages/core/package.json packages/server/package.json packages/client/package.json packages/inspector/package.json
	@echo "==> installing npm packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/venv: python/pyproject.toml python/constraints.txt
	@echo "==> creating the Python virtualenv in $(VENV)"
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c python/constraints.txt -e "python[test]"
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/conformance: $(CONFORMANCE)/package.json $(CONFORMANCE)/package-lock.json
	@echo "==> installing the MCP conformance suite and its Node 22 (npm ci in $(CONFORMANCE))"
	npm ci --prefix $(CONFORMANCE) --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

grpcurl: $(STAMPS)/grpcurl-$(GRPCURL_VERSION)

$(STAMPS)/grpcurl-$(GRPCURL_VERSION):
	@echo "==> installing grpcurl $(GRPCURL_VERSION) into $(TOOLS_BIN) (go install)"
	GOBIN="$(CURDIR)/$(TOOLS_BIN)" GOFLAGS=-buildvcs=false go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@mkdir -p $(STAMPS) && touch $@

# Compiling needs only the npm packages (a fresh checkout can `make build` and `npx toolbridge`).
build: $(STAMPS)/npm inspector-ui
	@echo "==> compiling TypeScript"
	$(BIN)/tsc -b packages/core packages/server packages/client

# The inspector's page (packages/inspector, React + Mantine, bundled by Vite) goes into
# @toolbridge/server's dist/inspector-ui, which the host and `toolbridge inspect` serve;
# rebuilt only when its sources change.
INSPECTOR_UI := packages/server/dist/inspector-ui/index.html
INSPECTOR_SOURCES := $(shell find packages/inspector/src -type f) packages/inspector/index.html packages/inspector/vite.config.ts

inspector-ui: $(INSPECTOR_UI)

$(INSPECTOR_UI): $(STAMPS)/npm $(INSPECTOR_SOURCES)
	@echo "==> building the inspector's page (vite)"
	$(BIN)/vite build packages/inspector --logLevel warn

demo: build $(STAMPS)/venv
	@echo "==> demo: a DSPy ReAct agent in Python using the tools of a TypeScript host"
	TOOLBRIDGE_PYTHON="$${TOOLBRIDGE_PYTHON:-$(PY)}" node --import tsx examples/agent/demo.ts

# Arize Phoenix, the OTLP trace backend (with a web UI) of `make demo-traces` (docs/tracing.md),
# in a virtualenv of its own: about 860 MB, so only the targets that run it install it.
PHOENIX_VERSION := 20.26.1
PHOENIX_VENV := .tools/phoenix

$(STAMPS)/phoenix-$(PHOENIX_VERSION):
	@echo "==> installing Arize Phoenix $(PHOENIX_VERSION) into $(PHOENIX_VENV) (its own virtualenv; a few minutes)"
	python3 -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PHOENIX_VENV)/bin/python -m pip install --quiet arize-phoenix==$(PHOENIX_VERSION)
	@mkdir -p $(STAMPS) && touch $@

demo-traces: build $(STAMPS)/venv $(STAMPS)/phoenix-$(PHOENIX_VERSION)
	@echo "==> demo: the agent demo traced, its spans in Arize Phoenix on loopback, the run's trace tree"
	TOOLBRIDGE_PYTHON="$${TOOLBRIDGE_PYTHON:-$(PY)}" node --import tsx examples/tracing/demo-traces.ts

# The README's picture of a trace: `make demo-traces` with a screenshot of the trace's page in
# Phoenix's UI, taken in headless Chromium, into docs/images/trace-demo.png.
trace-image: build chromium $(STAMPS)/venv $(STAMPS)/phoenix-$(PHOENIX_VERSION)
	TOOLBRIDGE_PYTHON="$${TOOLBRIDGE_PYTHON:-$(PY)}" node --import tsx examples/tracing/demo-traces.ts --screenshot docs/images/trace-demo.png

demo-client: build $(STAMPS)/venv
	@echo "==> demo: a Python program calling TypeScript tools"
	$(PY) examples/python/shop_client.py

lint: setup
	@echo "==> lint (biome, ruff)"
	scripts/biome-check.sh
	cd python && ../$(VENV)/bin/ruff check . ../bench ../testdata/workers ../testdata/inspector ../testdata/mcp ../examples/workers ../examples/python ../examples/deploy ../examples/cluster ../examples/mcp && ../$(VENV)/bin/ruff format --check . ../bench ../testdata/workers ../testdata/inspector ../testdata/mcp ../examples/workers ../examples/python ../examples/deploy ../examples/cluster ../examples/mcp

typecheck: build $(STAMPS)/venv
	@echo "==> type checks (tsc on tests and examples, mypy --strict)"
	$(BIN)/tsc -p tsconfig.tests.json
	$(BIN)/tsc -p packages/inspector
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

demo-mcp: build $(STAMPS)/venv
	@echo "==> demo: MCP in both directions: MCP clients calling a host's tools, MCP servers mounted into a host"
	$(PY) examples/mcp/demo.py

# Not part of `make test` (the tests run the harness once with tiny counts); several minutes.
bench: build redis-server $(STAMPS)/venv bench-inspector
	@echo "==> benchmarks: toolbridge against bare grpc-js and MCP (stdio, HTTP), results in bench/results/"
	$(PY) bench/run.py $(BENCH_ARGS)
	TOOLBRIDGE_PYTHON="$(PY)" node --import tsx bench/workers.ts $(BENCH_WORKERS_ARGS)

# The inspector in headless Chromium: pages opened over 1,000 sessions and a session of 5,000
# variables, and how long a variable write takes to reach the page.
bench-inspector: build chromium
	@echo "==> benchmark: the inspector's pages and live variables, results in bench/results/"
	node --import tsx bench/inspector.ts $(BENCH_INSPECTOR_ARGS)

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

# The inspector's tests drive Debian's chromium with playwright-core (which downloads no
# browser); this installs it when it is missing, as redis-server above.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "==> chromium is missing: installing Debian's chromium package (apt-get install -y chromium)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
		echo "==> installed $$(/usr/bin/chromium --version 2>/dev/null)"; \
	fi

# The inspector's pictures in docs/images: its browser test saves a screenshot of each page
# in test-artifacts/inspector; these are copied to docs/images.
INSPECTOR_IMAGES := tools tool-call variables agent-run sessions calls
inspector-images: build chromium $(STAMPS)/venv
	node --import tsx --test --test-timeout=$(TS_TEST_TIMEOUT_MS) packages/server/test/inspector.test.ts
	@mkdir -p docs/images
	@for name in $(INSPECTOR_IMAGES); do cp test-artifacts/inspector/$$name.png docs/images/inspector-$$name.png; done
	@echo "==> docs/images/inspector-*.png updated"

# A test that stops making progress fails instead of holding CI up: Node 20's runner applies
# --test-timeout to each test file as a whole (later Nodes to each test), and the tests' own
# waits are bounded. The bound is far above the slowest file (packing and installing the
# packages, cloning and building a checkout: about a minute each).
TS_TEST_TIMEOUT_MS := 600000

test-ts: build redis-server grpcurl chromium $(STAMPS)/venv $(STAMPS)/conformance
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
	rm -rf $(STAMPS) $(VENV) node_modules $(CONFORMANCE)/node_modules packages/*/dist .tools
