# The README's two commands: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench lint install install-dev services clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make demo: app, worker and clock on SQLite (and an embedded Redis unless REDIS_URL is set).
demo: install
	$(PY) scripts/demo.py

## make services: make sure Redis and PostgreSQL answer (starts them if installed but down).
services: install-dev
	VENV=$(VENV) bash scripts/ensure_services.sh

## make test: lint, then every test against the real Redis and PostgreSQL.
test: services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## make bench: speed and memory, measured (never asserted in tests); results in .bench/
bench: install-dev
	$(PY) benchmarks/hubspot_emulator.py
	$(PY) benchmarks/contacts_sync.py
	$(PY) benchmarks/products_sync.py
	$(PY) benchmarks/invoices_sync.py
	$(PY) benchmarks/invoices_to_qbo.py

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
