# Entry points for a fresh machine: `make demo` runs the main job on the in-memory store; `make test`
# type-checks, then runs the suite plainly and under typeguard's import hook. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test typecheck pytest pytest-typeguard venv clean

test: typecheck pytest pytest-typeguard

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

clean:
	rm -rf $(VENV) build *.egg-info
