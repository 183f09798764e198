# One command to run, one to test. Everything else is what those two need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := wsgi
CHROMIUM ?= /usr/bin/chromium

.PHONY: run serve install test test-fast lint format e2e browser bench bench-quick bench-export fuzz migrate clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed

migrate: install
	$(BIN)/flask db upgrade

run: migrate
	$(BIN)/flask run --host $(HOST) --port $(PORT)

# Production-style serving; migrate first with the schema owner's DATABASE_URL
# (`make migrate`), since the app's least-privilege role cannot (README, production).
serve: install
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

# Playwright cannot download its own browser everywhere: use Debian's chromium when it is
# there (installing it when we are root and it is missing), else Playwright's own.
browser: install
	@if [ -x "$(CHROMIUM)" ]; then echo "browser: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) && echo "browser: installed chromium"; \
	else $(BIN)/playwright install chromium; fi

lint: install
	$(BIN)/ruff check audittrail audittrail_evidence tests e2e bench examples wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check audittrail audittrail_evidence tests e2e bench examples wsgi.py gunicorn.conf.py

format: install
	$(BIN)/ruff check --fix audittrail audittrail_evidence tests e2e bench examples wsgi.py gunicorn.conf.py
	$(BIN)/ruff format audittrail audittrail_evidence tests e2e bench examples wsgi.py gunicorn.conf.py

test: install browser lint
	AUDITTRAIL_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q tests -m "not production"

e2e: install browser
	AUDITTRAIL_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -q e2e

bench: install
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.webhooks

# The app against the lean reference (bench/lean.py) in one process on SQLite: the four ratios, under 2 minutes.
# Run it before every commit that touches the read path; it fails when a target is missed.
bench-quick: install
	$(BIN)/python -m bench.quick

# The audit export scale run alone (1M events by default; EXPORT_SIZES=100000 for a quick one).
EXPORT_SIZES ?= 100000,1000000
bench-export: install
	$(BIN)/python -m bench.export --sizes $(EXPORT_SIZES)

fuzz: install
	AUDITTRAIL_FUZZ_EXAMPLES=2000 $(BIN)/pytest -q tests/property/test_state_machine.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .hypothesis e2e/artifacts
