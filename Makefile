# chronorec: `make demo` and `make test` are all a new user needs.
# torch is pinned and installed FIRST (a CPU build): letting pip resolve torch from the
# package's own requirements can pull multi-GB CUDA builds. See DEVELOPERS.md.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
BENCH_ARGS ?=

.PHONY: venv install install-dev demo test lint bench clean

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $(TORCH_PIP_ARGS) "torch==$(TORCH_VERSION)"

install: venv
	$(BIN)/python -m pip install -e .

install-dev: venv
	$(BIN)/python -m pip install -e '.[dev]'

demo: install
	$(BIN)/chronorec demo

test: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/chronorec benchmark $(BENCH_ARGS)

clean:
	rm -rf build dist src/*.egg-info .pytest_cache .ruff_cache
