# Two commands on a fresh machine: `make demo` (the book's experiment) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed on its own first: on these machines `torch==2.13.0` is the CPU build on disk.
TORCH_SPEC ?= torch==2.13.0

# MovieLens-100K: a sibling shared/datasets copy is used when present, else the cache/download.
ifneq ($(wildcard ../shared/datasets/ml-100k/u.data),)
export SEQREC_DATA_DIR ?= $(abspath ../shared/datasets/ml-100k)
endif

.PHONY: install demo test lint bench results
install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev,serve,export]"
	touch $@

demo: install
	$(BIN)/seqrec train --preset d2l --seed 0 --out runs/d2l

# the suite in TEST_WORKERS processes (pytest-xdist): about 4.5 minutes on 2 cores, against 9 in one
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check src tests benchmarks scripts

bench: install
	$(BIN)/python benchmarks/bench_train.py

results: install
	$(BIN)/python scripts/reproduce_book.py
