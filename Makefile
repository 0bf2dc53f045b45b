# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed from here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Tools the tests drive for real: headless Chromium (dashboard), docker-compose (`config`
# of the compose file), promtool (checks /metrics) and a PostgreSQL server (initdb and
# pg_ctl, started by the tests as a non-root user). Installed from Debian when missing.
SYSTEM_PACKAGES := chromium docker-compose prometheus fonts-nanum postgresql
# `env` carries the assignment: with SUDO empty, a bare `VAR=value cmd` after an empty
# expansion is no longer an assignment but a command name, and the shell fails on it.
APT := env DEBIAN_FRONTEND=noninteractive apt-get
# Debian keeps the server binaries off PATH; the tests find them here.
POSTGRES_PG_CTL ?= /usr/lib/postgresql/*/bin/pg_ctl

.PHONY: run test lint typecheck bench install system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The client SDK is its own distribution (client/); the tests drive it against the ingestor.
$(STAMP): $(BIN)/python pyproject.toml client/pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e './client[async]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/chatlog run

lint: install
	$(BIN)/ruff check shared chat_statistics insights ingestor analytics_api chatlog client tests bench
	$(BIN)/mypy

system-deps:
	@missing=""; \
	for tool in chromium docker-compose promtool; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	[ -d /usr/share/fonts/truetype/nanum ] || missing="$$missing fonts-nanum"; \
	set -- $(POSTGRES_PG_CTL); [ -x "$$1" ] || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing from Debian"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO $(APT) update -qq && $$SUDO $(APT) install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	fi

test: install system-deps lint
	$(BIN)/python -m pytest

# Each benchmark compares against its baseline in one run; see the README for the figures.
bench: install
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.otlp
	$(BIN)/python -m bench.storage
	$(BIN)/python -m bench.analytics
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.suggestions
	$(BIN)/python -m bench.conversations
	$(BIN)/python -m bench.faq
	$(BIN)/python -m bench.importing
	$(BIN)/python -m bench.catchup
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
