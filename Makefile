# Two commands on a fresh machine: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/campaign
DEMO_CUSTOMERS ?= 20000
HOST ?= 127.0.0.1:8000

.PHONY: install run test test-sqlite test-postgres lint demo clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# Laptop demo on embedded defaults: SQLite, a Celery worker beside the dev
# server on kombu's filesystem broker (var/broker/, no service to install),
# seeded data. The worker's log is var/worker.log; it stops with the server
# (Ctrl-C) or when any step fails.
WORKER_CONCURRENCY ?= 2
run: export CELERY_BROKER_URL ?= filesystem://
run: export DEBUG ?= true
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_admin
	$(PY) manage.py seed_demo --customers $(DEMO_CUSTOMERS) --seed 7 --if-empty
	@set -e; \
	$(PY) -m celery -A config worker --concurrency $(WORKER_CONCURRENCY) --loglevel INFO \
		>var/worker.log 2>&1 & worker=$$!; \
	trap 'exit 130' INT TERM; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker 2>/dev/null; echo "worker stopped"' EXIT; \
	echo "Celery worker $$worker started (log: var/worker.log)"; \
	$(PY) manage.py demo_pipeline; \
	$(PY) manage.py runserver $(HOST)

# SQLite pass (everything but the service-backed integration tests), then the
# database tests again on PostgreSQL with the integration tests.
test: install test-sqlite test-postgres

test-sqlite:
	$(PY) -m pytest -m "not integration and not postgres" -q

test-postgres:
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(PG_TEST_URL)'.rsplit('/',1)[0]+'/postgres', connect_timeout=3).close()" 2>/dev/null; then \
		DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -q -p no:cacheprovider \
			tests/core tests/marketing tests/experiments tests/modelling tests/jobs tests/api tests/integration --ignore=tests/experiments/stats; \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL at $(PG_TEST_URL) is not reachable: CI requires it"; exit 1; \
	else \
		echo "PostgreSQL not reachable: skipped the PostgreSQL pass (CI runs it)"; \
	fi

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf var/ .pytest_cache
