# moviemind: every entry point a person or CI uses. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .venv-tools
STAMP := $(VENV)/.setup-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
export PYTHONUNBUFFERED := 1

.PHONY: help setup setup-demo models index test test-fast lint fmt bench demo loadtest smoke clean eval

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh full
	touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh demo
	touch $@

setup: $(STAMP) ## create .venv with every extra, obtain the models
setup-demo: $(DEMO_STAMP) ## install only what `make demo` needs

models: $(DEMO_STAMP) ## export MiniLM to ONNX (fp32 + int8) under var/models/
	$(PY) -m index_builder models

index: models ## build the sample catalog index into var/index/
	$(PY) -m index_builder build --out var/index

lint: setup ## static checks: ruff, terraform fmt, checkov, hadolint
	bash scripts/lint.sh

test: setup index lint ## every test and static check
	$(PY) -m pytest tests
	bash scripts/container_smoke.sh --if-available

smoke: ## build the three images and run them hardened: TLS, failover, per-client rate limit
	bash scripts/container_smoke.sh

# The unit tests (tests/unit), without those marked slow or browser.
UNIT_TESTS = tests/unit

test-fast: setup ## unit tests only (under a minute)
	$(PY) -m pytest -q -m "not slow and not browser" $(UNIT_TESTS)

bench: setup index ## benchmarks; numbers go to docs/benchmarks/
	bash scripts/bench.sh

demo: index ## start model server + edge on loopback and open the web page
	$(PY) scripts/demo.py

loadtest: setup index ## Locust against a local stack; report into docs/loadtests/
	$(PY) -m loadtests

fmt: setup
	$(VENV)/bin/ruff format moviemind_core edge model_server index_builder devstack loadtests tests scripts benchmarks
	$(VENV)/bin/ruff check --fix moviemind_core edge model_server index_builder devstack loadtests tests scripts benchmarks

clean:
	rm -rf var .pytest_cache

eval: setup models ## leak-free offline evaluation; report into docs/benchmarks/eval.md
	$(PY) -m index_builder eval --compare-learners --templates doc-v1,doc-v2,doc-v3 --out docs/benchmarks/eval.md
