# Thin wrappers: everything real lives in the workspace (cogplane CLI, pytest, ruff, mypy).
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen

.PHONY: help install browser dev stop test test-fast lint fmt bench clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## Install uv and every dependency into .venv (from uv.lock)
	$(UV) sync --frozen

dev: install ## Start the whole platform locally (Ctrl-C stops it)
	$(RUN) cogplane dev

stop: install ## Stop a running `make dev`
	$(RUN) cogplane stop

# Browser tests drive Debian's Chromium (installed here when missing).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "The browser tests need Debian's chromium package (apt-get)."; exit 1; }
	$(SUDO) apt-get update -qq
	$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

browser: $(CHROMIUM) ## Install Debian's Chromium for the browser tests

test: install $(CHROMIUM) ## Run unit, integration, end-to-end and browser tests (real PostgreSQL, NATS, Cog, Chromium)
	$(RUN) pytest

test-fast: install ## Run the tests that do not start the whole platform
	$(RUN) pytest -m "not e2e"

lint: install ## ruff format check, ruff, mypy --strict, import contracts
	$(RUN) ruff format --check .
	$(RUN) ruff check .
	$(RUN) mypy libs/common/src services/*/src cli/src
	$(RUN) lint-imports

fmt: install ## Format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: install ## Benchmarks, side by side with calling Cog directly
	$(RUN) python -m bench

clean: ## Remove the environment and tools (keeps .cogplane data)
	rm -rf .venv $(TOOLS)
