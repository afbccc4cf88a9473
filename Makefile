# smollab — set-up, the offline default study, and the tests.
#   make demo   # venv + pinned CPU torch + package + system packages, then the default study
#   make test   # the same set-up, then the test suite
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
DATA    ?= $(abspath ../shared/data)
PYTEST_ARGS ?=
# the default suite runs in this many pytest-xdist worker processes (most tests wait on one
# core for a CLI subprocess or a tiny model; 1 runs it in one process)
TEST_WORKERS ?= 2

.PHONY: setup system-deps demo test test-slow test-gpu lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# The pinned CPU torch goes in first: a plain `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev,agent]'
	touch $@

setup: $(VENV)/.installed

system-deps:
	@bash scripts/install_system_deps.sh

demo: setup system-deps
	$(BIN)/smollab run problems/multiplication.md

test: setup system-deps
	SMOLLAB_DATA_DIR=$${SMOLLAB_DATA_DIR:-$(DATA)} $(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-slow: setup
	SMOLLAB_DATA_DIR=$${SMOLLAB_DATA_DIR:-$(DATA)} $(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

# The opt-in CUDA tests, on a GPU machine: run with a Python whose torch is a CUDA build and
# which has smollab's dependencies (not the CPU venv above), e.g. `make test-gpu PY=python3`.
test-gpu:
	SMOLLAB_DATA_DIR=$${SMOLLAB_DATA_DIR:-$(DATA)} PYTHONPATH=src $(PY) -m pytest -q -m gpu tests/gpu $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
