# Sheaf: `make run` to use it, `make test` to check it. Both set themselves up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The PostgreSQL pass of `make test`: DATABASE_URL if set, else the local default server.
PG_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/postgres)
REDIS_TEST_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/15)
# Tests that start django-q2 clusters or a browser (markers in pyproject.toml) run in the SQLite
# pass only: what they check does not depend on the database, and they are the slowest tests.
# The chaos test (tests/chaos/test_chaos.py) starts clusters too but carries no marker: it checks
# claims and finishes under concurrent processes, which each database's locking decides.
PG_MARKERS := not cluster and not browser

.PHONY: install ocr-model run superuser plan test test-sqlite test-postgres check lint typecheck format clean bench

install: $(STAMP)

# OCR (documents/ocr.py) reads scans with Tesseract's "Latin" model, one model for every language
# Sheaf reads. libtesseract comes with the tesserocr wheel; the model is packaged by Debian
# (tesseract-ocr-script-latn), not on PyPI, so it is installed with apt-get as root or with
# passwordless sudo. Elsewhere Sheaf still runs: scans and images fail with a message saying OCR
# is not installed, and the OCR tests are skipped.
TESSDATA ?= $(or $(SHEAF_OCR_TESSDATA),/usr/share/tesseract-ocr/5/tessdata)
ocr-model:
	@if [ -f "$(TESSDATA)/Latin.traineddata" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then apt=""; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then apt="sudo -n"; \
	else echo "OCR unavailable: $(TESSDATA)/Latin.traineddata is missing; install Debian's tesseract-ocr-script-latn as root. Scans and images fail until then."; exit 0; fi; \
	echo "Installing Debian's tesseract-ocr-script-latn (the OCR model)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$apt apt-get install -y -qq --no-install-recommends tesseract-ocr-script-latn >/dev/null 2>&1 || \
	{ $$apt apt-get update -qq && $$apt apt-get install -y -qq --no-install-recommends tesseract-ocr-script-latn >/dev/null; } || \
	echo "OCR unavailable: apt-get could not install tesseract-ocr-script-latn. Scans and images fail until it is installed."

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Web and worker together in development mode; Ctrl-C (or SIGTERM to make) stops both within
# seconds. The trap sends one SIGTERM to each of the two, never to the whole process group: that
# signalled the shell itself, whose trap then ran again and again, and the storm of signals hung
# qcluster. Background jobs of a script ignore SIGINT, so runserver needs the SIGTERM; qcluster
# handles the first of its signals only (see batches/cluster.py). `wait` returns early when a
# trap runs, hence the loop.
run: install ocr-model
	DEBUG=1 $(BIN)/python manage.py migrate --no-input
	@echo "Sheaf on http://$(HOST):$(PORT)/ (Ctrl-C stops web and worker)"
	@DEBUG=1 $(BIN)/python manage.py qcluster --skip-checks & worker=$$!; \
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT) & web=$$!; \
	trap 'trap "" INT TERM; kill -TERM $$worker $$web 2>/dev/null' INT TERM; \
	until wait; do :; done

# The local commands of the README's Quick start, on `make run`'s database and settings (DEBUG=1:
# without it the settings want a production SECRET_KEY and ALLOWED_HOSTS).
superuser: install
	@DEBUG=1 $(BIN)/python manage.py migrate --no-input >/dev/null
	DEBUG=1 $(BIN)/python manage.py createsuperuser

# `make plan EMAIL=you@example.com PLAN=plus` sets the staff override (PLAN=auto clears it);
# without PLAN it shows the user's plan and where it comes from.
plan: install
	@if [ -z "$(EMAIL)" ]; then echo "make plan needs EMAIL, e.g. make plan EMAIL=you@example.com PLAN=plus (free, plus, growth or auto)" >&2; exit 2; fi
	@DEBUG=1 $(BIN)/python manage.py migrate --no-input >/dev/null
	DEBUG=1 $(BIN)/python manage.py plan "$(EMAIL)" $(PLAN)

# Lint and types first (a failure stops before any test runs), then every test on SQLite and,
# side by side with it, again on PostgreSQL (with Redis as the cache) when they answer, but for
# the cluster and browser tests (PG_MARKERS). The two passes share nothing (each its own
# database, SHEAF_VAR_DIR and media folders) and each is one process most of the time, so on two
# cores they take little longer than one; the PostgreSQL pass's output is printed after the
# SQLite pass's, from var/test-postgres.log.
test: install ocr-model check
	@if $(BIN)/python -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(PG_URL)" 2>/dev/null; then \
		mkdir -p var; \
		echo "PostgreSQL pass running beside the SQLite pass (its output: var/test-postgres.log, printed after)"; \
		SHEAF_VAR_DIR=var/test-postgres HYPOTHESIS_STORAGE_DIRECTORY=var/test-postgres/hypothesis $(MAKE) --no-print-directory test-postgres > var/test-postgres.log 2>&1 & pg=$$!; \
		$(MAKE) --no-print-directory test-sqlite; sqlite=$$?; \
		wait $$pg; postgres=$$?; \
		echo "--- PostgreSQL pass ---"; cat var/test-postgres.log; \
		echo "SQLite pass: exit $$sqlite; PostgreSQL pass: exit $$postgres"; \
		test $$sqlite -eq 0 && test $$postgres -eq 0; \
	else \
		echo "PostgreSQL is not reachable at $(PG_URL): skipped the PostgreSQL pass"; \
		$(MAKE) --no-print-directory test-sqlite; \
	fi

test-sqlite: install
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: install
	@if $(BIN)/python -c "import redis, sys; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()" "$(REDIS_TEST_URL)" 2>/dev/null; then \
		echo "PostgreSQL pass (cache: Redis at $(REDIS_TEST_URL))"; \
		DATABASE_URL="$(PG_URL)" REDIS_URL="$(REDIS_TEST_URL)" $(BIN)/python -m pytest -m '$(PG_MARKERS)' $(PYTEST_ARGS); \
	else \
		echo "PostgreSQL pass (cache: database)"; \
		env -u REDIS_URL DATABASE_URL="$(PG_URL)" $(BIN)/python -m pytest -m '$(PG_MARKERS)' $(PYTEST_ARGS); \
	fi

# Pipeline benchmarks on a fresh SQLite database in a temporary directory; writes BENCHMARKS.md.
# `$(BIN)/python bench/run.py --help` for PostgreSQL (--database postgres) and other options.
bench: install ocr-model
	$(BIN)/python bench/run.py

# What `make test` checks before it runs a test.
check: lint typecheck

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy with the Django and DRF plugins ([tool.mypy] in pyproject.toml). The Django plugin imports
# the settings, which fail closed without the values production supplies; any will do here.
typecheck: install
	SECRET_KEY=typecheck-only-not-a-secret ALLOWED_HOSTS=localhost $(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
