# Two commands set everything up on a new machine: `make run` and `make test`.
# Each first installs the Debian packages of system-packages.txt that the machine lacks
# (bin/system-packages: nothing to do costs a few milliseconds), then the Python
# virtualenv (.venv) and the React page's build (frontend/dist), each only when out of date.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FRONTEND := frontend/dist/index.html
NODE_MODULES := frontend/node_modules/.package-lock.json

# collectstatic hashes and compresses every static file (23-56 s): it runs again only when a
# static source is newer than its stamp: the page's build, an app's static/ folder, or the
# installed packages (the admin's and the API docs' files come from them).
VAR_DIR ?= var
STATIC_ROOT ?= $(VAR_DIR)/staticfiles
STATIC_STAMP = $(STATIC_ROOT)/.collected
STATIC_SOURCES = $(shell find frontend/dist static */static -type f 2>/dev/null)

.PHONY: run dev serve-setup test faults bench bench-quick lint install system-packages lock image image-test roles-doc frontend-types lint-frontend

# requirements.txt and requirements-dev.txt declare what the project asks for; the locks
# name every package, direct and transitive, with its hashes (`make lock` regenerates them;
# tests/fast/test_locked_installs.py fails when they disagree). .venv and the image install the locks.
LOCKS := requirements.lock requirements-dev.lock
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock"

## Install the Debian packages the project needs that this machine lacks (apt as root, else through sudo).
system-packages:
	@bin/system-packages

$(STAMP): $(LOCKS) | system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $(STAMP)

install: $(STAMP)

## Regenerate the locks from requirements*.txt (uv, pinned in requirements-dev.txt), keeping
## every version the declared pins leave free as it is locked.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install --quiet "$$(grep '^uv==' requirements-dev.txt)"
	$(UV_COMPILE) requirements.txt -o requirements.lock
	$(UV_COMPILE) requirements-dev.txt -c requirements.lock -o requirements-dev.lock

# The shopper's React page, built with Vite (Node.js and npm from the machine).
$(NODE_MODULES): frontend/package.json frontend/package-lock.json | system-packages
	cd frontend && npm ci --no-audit --no-fund

$(FRONTEND): $(NODE_MODULES) frontend/index.html frontend/vite.config.js frontend/tsconfig.json frontend/eslint.config.js $(shell find frontend/src -type f)
	cd frontend && npm run build

$(STATIC_STAMP): $(STAMP) $(FRONTEND) $(STATIC_SOURCES)
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	touch $(STATIC_STAMP)

# What serving needs first: the database migrated, the demo catalog, an admin, the static files.
serve-setup: system-packages $(STAMP) $(FRONTEND) $(STATIC_STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_stock --if-empty inventory/demo_catalog.csv
	$(BIN)/python manage.py ensure_admin

## Run the whole system on its embedded defaults: nginx on http://127.0.0.1:$${PORT:-8000} in front of the
## shop's and the back office's gunicorn pools, and the task cluster (Procfile). Ctrl-C stops them all (bin/run), exit 0.
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

## Write docs/ROLES.md from staff/roles.py and the permission matrix.
roles-doc: $(STAMP)
	$(BIN)/python -m tests.support.roles_doc

## The shop's container image, order-backoffice:latest, with podman or docker (bin/image): base
## images it cannot pull are built here as local stand-ins (debootstrap).
image: system-packages
	bin/image

## The image test at full length: builds the image, runs migrate twice at once, then web,
## backoffice, cluster and nginx from it against PostgreSQL and Redis, where a shopper buys
## through 3-D Secure in Chromium, and compose.yaml with podman-compose (`make test` runs it bounded).
image-test: system-packages $(STAMP)
	IMAGE_TEST_PROFILE=full $(BIN)/pytest -n 0 -m image

## Every static check: ruff, the layer contracts, mypy, the migrations, then the shop page's.
lint: $(STAMP) lint-frontend
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run --verbosity 0

# The shop page's types come from the API's OpenAPI schema (openapi-typescript), so a field
# renamed in a serializer fails `tsc` instead of the shopper's page.
API_TYPES := frontend/src/api-schema.ts
define write_api_types
	$(BIN)/python manage.py spectacular --format openapi-json --file $(1).json 2>/dev/null
	cd frontend && npx openapi-typescript $(abspath $(1)).json --output $(abspath $(1)).ts >/dev/null
endef

## Regenerate the shop page's API types (frontend/src/api-schema.ts) from /api/schema/.
frontend-types: $(STAMP) $(NODE_MODULES)
	mkdir -p $(VAR_DIR)
	$(call write_api_types,$(VAR_DIR)/api-schema)
	mv $(VAR_DIR)/api-schema.ts $(API_TYPES)

## The shop page's checks: its API types up to date with the schema, tsc, ESLint, vitest.
lint-frontend: $(STAMP) $(NODE_MODULES)
	mkdir -p $(VAR_DIR)
	$(call write_api_types,$(VAR_DIR)/api-schema)
	@cmp -s $(VAR_DIR)/api-schema.ts $(API_TYPES) || { echo "$(API_TYPES) is out of date with the API's schema: run make frontend-types"; exit 1; }
	cd frontend && npx tsc && npx eslint --max-warnings 0 . && npx vitest run
