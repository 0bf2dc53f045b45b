# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed from here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/chatlog run

lint: install
	$(BIN)/ruff check shared ingestor analytics_api chatlog tests bench
	$(BIN)/mypy

test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
