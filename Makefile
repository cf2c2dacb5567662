# moviemind: every entry point a person or CI uses. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .venv-tools
STAMP := $(VENV)/.setup-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
export PYTHONUNBUFFERED := 1

.PHONY: help setup setup-demo models index test test-fast lint fmt bench bench-check demo demo-check loadtest smoke clean eval

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

# Each check that cannot run here says SKIPPED; the last line of `make test` names every one.
# The rendered-topology test needs the images the smoke test builds, so the smoke test runs it.
REPORT := var/test-report

test: setup index lint ## every test and static check, then `make demo` as a new user runs it
	@rm -rf $(REPORT) && mkdir -p $(REPORT)
	$(PY) -m pytest tests --ignore tests/deploy/test_topology.py --skip-report $(REPORT)/pytest-skipped.txt
	set -o pipefail; bash scripts/container_smoke.sh --if-available 2>&1 | tee $(REPORT)/container-smoke.log
	$(PY) -m devstack.demo_check
	@$(PY) scripts/skipped_checks.py $(REPORT)

smoke: ## build the three images and run them hardened: TLS, failover, per-client rate limit
	bash scripts/container_smoke.sh

# The unit tests (tests/unit), without those marked slow or browser.
UNIT_TESTS = tests/unit

test-fast: setup ## unit tests only (under a minute)
	$(PY) -m pytest -q -m "not slow and not browser" $(UNIT_TESTS)

bench: setup index ## benchmarks; numbers go to docs/benchmarks/
	bash scripts/bench.sh

demo-check: setup ## `make demo` in a fresh copy of the tree: setup, serve, answer, stop (part of make test)
	$(PY) -m devstack.demo_check

bench-check: setup index ## the edge against the original design in one run; fails below 3x
	$(PY) -m benchmarks.bench_check

demo: index ## start model server + edge on loopback and open the web page
	$(PY) -m devstack.foreground

loadtest: setup index ## Locust against a local stack; report into docs/loadtests/
	$(PY) -m loadtests

fmt: setup
	$(VENV)/bin/ruff format moviemind_core edge model_server index_builder devstack loadtests tests scripts benchmarks
	$(VENV)/bin/ruff check --fix moviemind_core edge model_server index_builder devstack loadtests tests scripts benchmarks

clean:
	rm -rf var .pytest_cache

eval: setup models ## leak-free offline evaluation; report into docs/benchmarks/eval.md
	$(PY) -m index_builder eval --compare-learners --templates doc-v1,doc-v2,doc-v3 --out docs/benchmarks/eval.md
