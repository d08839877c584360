# Everything runs inside .venv, created and filled on first use from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make run HOST=0.0.0.0 PORT=8001
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: migrate and serve on $(HOST):$(PORT), 127.0.0.1:8000 unless given (embedded PostgreSQL
## under ./var/ unless DATABASE_URL is set)
run: $(STAMP)
	$(BIN)/accounts-api serve --host $(HOST) --port $(PORT)

## test: the whole test suite (embedded PostgreSQL unless DATABASE_URL is set), on two
## workers, each test file on one of them, each worker with a database of its own
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## bench: the benchmarks of docs/benchmarks.md, with wrk (Debian: apt-get install wrk): the
## service against the bare handler, one hot account, then the lists at BENCH_ACCOUNTS accounts
## (seeded once under var/bench-scale, kept: 10 million take about 20 minutes and a few GB)
BENCH_ACCOUNTS ?= 10000000
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/runtime.py
	$(BIN)/python bench/hot.py
	$(BIN)/python bench/scale.py --accounts $(BENCH_ACCOUNTS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src bench

clean:
	rm -rf $(VENV) var/test-pg
