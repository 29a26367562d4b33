# Two commands: `make run` starts the whole system with demo content; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench services tools clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

services: $(STAMP)
	@$(BIN)/python -m services.cli services --for-tests

tools:
	@deploy/dev/ensure-tools.sh

run: $(STAMP)
	@$(BIN)/balloon run

test: $(STAMP) services tools
	@$(BIN)/ruff check .
	@$(BIN)/python -m pytest

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf var test-output .pytest_cache
