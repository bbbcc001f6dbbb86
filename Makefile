# Two commands on a fresh machine: `make run` (the whole system, demo data, embedded
# defaults) and `make test` (the whole suite, with the quality gates). Both install what
# they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Tests run against the real PostgreSQL and Redis on this machine.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/genemarket
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run test lint typecheck pytest bench fuzz slither clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

run: install
	DJANGO_SETTINGS_MODULE=config.settings.dev $(PY) manage.py runstack

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

pytest: install
	scripts/ensure-services.sh
	scripts/ensure-browser.sh
	scripts/ensure-ssh-keygen.sh
	scripts/ensure-htslib-test.sh
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) \
	  $(BIN)/pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

test: lint typecheck pytest

# Benchmarks print tables of ratios against anchors measured in the same run (not in CI).
bench: install
	command -v nginx >/dev/null && command -v bcftools >/dev/null && command -v bgzip >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx bcftools tabix)
	$(PY) bench/crypt4gh_throughput.py
	$(PY) bench/grant_latency.py
	$(PY) bench/download.py
	$(PY) bench/ingest.py
	$(PY) bench/tiers.py
	$(PY) bench/htsget.py
	scripts/ensure-services.sh
	$(PY) bench/gas.py
	$(PY) bench/indexer.py
	$(PY) bench/pipeline.py
	$(PY) bench/catalogue.py
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(PY) bench/beacon.py
	$(PY) bench/load.py
	$(PY) bench/beacon_privacy.py

# About twenty-five minutes, not in CI: hypothesis with many examples (schemathesis with 20
# new random inputs per operation), then atheris on the format validators, the Crypt4GH
# parsers and the secret key file parser (no crash, no hang: -timeout stops a slow input;
# no refusal quoting the key file).
FUZZ_SECONDS ?= 300
fuzz: install
	scripts/ensure-services.sh
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-fuzz.txt
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) FUZZ_EXAMPLES=2000 \
	  $(BIN)/pytest -p no:cacheprovider tests/fuzz
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) FUZZ_EXAMPLES=100 \
	  $(BIN)/pytest -p no:cacheprovider tests/faults/test_upload_cuts.py
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) FUZZ_EXAMPLES=20 \
	  $(BIN)/pytest -p no:cacheprovider tests/security/test_api_fuzz.py
	$(PY) fuzz/run.py formats -max_total_time=$(FUZZ_SECONDS) -timeout=10
	$(PY) fuzz/run.py crypt4gh -max_total_time=$(FUZZ_SECONDS) -timeout=10
	$(PY) fuzz/run.py keyfile -max_total_time=$(FUZZ_SECONDS) -timeout=10 -dict=fuzz/keyfile.dict

# Slither on the contracts (not in CI), in its own virtualenv; fails on any high or medium
# finding that ledger/contracts/SECURITY.md does not explain.
slither: node_modules/.installed
	test -x var/slither-venv/bin/python || $(PYTHON) -m venv var/slither-venv
	var/slither-venv/bin/pip install --quiet --disable-pip-version-check -r requirements-slither.txt
	var/slither-venv/bin/python scripts/run_slither.py

clean:
	rm -rf $(VENV) node_modules var .mypy_cache .ruff_cache .pytest_cache .coverage
