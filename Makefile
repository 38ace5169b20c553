# mgdata: `make test` and `make repro` each work on a fresh clone (Linux, Python 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: install test test-all repro bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools

# CPU PyTorch first, as its own step: otherwise pip resolves torch from the
# registry and pulls several GB of CUDA wheels.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps tinysoundfont==0.3.7
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/pytest -q

test-all: install
	$(BIN)/pytest -q -m ""

repro: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

bench: install
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV)
