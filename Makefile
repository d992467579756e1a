# Quick start: `make demo` (set-up + the main job), `make test` (set-up + tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench-join bench-features clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/mesh --warehouse ./warehouse demo

test: $(STAMP)
	$(BIN)/ruff check mesh jobs tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

# Benchmarks (not tests): Feast and Tempo live in their own venv.
.venv-bench/.installed: pyproject.toml
	$(PY) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -e '.[bench]'
	touch .venv-bench/.installed

bench-join: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/bench_join.py $(ARGS)

bench-features: $(STAMP)
	$(BIN)/python benchmarks/bench_features.py $(ARGS)

clean:
	rm -rf $(VENV) warehouse spark-warehouse
