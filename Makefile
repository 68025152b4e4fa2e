# saasodoo developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NODES ?= 3
PYTEST_ARGS ?=

HELM ?= 4
ID ?=
EMAIL ?=
PLAN ?= starter

export SAASODOO_NODES := $(NODES)
# saasodoo commands (demo, tenant-*) run against the simulated cluster with the pinned
# helm $(HELM), unless SAASODOO_KUBECONFIG / KUBECONFIG / SAASODOO_HELM_BINARY are set.
# (Lazy: only evaluated by the targets that use it; `make test` sets up its own.)
# The simulated cluster's Traefik listens on 127.0.0.1:$(INGRESS_HTTPS_PORT): every address shown
# carries that port (SAASODOO_PUBLIC_URL).
INGRESS_HTTPS_PORT := $(or $(SAASODOO_INGRESS_HTTPS_PORT),8443)
SAASODOO_ENV = $(if $(SAASODOO_KUBECONFIG)$(KUBECONFIG),,SAASODOO_KUBECONFIG=$(shell scripts/cluster.sh kubeconfig) \
	SAASODOO_PUBLIC_URL='$(or $(SAASODOO_PUBLIC_URL),https://{host}:$(INGRESS_HTTPS_PORT))') \
	SAASODOO_HELM_BINARY=$(or $(SAASODOO_HELM_BINARY),$(shell scripts/install-tools.sh --env | sed -n 's/^SAASODOO_HELM$(HELM)=//p')) \
	SAASODOO_OPERATOR=$(or $(SAASODOO_OPERATOR),$(shell scripts/operator.sh status >/dev/null 2>&1 && echo 1 || echo 0))
# With the local operator running (make operator, make demo), tenant changes go through
# OdooTenant objects and the operator runs helm (SAASODOO_OPERATOR=1).
SAASODOO = $(SAASODOO_ENV) $(VENV)/bin/saasodoo

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Where things live (README.md, Layout): saasodoo/core pure rules (spec, plans, values, record,"
	@echo "reconcile states); saasodoo/adapters the only rooms that talk to helm, Kubernetes, S3, Supabase,"
	@echo "DNS; record.py the tenant's record; tenants.py the lifecycle and its checks; reconciler.py one"
	@echo "tenant's ensure; fleet.py many tenants; backups/ (service, jobs, restore, results); entry points"
	@echo "cli/, api/, web/, app.py. charts/odoo-tenant/templates/_<concern>.tpl: helpers named after their file."

$(PY): pyproject.toml
	@echo "[saasodoo] creating $(VENV) and installing saasodoo with its dev dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(PY)

.PHONY: system
system: ## Install the Debian packages the tests and the demo use (scripts/apt-packages.txt; needs root or sudo)
	@scripts/install-apt.sh

.PHONY: venv
venv: $(PY) ## Create .venv with saasodoo and its dev dependencies

.PHONY: tools
tools: ## Build or reuse the pinned tools and the real node's images in the cache (see README)
	@# The images (images/build.sh: Debian root filesystems, network and disk bound) build
	@# beside the Go tools (CPU bound); those made from tool binaries follow at cluster start.
	@if [[ "$${SAASODOO_REAL_NODES:-1}" != 0 ]]; then \
	  log=$${TMPDIR:-/tmp}/saasodoo-images.$$$$.log; \
	  images/build.sh pause postgres odoo busybox >"$$log" 2>&1 & images=$$!; \
	  scripts/install-tools.sh || { kill $$images 2>/dev/null; wait $$images; exit 1; }; \
	  if ! wait $$images; then cat "$$log" >&2; rm -f "$$log"; echo "[saasodoo] images: build FAILED (above)" >&2; exit 1; fi; \
	  grep -v '=' "$$log" >&2 || true; rm -f "$$log"; \
	else scripts/install-tools.sh; fi

.PHONY: cluster
cluster: system venv tools ## Start (or reuse) the simulated cluster and print its kubeconfig path (NODES=3)
	@PYTHON=$(abspath $(PY)) scripts/cluster.sh up

.PHONY: cluster-status
cluster-status: ## Show the simulated cluster: version, nodes, storage and ingress classes
	@scripts/cluster.sh status

.PHONY: cluster-down
cluster-down: ## Stop the simulated cluster and remove its state
	@scripts/cluster.sh down

.PHONY: operator operator-stop
operator: cluster ## Start the OdooTenant operator beside the simulated cluster (log in the cluster's state dir); adopts older tenants
	@$(SAASODOO_ENV) SAASODOO=$(abspath $(VENV))/bin/saasodoo scripts/operator.sh start

operator-stop: ## Stop the local operator (graceful: its Lease released)
	@scripts/operator.sh stop

.PHONY: deploy
deploy: tools ## Install or upgrade the platform (charts/saasodoo) into the current kubeconfig's cluster: make deploy VALUES=my-values.yaml [DEPLOY_ARGS=--dry-run]
	@test -n "$(VALUES)" || { echo "usage: make deploy VALUES=my-values.yaml [DEPLOY_ARGS=--dry-run]" >&2; exit 2; }
	@scripts/deploy.sh --values $(VALUES) $(DEPLOY_ARGS)

.PHONY: demo
demo: cluster ## Newcomer's main job: demo tenants (one running for real on the real node), status, spread, URL
	@$(SAASODOO_ENV) SAASODOO=$(abspath $(VENV))/bin/saasodoo scripts/demo.sh

.PHONY: tenant-list
tenant-list: venv ## List tenants with their status
	@$(SAASODOO) tenant list

.PHONY: tenant-create
tenant-create: venv ## Create a tenant: make tenant-create ID=acme EMAIL=admin@acme.example [PLAN=starter]
	@test -n "$(ID)" -a -n "$(EMAIL)" || { echo "usage: make tenant-create ID=<subdomain> EMAIL=<admin e-mail> [PLAN=starter]"; exit 2; }
	@$(SAASODOO) tenant create $(ID) --email $(EMAIL) --plan $(PLAN)

.PHONY: tenant-status
tenant-status: venv ## Status of one tenant: make tenant-status ID=acme
	@test -n "$(ID)" || { echo "usage: make tenant-status ID=<tenant>"; exit 2; }
	@$(SAASODOO) tenant status $(ID)

.PHONY: tenant-domains
tenant-domains: venv ## Custom domains of a tenant and the DNS record to create: make tenant-domains ID=acme
	@test -n "$(ID)" || { echo "usage: make tenant-domains ID=<tenant>"; exit 2; }
	@$(SAASODOO) tenant domains $(ID)

.PHONY: tenant-delete
tenant-delete: venv ## Delete a tenant, its final backup kept first: make tenant-delete ID=acme [NO_FINAL_BACKUP=1]
	@test -n "$(ID)" || { echo "usage: make tenant-delete ID=<tenant> [NO_FINAL_BACKUP=1]"; exit 2; }
	@$(SAASODOO) tenant delete $(ID) $(if $(NO_FINAL_BACKUP),--no-final-backup)

.PHONY: backup-create backup-list backup-restore backup-verify backup-prune
backup-create: venv ## Back a tenant up now: make backup-create ID=acme
	@test -n "$(ID)" || { echo "usage: make backup-create ID=<tenant>"; exit 2; }
	@$(SAASODOO) backup create $(ID)

backup-list: venv ## List a tenant's backups: make backup-list ID=acme
	@test -n "$(ID)" || { echo "usage: make backup-list ID=<tenant>"; exit 2; }
	@$(SAASODOO) backup list $(ID)

backup-restore: venv ## Restore a backup: make backup-restore ID=acme [BACKUP=<zip name>]
	@test -n "$(ID)" || { echo "usage: make backup-restore ID=<tenant> [BACKUP=<zip name>]"; exit 2; }
	@$(SAASODOO) backup restore $(ID) $(BACKUP) --yes

backup-verify: venv ## Restore the newest (or BACKUP) into a scratch database and check it: make backup-verify ID=acme
	@test -n "$(ID)" || { echo "usage: make backup-verify ID=<tenant> [BACKUP=<zip name>]"; exit 2; }
	@$(SAASODOO) backup verify $(ID) $(BACKUP)

backup-prune: venv ## Apply retention: make backup-prune ID=acme [ARGS=--dry-run]
	@test -n "$(ID)" || { echo "usage: make backup-prune ID=<tenant> [ARGS=--dry-run]"; exit 2; }
	@$(SAASODOO) backup prune $(ID) $(ARGS)

.PHONY: fleet-ensure fleet-upgrade
fleet-ensure: venv ## Reconcile every tenant to its spec (FORCE=1: also unmanaged/stalled ones)
	@$(SAASODOO) fleet ensure $(if $(FORCE),--force)

fleet-upgrade: venv ## Upgrade tenants: make fleet-upgrade IMAGE_TAG=18.0-20251201 [ODOO_VERSION= CHART= CHART_VERSION= CANARIES=1 MAX_FAILURES=0] (same Odoo series only)
	@$(SAASODOO) fleet upgrade $(if $(ODOO_VERSION),--odoo-version $(ODOO_VERSION)) $(if $(IMAGE_TAG),--odoo-image-tag $(IMAGE_TAG)) $(if $(CHART),--chart $(CHART)) $(if $(CHART_VERSION),--chart-version $(CHART_VERSION)) --canaries $(or $(CANARIES),1) --max-failures $(or $(MAX_FAILURES),0)

.PHONY: distribution
distribution: venv ## Tenants per node
	@$(SAASODOO) cluster distribution

AUTH ?=
API_PORT = $(or $(PORT),8000)
# AUTH=gotrue: the real Supabase Auth server (GoTrue + PostgreSQL + nginx, scripts/gotrue.py)
# runs for as long as the API does, and the API uses it.
GOTRUE_RUN = $(if $(filter gotrue,$(AUTH)),$(PY) scripts/gotrue.py --site-url http://127.0.0.1:$(API_PORT) run --)

.PHONY: api
api: venv $(if $(filter gotrue,$(AUTH)),gotrue-tool) ## Serve the API and web UI on 127.0.0.1:$(PORT) (dev auth; AUTH=gotrue: real Supabase Auth; or SAASODOO_API_SUPABASE_URL)
	@$(SAASODOO_ENV) SAASODOO_API_COOKIE_SECURE=$${SAASODOO_API_COOKIE_SECURE:-false} $(GOTRUE_RUN) $(VENV)/bin/waitress-serve --host 127.0.0.1 --port $(API_PORT) --threads 8 --max-request-body-size $$(( $${SAASODOO_API_IMPORT_MAX_BYTES:-1073741824} + 1048576 )) --call saasodoo.app:create_app

.PHONY: gotrue gotrue-tool
gotrue-tool:
	@scripts/install-tools.sh gotrue

gotrue: venv gotrue-tool ## Run the real Supabase Auth (GoTrue) on 127.0.0.1:54321/auth/v1 until Ctrl-C; prints the API settings
	@$(PY) scripts/gotrue.py --site-url http://127.0.0.1:$(API_PORT) serve

.PHONY: test
test: system venv ## Run every test (installs Debian packages, venv, tools and images first; starts the clusters; three lanes side by side, scripts/test.sh)
	@# scripts/test.sh --build: the tools (scripts/install-tools.sh) and the real node's images
	@# (images/build.sh) as `make tools` builds them, staged: the node lane starts once its own
	@# tools and the images are in, the sim lanes once every tool is.
	@PYTHON=$(abspath $(PY)) scripts/test.sh --build $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## Run only the unit tests (no cluster, no helm)
	@$(PY) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff, mypy, import-linter (.importlinter: layers, pure core, clients only in adapters), vermin
	@$(VENV)/bin/ruff check saasodoo tests scripts bench charts/odoo-tenant/files
	@$(VENV)/bin/ruff format --check saasodoo tests scripts bench charts/odoo-tenant/files
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports --no-cache
	@$(VENV)/bin/vermin $(VERMIN_ARGS) charts/odoo-tenant/files

# The chart's in-pod programs run on the Odoo images' Python (3.10 in odoo:17.0): vermin fails on
# anything newer. `str.decode` is excluded: vermin cannot tell bytes.decode (fine) from it.
VERMIN_ARGS := -t=3.10- --violations --no-tips --eval-annotations --exclude str.decode

CRD_DIR := saasodoo/crds

.PHONY: crd
crd: venv ## Write the CRDs (OdooTenant and the request kinds) into $(CRD_DIR) from saasodoo/core; a unit test fails on drift
	@for f in $$($(PY) -m saasodoo.core.operations); do \
	  $(PY) -m saasodoo.core.operations $$f > $(CRD_DIR)/$$f.tmp && mv $(CRD_DIR)/$$f.tmp $(CRD_DIR)/$$f \
	  && echo "[saasodoo] wrote $(CRD_DIR)/$$f" || exit 1; \
	done

.PHONY: bench
bench: system venv tools ## Benchmarks on clusters of their own (kwok nodes, the operator at scale, then a real node); writes docs/benchmarks.md (BENCH_ARGS=--help)
	@$(PY) bench/run.py $(BENCH_ARGS)
	@$(PY) bench/operator.py
	@$(PY) bench/realnode.py

.PHONY: bench-operator
bench-operator: system venv tools ## Only the operator's part: 1,000 idle OdooTenants (memory, start-up, requests per sweep), tenant list, spec change -> helm, fleet upgrade vs bare helm, takeover
	@$(PY) bench/operator.py $(BENCH_ARGS)

.PHONY: bench-realnode
bench-realnode: system venv tools ## Only the real node's part: 5 tenants, create -> login through Traefik, idle cost
	@$(PY) bench/realnode.py $(BENCH_ARGS)

.PHONY: bench-odoo
bench-odoo: venv ## Time the real Odoo 18 (init, backup, restore); writes its section of docs/benchmarks.md
	@$(PY) bench/odoo.py $(BENCH_ARGS)

.PHONY: clean
clean: ## Remove the virtualenv and caches in the repo (the tool cache stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
