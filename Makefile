# Two commands set everything up on a new machine: `make run` and `make test`.
# Each first installs the Debian packages of system-packages.txt that the machine lacks
# (bin/system-packages: nothing to do costs a few milliseconds), then the Python
# virtualenv (.venv) and the React page's build (frontend/dist), each only when out of date.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FRONTEND := frontend/dist/index.html

.PHONY: run dev serve-setup test faults bench bench-quick lint install system-packages

## Install the Debian packages the project needs that this machine lacks (apt as root, else through sudo).
system-packages:
	@bin/system-packages

$(STAMP): requirements.txt requirements-dev.txt | system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The shopper's React page, built with Vite (Node.js and npm from the machine).
$(FRONTEND): frontend/package.json frontend/package-lock.json frontend/index.html frontend/vite.config.js frontend/tsconfig.json frontend/eslint.config.js $(shell find frontend/src -type f) | system-packages
	cd frontend && npm ci --no-audit --no-fund && npm run build

# What serving needs first: the database migrated, the demo catalog, an admin, the static files.
serve-setup: system-packages $(STAMP) $(FRONTEND)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_stock --if-empty inventory/demo_catalog.csv
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

## Run the whole system on its embedded defaults: gunicorn on http://127.0.0.1:$${PORT:-8000} and the task cluster (Procfile).
## Ctrl-C stops both (bin/run) and exits 0.
run: serve-setup
	$(BIN)/python bin/run Procfile

## The same with Django's auto-reloading development server in place of gunicorn (Procfile.dev).
dev: serve-setup
	$(BIN)/python bin/run Procfile.dev

## Run the whole test suite, on TEST_WORKERS processes (pytest-xdist; 2 by default, 0: in this one).
TEST_WORKERS ?= 2
test: system-packages $(STAMP) $(FRONTEND)
	$(BIN)/pytest -n $(TEST_WORKERS)

## The fault suite at full size: 200 orders a scenario, 60 s outages (`make test` runs a bounded profile).
faults: system-packages $(STAMP) $(FRONTEND)
	FAULT_PROFILE=full $(BIN)/pytest -m faults

## Benchmark the order path against this machine's own limits; writes bench/results/ and BENCHMARKS.md.
## BENCH_QUICK=1 (or `make bench-quick`): a few seconds per scenario, to prove the harness works.
bench: system-packages $(STAMP)
	BENCH_QUICK=$(BENCH_QUICK) $(BIN)/python -m bench.run

bench-quick: system-packages $(STAMP)
	BENCH_QUICK=1 $(BIN)/python -m bench.run

## Every static check: ruff, the layer contracts, mypy.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
