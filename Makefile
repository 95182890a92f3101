# One entry point for a fresh machine: `make test` builds .venv, installs the package with its
# test extra, type-checks, then runs the suite plainly and under typeguard's import hook.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test typecheck pytest pytest-typeguard venv clean

test: typecheck pytest pytest-typeguard

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The same suite with every function of oauth2_store checked against its annotations at run time.
pytest-typeguard: $(STAMP)
	OAUTH2_STORE_TYPEGUARD=1 $(BIN)/pytest --typeguard-packages=oauth2_store

clean:
	rm -rf $(VENV) build *.egg-info
