# Halo Bestie backend. `make dev` runs the whole local stack; `make test` proves it. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Generators kept out of the app's virtualenv (requirements-tools.txt).
TOOLS := .local/tools-venv

.PHONY: help dev demo test bootstrap lint unit integration e2e bench soak load openapi contract infra reset psql clean clients docs \
	lock deploy deploy-plan
.DEFAULT_GOAL := help

help: ## this list
	@grep -E '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-12s %s\n", $$1, $$2}'

dev: bootstrap ## the whole local stack; starts clean (KEEP=1 keeps data; HALO_HOST=<ip> for phones on the LAN)
	$(BIN)/python -m emulators.dev $(if $(KEEP),--keep)

# A narrated end-to-end run (client, three mitras, payment, chat, extension, goodbyes, transcript, dashboard)
# against the stack `make dev` is running in another terminal; ports from firebase.json. Needs only the virtualenv.
demo: $(VENV)/.installed ## a narrated end-to-end run against the stack `make dev` runs
	$(BIN)/python -m emulators.demo

reset: ## forget the data `make dev KEEP=1` kept (.local/dev)
	rm -rf .local/dev

psql: ## psql on the database `make dev` serves
	psql "postgresql://postgres@127.0.0.1:$$(python3 -c "import json; print(json.load(open('firebase.json'))['emulators']['postgres']['port'])")/halo"

test: bootstrap ## ruff, mypy, terraform fmt, then unit, integration and e2e tests (what CI runs)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive infra; \
	 else echo "!! terraform is not installed: terraform fmt -check skipped"; fi
	$(BIN)/python -m pytest tests

unit: bootstrap ## the unit tier only (no stack)
	$(BIN)/python -m pytest tests/unit

integration: bootstrap ## the integration tier (real PostgreSQL and emulators)
	$(BIN)/python -m pytest tests/integration

e2e: bootstrap ## the e2e tier (whole flows through the functions and Firestore listeners)
	$(BIN)/python -m pytest tests/e2e

lint: bootstrap ## ruff and mypy
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: bootstrap ## the benchmarks; writes bench/REPORT.md
	@bash bench/check_tools.sh
	$(BIN)/python -m bench

# Full sessions (pay, pair, chat, extend, end) by 60 clients and 15 mitras while PostgreSQL, Firestore, Pub/Sub, Cloud
# Tasks and the gateway restart at random; then every invariant is checked and bench/REPORT.md's soak section
# rewritten. SOAK_MINUTES (default 5), SOAK_CLIENTS, SOAK_MITRAS. Not part of `make test` or `make bench`.
soak: bootstrap ## full sessions under restarts of every part, then the invariants (SOAK_MINUTES=5)
	$(BIN)/python -m bench.soak

# Full sessions (the soak's population, no restarts) at 1x, 2x and 4x LOAD_BASE clients (default 3) for
# LOAD_PHASE_S seconds each (default 60): per-function p50/p99, chat_send → listener, errors, CPU per session; then
# doubling (8x, 16x, ... up to LOAD_MAX_MULTIPLE, default 32) until p99 chat latency passes 250 ms; rewrites
# bench/REPORT.md's load section. Loopback only, 8 to 16 minutes. Not part of `make bench`.
load: bootstrap ## sessions at 1x, 2x, 4x a base rate, then doubling to where chat p99 passes 250 ms (bench/REPORT.md)
	$(BIN)/python -m bench.load

# Regenerates the committed OpenAPI document and contract/ schemas (a test fails when either drifts from the code).
openapi: bootstrap contract ## regenerate openapi.json (and contract/) from the code
	$(BIN)/python -m functions.openapi > openapi.json

# The JSON Schemas of the Firestore documents and push payloads, from the models the backend writes them with, and
# the generated reference at the end of docs/contract.md (every function, document and push).
contract: bootstrap ## regenerate contract/firestore/*.json, contract/push/*.json and docs/contract.md's reference
	$(BIN)/python -m kit.contract
	$(BIN)/python -m kit.reference

# Typed clients from the committed openapi.json (kit/generate.py); clients/ is ignored, never committed.
clients: bootstrap ## TypeScript (control center) and Dart (Flutter apps) clients from openapi.json, into clients/
	$(BIN)/python -m kit.generate --out clients

# The gateway builds /docs on its first request too; this builds it ahead (Redoc, from node_modules, offline).
docs: bootstrap ## build the browsable API reference the gateway serves at /docs
	$(BIN)/python -m kit.docs

# Regenerates infra/functions.auto.json from functions/manifest.py and formats the Terraform.
infra: bootstrap ## regenerate infra/functions.auto.json and format the Terraform
	$(BIN)/python -m infra.generate
	terraform fmt -recursive infra

# requirements.lock: requirements.txt resolved under constraints.txt into every package the functions install, each
# with the hashes of its files. infra/functions.tf ships it as the functions' requirements.txt; tests/unit/test_lock.py
# fails when it disagrees with the pins or with the virtualenv the tests ran in. Rerun after changing either file.
lock: $(VENV)/.installed ## resolve requirements.txt under constraints.txt into requirements.lock, with hashes
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --constraint=constraints.txt --output-file=requirements.lock requirements.txt

# One deploy: checks (the lock is what was tested, functions.auto.json is current), migrations (the Cloud Run job
# halo-migrate), then terraform plan and apply, for infra/environments/$(ENV).tfvars. DRY_RUN=1 (or deploy-plan)
# prints every step, the packaged files and the pending migrations, offline, and runs nothing; YES=1 skips the
# confirmation before apply. docs/operations.md, "Deploying", says what it needs (terraform, gcloud, a state bucket).
deploy: $(VENV)/.installed ## migrations, then Terraform, for ENV=<name> (DRY_RUN=1 prints every step, runs nothing)
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<name> [DRY_RUN=1] [YES=1]; environments: $$(ls infra/environments/*.tfvars | xargs -n1 basename | sed 's/.tfvars//' | tr '\n' ' ')"; exit 2; }
	$(BIN)/python -m infra.deploy $(ENV) $(if $(DRY_RUN),--dry-run) $(if $(YES),--yes)

deploy-plan: ## what `make deploy ENV=<name>` would do, offline
	@$(MAKE) --no-print-directory deploy ENV=$(ENV) DRY_RUN=1

bootstrap: $(VENV)/.installed node_modules/.installed $(TOOLS)/.installed
	@bash emulators/check_system.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@echo ">> Python packages into $(VENV) (the first time takes a few minutes; pip shows each package)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(BIN)/pip install --disable-pip-version-check -r requirements-dev.txt -c constraints.txt \
		| { grep -E --line-buffered '^(Collecting|Installing|Successfully)' || true; }
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo ">> Node packages (firebase-tools for the Auth emulator; client generators, tsc, Redocly, playwright-core) into node_modules (a few minutes the first time)"
	npm ci --no-audit --no-fund --loglevel=error --progress=true
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@echo ">> openapi-generator-cli (the Dart client's generator) into $(TOOLS)"
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --disable-pip-version-check -q -r requirements-tools.txt
	touch $@

clean: ## remove everything local runs left (.local)
	rm -rf .local
