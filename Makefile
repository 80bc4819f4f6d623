# Two commands set everything up on a new machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FRONTEND := frontend/dist/index.html

.PHONY: run test bench lint install

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

lint: $(STAMP)
	$(BIN)/ruff check .
