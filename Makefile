# One target per routine task. Needs only Python 3.11+, Node 18+ and make (setup installs
# bubblewrap, Go and Delve where it can: apt-get as root on Debian/Ubuntu).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
POWERX := $(VENV)/bin/powerx
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
NODE_EXAMPLE := examples/hello-node
NODE_STAMP   := $(NODE_EXAMPLE)/node_modules/.installed

.PHONY: setup demo test check lint typecheck schemas clean bench bench-debug smoke load faults fuzz security soak

setup: $(STAMP) $(NODE_STAMP)
	@sh scripts/install_sandbox.sh
	@sh scripts/install_go.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): $(NODE_EXAMPLE)/package-lock.json
	cd $(NODE_EXAMPLE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## demo: the simulator with both example plugins, in mock mode (Ctrl-C stops it)
demo: setup
	$(POWERX) login --mock --if-missing
	$(POWERX) host start --mock examples/hello-python examples/hello-node

## test: lint, type-check and the whole test suite (real simulator and plugin processes)
test: setup lint typecheck
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts examples
	$(VENV)/bin/ruff format --check src tests scripts examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

schemas: $(STAMP)
	$(PY) scripts/write_schemas.py

clean:
	rm -rf $(VENV) $(NODE_EXAMPLE)/node_modules benchmarks/node_modules tests/dap-client/node_modules .powerx test-output

BENCH_STAMP := benchmarks/node_modules/.installed

$(BENCH_STAMP): benchmarks/package-lock.json
	cd benchmarks && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## bench: save-to-serving latency of powerx vs uvicorn --reload and nodemon (prints a table)
bench: setup $(BENCH_STAMP)
	$(PY) benchmarks/reload_latency.py

## smoke: the hot-reload drill (positive and version-mismatch paths); exit 0 when both behave
smoke: setup
	$(PY) scripts/workflows/hot_reload_smoke.py

## load: 8 plugins reloading concurrently under load (failed requests, peak RSS)
load: setup
	$(PY) benchmarks/load_reload.py

## faults: 100 rounds of kill -9 (simulator or plugin) and dropped uploads during reloads
faults: setup
	$(PY) benchmarks/fault_rounds.py

## bench-debug: a breakpoint set once must hit after each of 50 reloads; replay cost (prints a table)
bench-debug: setup
	$(PY) benchmarks/breakpoint_replay.py

## soak: 2,000 reloads of both examples with a debugger attached and requests flowing; checks
## RSS, fds, threads, processes and latency do not creep (PASS/FAIL; --reloads N runs shorter)
soak: setup
	$(PY) benchmarks/soak.py

## fuzz: 20,000 mutated archives and manifests through the upload parsers (0 unexpected)
fuzz: setup
	$(PY) benchmarks/fuzz_parsers.py --cases 20000

## security: hostile Python and Node plugins (and a hostile client) try every known way
## around the guards and out of the plugin's sandbox against a real simulator; prints
## area | attempts | got through
security: setup
	$(PY) -m tests.security.report
