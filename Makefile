# mgdata: `make test` and `make repro` each work on a fresh clone (Linux, Python 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXTRAS := $(VENV)/.extras-stamp
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: install install-extras constraints lint format test test-dispatch test-slow faults test-all repro report bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools

# CPU PyTorch first, as its own step: otherwise pip resolves torch from the
# registry and pulls several GB of CUDA wheels.
# Every other package at the exact version in constraints.txt: other versions run other kernels and change the
# last bits of embeddings, codebooks and models (README, "Same bytes on every machine").
# musicnn: the trained MusiCNN/VGG checkpoints (mgdata.musicnn reads them without TensorFlow), --no-deps because
# its metadata asks for tensorflow and numpy<1.17, neither of which it needs here.
$(STAMP): pyproject.toml constraints.txt Makefile | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps tinysoundfont==0.3.7
	$(BIN)/pip install --quiet --no-deps musicnn==0.1.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# What the slow suites need: Ray (executor), moto + dvc-s3 (S3 remote), selenium + Debian chromium (report).
$(EXTRAS): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,ray,remote,browser]"
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	touch $(EXTRAS)

install-extras: $(EXTRAS)

# After a deliberate upgrade: the versions of the extras venv become the new constraints (then rerun dvc repro).
constraints: install-extras
	{ sed -n '1,/^# (`make constraints`)/p' constraints.txt; \
	  $(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//' | LC_ALL=C sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install
	$(BIN)/pytest -q

# The fast tests once more at another SIMD level (mgdata.dispatch): a test that depends on the CPU's
# instruction set then fails on every machine, not only on some.
test-dispatch: install
	MGDATA_DISPATCH=sse42 $(BIN)/pytest -q

# The slow suites CI runs: Ray executor, fault injection, S3 remote, Hub round trip, browser, dvc exp.
test-slow: install-extras
	$(BIN)/pytest -q -m slow

faults: install-extras
	$(BIN)/pytest -q -m slow tests/faults

test-all: install-extras
	$(BIN)/pytest -q -m ""

repro: install
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro || { \
	  echo "dvc repro failed. If it says the lock .dvc/tmp/rwlock is held after an interrupted run" \
	       "and no dvc process is running, delete .dvc/tmp/rwlock and rerun (see README, Recovering)." >&2; exit 1; }

report: install
	$(BIN)/mgdata report --out reports

bench: install
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV)
