# The README's commands. Everything runs locally: no Google Cloud, no Leanplum.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo up down test lint unit contract e2e infra bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)          ## one sample file through the whole local pipeline, then stop
	$(PY) -m local_cloud demo

up: $(STAMP)            ## keep the local cloud running in the background
	$(PY) -m local_cloud up

down:                   ## stop it
	$(PY) -m local_cloud down

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(STAMP) lint     ## every check and every test (what CI runs)
	$(VENV)/bin/pytest

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit
contract: $(STAMP)
	$(VENV)/bin/pytest tests/contract
e2e: $(STAMP)
	$(VENV)/bin/pytest tests/e2e
infra: $(STAMP)
	$(VENV)/bin/pytest tests/infra

bench: $(STAMP)         ## validator throughput and memory, and one 1 GB gzipped shard's ingest work
	$(PY) scripts/benchmark_validator.py --repeat 2
	PYTHONPATH=. $(PY) scripts/benchmark_shard.py

clean:
	rm -rf $(VENV) .local-cloud .pytest_cache .mypy_cache .ruff_cache
