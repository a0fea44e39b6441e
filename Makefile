# aimctl developer entry points. `make dev` and `make test` are the two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
IMG ?= aimctl:dev
KIND_CLUSTER ?= aimctl
DEV_DIR ?= .dev
NAMESPACE ?= aimctl-system
# deploy/undeploy talk to *your* cluster (kind, or whatever the current context is) with the
# kubectl on PATH; any kubectl >= 1.21 renders manifests/. The tests use the pinned one, which
# `make deploy KUBECTL=<asset dir>/kubectl` uses too (docs/deployment.md).
KUBECTL ?= kubectl
PYTEST_ARGS ?=
# `make dev` runs the caches' Redis on a real kubelet node (root on Linux); REAL_NODE=0: kwok only.
REAL_NODE ?= 1

.PHONY: install control-plane real-node helm promtool redis-server lint test test-unit test-integration manifests check-manifests run dev dev-down \
        docker-build kind-up kind-down kind-load deploy undeploy bench clean

# Installs come from the hash-pinned locks in requirements/ (regenerate: bash requirements/lock.sh),
# then aimctl itself, editable, with --no-deps (its dependencies are the locked ones) and
# --no-build-isolation (the locked setuptools builds it, so nothing unhashed is fetched).
# An aimctl.egg-info left in the checkout by an older setuptools would shadow the installed
# metadata (entry points) whenever the repository root is on sys.path, so it goes first.
PIP_LOCKED := $(BIN)/pip install -q --require-hashes
PIP_EDITABLE := rm -rf aimctl.egg-info && $(BIN)/pip install -q --no-deps --no-build-isolation -e .

$(BIN)/aimctl: pyproject.toml requirements/pip.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_LOCKED) -r requirements/pip.txt
	$(PIP_LOCKED) -r requirements/dev.txt
	$(PIP_EDITABLE)
	touch $@

install: $(BIN)/aimctl ## Create the virtualenv and install aimctl with its dev tools (from the lock).

control-plane: ## Build (or find in ~/.cache/aimctl) the pinned kube-apiserver, etcd, kwok, ... binaries.
	bash hack/control-plane.sh

real-node: ## Build (or find) the real node's kubelet, kube-proxy, CoreDNS, local-path-provisioner; install containerd & co from Debian (root).
	bash hack/real-node.sh

helm: ## Build (or find in ~/.cache/aimctl) the pinned helm (the chart tests).
	bash hack/helm.sh

promtool: ## Build (or find in ~/.cache/aimctl) the pinned promtool (Prometheus 3.16.0) and the Prometheus Operator CRDs.
	bash hack/promtool.sh

redis-server: ## Install Debian's redis-server if missing (the data-plane tests run the real one).
	bash hack/redis-server.sh

lint: install ## ruff and mypy --strict.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint control-plane redis-server real-node helm promtool check-manifests ## Lint, then unit and integration tests against a real control plane.
	KUBEBUILDER_ASSETS=$$(bash hack/control-plane.sh 2>/dev/null | tail -n1) $(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install control-plane redis-server real-node helm promtool
	KUBEBUILDER_ASSETS=$$(bash hack/control-plane.sh 2>/dev/null | tail -n1) $(BIN)/pytest tests/integration $(PYTEST_ARGS)

manifests: install ## Regenerate manifests/crds from the pydantic models.
	$(BIN)/aimctl manifests --output manifests/crds

check-manifests: install ## Fail when the committed CRDs differ from a fresh generation.
	$(BIN)/aimctl manifests --check --output manifests/crds

run: install ## Run the operator against the current kubeconfig.
	$(BIN)/aimctl run --log-format console

dev: install control-plane $(if $(filter 1,$(REAL_NODE)),real-node) ## Local full cluster (with a real node unless REAL_NODE=0) + CRDs + operator + the guide's samples.
	$(BIN)/aimctl dev up --dir $(DEV_DIR) $(if $(filter 1,$(REAL_NODE)),--real-node,--no-real-node)

dev-down: ## Stop everything `make dev` started.
	test ! -x $(BIN)/aimctl || $(BIN)/aimctl dev down --dir $(DEV_DIR)

docker-build: ## Build the operator image (needs a Docker engine).
	docker build -t $(IMG) .

kind-up: ## Create the kind cluster $(KIND_CLUSTER) unless it exists (needs Docker and kind).
	kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER)

kind-down: ## Delete the kind cluster.
	kind delete cluster --name $(KIND_CLUSTER)

kind-load: docker-build ## Load the image into the kind cluster.
	kind load docker-image $(IMG) --name $(KIND_CLUSTER)

deploy: ## Install CRDs, RBAC and the operator Deployment into the current cluster.
	$(KUBECTL) apply --server-side -k manifests/default

undeploy: ## Remove everything `deploy` installed; AIM objects go first, while the operator still runs.
	-$(KUBECTL) delete aimservices.aim.silogen.ai,aimkvcaches.aim.silogen.ai --all --all-namespaces --ignore-not-found --timeout=120s
	$(KUBECTL) delete --ignore-not-found -k manifests/default

bench: install control-plane ## Add the bench extras (kopf, psutil, py-spy), run every benchmark, rewrite docs/benchmarks.md.
	$(PIP_LOCKED) -r requirements/bench.txt
	KUBEBUILDER_ASSETS=$$(bash hack/control-plane.sh 2>/dev/null | tail -n1) $(BIN)/python -m bench

clean: dev-down
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis $(DEV_DIR)
