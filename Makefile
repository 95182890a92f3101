# Entry points for a fresh machine: `make demo` runs the main job on the in-memory store; `make test`
# type-checks, then runs the suite plainly and under typeguard's import hook. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench typecheck pytest pytest-typeguard reliability venv system-deps clean

# The tests start their own memcached, Redis and PostgreSQL servers: the binaries must be there (apt-get, as
# root or via sudo). Debian keeps PostgreSQL's initdb off PATH, in /usr/lib/postgresql/<version>/bin.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test: system-deps typecheck pytest pytest-typeguard

system-deps:
	@command -v memcached >/dev/null && command -v redis-server >/dev/null && { command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { $(SUDO) apt-get update && $(SUDO) apt-get install -y memcached redis-server postgresql; }

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m oauth2_store demo

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The same suite with every function of oauth2_store checked against its annotations at run time.
pytest-typeguard: $(STAMP)
	OAUTH2_STORE_TYPEGUARD=1 $(BIN)/pytest --typeguard-packages=oauth2_store

# Every benchmark side by side with the alternatives; writes benchmarks/RESULTS.md and results.png.
bench: system-deps $(STAMP)
	$(BIN)/python benchmarks/run.py

# The reliability scenarios (faults, races, hostile input, load) at full size; `make test` runs them bounded.
reliability: system-deps $(STAMP)
	$(BIN)/pytest -m reliability --reliability-full

clean:
	rm -rf $(VENV) build *.egg-info
