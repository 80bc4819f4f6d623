# Two commands set everything up on a new machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FRONTEND := frontend/dist/index.html

.PHONY: run test bench bench-quick lint install

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The shopper's React page, built with Vite (Node.js and npm from the machine).
$(FRONTEND): frontend/package.json frontend/package-lock.json frontend/index.html frontend/vite.config.js $(wildcard frontend/src/*)
	cd frontend && npm ci --no-audit --no-fund && npm run build

## Run the whole system on its embedded defaults: web app on http://127.0.0.1:$${PORT:-8000} and the task cluster.
run: $(STAMP) $(FRONTEND)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_stock --if-empty inventory/demo_catalog.csv
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho start

## Run the whole test suite.
test: $(STAMP) $(FRONTEND)
	$(BIN)/pytest

## Benchmark the order path against this machine's own limits; writes bench/results/ and BENCHMARKS.md.
## BENCH_QUICK=1 (or `make bench-quick`): a few seconds per scenario, to prove the harness works.
bench: $(STAMP)
	BENCH_QUICK=$(BENCH_QUICK) $(BIN)/python -m bench.run

bench-quick: $(STAMP)
	BENCH_QUICK=1 $(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
