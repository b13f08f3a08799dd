# Two commands for a fresh machine: `make dev` (run zart locally) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test bench lint system-deps system-deps-test venv clean reliability reliability-long

system-deps:
	@scripts/system-deps.sh

system-deps-test:
	@scripts/system-deps.sh --browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

## dev: local Postgres and Redis (unless configured), migrations, a worker, the API and a sample workflow
dev: system-deps venv
	$(BIN)/zart dev

## test: the same set-up, then every test against real Postgres, Redis and worker processes
test: system-deps-test venv
	$(BIN)/python -m pytest -n 2 --dist loadfile

## bench: the benchmark suite against its own Postgres (fsync on) and Redis; writes bench/RESULTS.md
bench: system-deps venv
	$(BIN)/pip install -q -e ".[test,bench]"
	$(BIN)/python -m bench

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .zart

## reliability: the fault suite at release size; reliability-long: the 5,000-execution chaos run
reliability: system-deps venv
	ZART_RELEASE=1 ZART_CHAOS_EXECUTIONS=500 ZART_STATE_MACHINE_EXAMPLES=200 ZART_EXPLAIN_ROWS=1000000 ZART_FLEET_WORKERS=24 $(BIN)/python -m pytest tests/reliability -s -p no:cacheprovider
	ZART_RELEASE=1 $(BIN)/python -m pytest -m release_only -p no:cacheprovider

reliability-long: system-deps venv
	ZART_CHAOS_EXECUTIONS=5000 $(BIN)/python -m pytest tests/reliability/test_chaos.py -s -p no:cacheprovider
