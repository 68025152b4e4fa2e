# saasodoo developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NODES ?= 3
PYTEST_ARGS ?=

export SAASODOO_NODES := $(NODES)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(PY): pyproject.toml
	@echo "[saasodoo] creating $(VENV) and installing saasodoo with its dev dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(PY)

.PHONY: venv
venv: $(PY) ## Create .venv with saasodoo and its dev dependencies

.PHONY: tools
tools: ## Build or reuse the pinned tools (Kubernetes, etcd, kwok, helm 3 and 4, netpolicy) in the cache
	@scripts/install-tools.sh

.PHONY: cluster
cluster: venv tools ## Start (or reuse) the simulated cluster and print its kubeconfig path (NODES=3)
	@PYTHON=$(abspath $(PY)) scripts/cluster.sh up

.PHONY: cluster-status
cluster-status: ## Show the simulated cluster: version, nodes, storage and ingress classes
	@scripts/cluster.sh status

.PHONY: cluster-down
cluster-down: ## Stop the simulated cluster and remove its state
	@scripts/cluster.sh down

.PHONY: demo
demo: cluster ## Newcomer's main job: bring up the simulated cluster and show it
	@scripts/cluster.sh status

.PHONY: test
test: venv tools ## Run every test: unit and cluster (starts the simulated cluster if needed)
	@PYTHON=$(abspath $(PY)) $(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## Run only the unit tests (no cluster, no helm)
	@$(PY) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff and mypy
	@$(VENV)/bin/ruff check saasodoo tests scripts
	@$(VENV)/bin/ruff format --check saasodoo tests scripts
	@$(VENV)/bin/mypy

.PHONY: clean
clean: ## Remove the virtualenv and caches in the repo (the tool cache stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
