.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BENCH_VENV := bench/.venv
PORT ?= 8000
CHANNEL ?= public.demo
DATA ?= {"text": "hello from make publish"}
# Where `make dist` puts the wheels; pip builds each in an isolated environment holding only its
# build backend (hatchling), not the development virtualenv.
DIST ?= dist

.PHONY: help run test matrix bench lint format typecheck publish dist deps venv clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: deps ## Install what is missing and start redis, the SSE service, Django and nginx (PORT=8000)
	$(PY) -m devstack run --port $(PORT)

test: deps ## Install what is missing and run the whole test suite
	scripts/install-system-deps test
	$(MAKE) --no-print-directory $(NPM_CLIENTS) $(BENCH_PEERS)
	$(PY) -m pytest

matrix: ## Run the suite on Debian 13's Python 3.13 with Django 6 and 5.2, in a chroot (root; see README)
	scripts/install-system-deps matrix
	scripts/matrix

bench: deps ## Run the fan-out benchmark against the project, nginx + nchan and django-eventstream, then a rolling deploy (bounded, loopback only)
	scripts/install-system-deps bench
	$(MAKE) --no-print-directory $(BENCH_PEERS)
	$(PY) -m bench
	$(PY) -m bench rollover

lint: venv ## Check formatting and lint (ruff) and types (mypy)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: venv ## Reformat the code (ruff)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

publish: venv ## Publish DATA (JSON) on CHANNEL through the running `make run` stack
	. .run/env && cd django_site && ../$(PY) manage.py publish $(CHANNEL) '$(DATA)'

dist: ## Build the two wheels into DIST (dist/): django-sse-push and sse-push-service
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(DIST) ./django_site .

deps: venv ## Install the system packages and the virtualenv, if missing
	scripts/install-system-deps run

venv: $(VENV)/.installed

# npm's eventsource, the third-party client the tests drive, pinned by tests/clients/package-lock.json.
NPM_CLIENTS := tests/clients/node_modules/.installed
$(NPM_CLIENTS): tests/clients/package.json tests/clients/package-lock.json
	npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
	touch $@

# The bench's Python peer (django-eventstream under daphne) in a virtualenv of its own, never the test
# venv, pinned by bench/requirements-peers.txt; tests/bench smoke-runs the harness against it too.
BENCH_PEERS := $(BENCH_VENV)/.installed
$(BENCH_PEERS): bench/requirements-peers.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt
	touch $@

$(VENV)/.installed: requirements-dev.txt sse_service/requirements.txt django_site/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

clean: ## Remove the virtualenv and run files
	rm -rf $(VENV) $(BENCH_VENV) .run .pytest_cache .mypy_cache .ruff_cache dist
