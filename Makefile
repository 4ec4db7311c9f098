# Two commands for a fresh machine: `make run` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app memberplatform
PYTHON ?= python3
DEMO_PASSWORD ?= union-demo-2020
HTMX_VERSION := $(shell sed -n 's/.*"htmx.org": "\(.*\)".*/\1/p' package.json)

.PHONY: install assets translations run test lint format i18n bench clean

install: $(VENV)/.installed assets translations

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# htmx from the npm package htmx.org (pinned in package.json), copied into static/vendor/.
assets: static/vendor/htmx.min.js

static/vendor/htmx.min.js: package.json
	npm install --no-audit --no-fund --no-package-lock --silent
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js

translations: $(VENV)/.installed
	@for dir in $$(find memberplatform -type d -name translations); do \
		$(VENV)/bin/pybabel -q compile -d $$dir || exit 1; done

# Re-extract messages into each catalogue (then translate the new zh_CN entries).
i18n: $(VENV)/.installed
	$(PY) scripts/i18n.py

run: install
	$(FLASK) db-upgrade
	$(FLASK) seed-demo --password '$(DEMO_PASSWORD)'
	$(FLASK) run --host 127.0.0.1 --port 5000

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -r memberplatform -q

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The fault tests restart PostgreSQL and kill gunicorn workers: they run on their own,
# after the rest of the suite (two processes in parallel).
test: install lint
	$(PY) -m pytest -n 2 --ignore=tests/faults $(PYTEST_ARGS)
	$(PY) -m pytest tests/faults $(PYTEST_ARGS)

# Pages and rushes over HTTP against gunicorn on SQLite and PostgreSQL (see README, Performance).
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
