# Halo Bestie backend. `make dev` runs the whole local stack; `make test` proves it. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev demo test bootstrap lint unit integration e2e bench openapi infra lock deploy deploy-plan clean

dev: bootstrap
	$(BIN)/python -m emulators.dev

# A narrated end-to-end run (client, three mitras, payment, chat, extension, goodbyes, transcript, dashboard)
# against the stack `make dev` is running in another terminal; ports from firebase.json. Needs only the virtualenv.
demo: $(VENV)/.installed
	$(BIN)/python -m emulators.demo

test: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive infra; \
	 else echo "!! terraform is not installed: terraform fmt -check skipped"; fi
	$(BIN)/python -m pytest tests

unit: bootstrap
	$(BIN)/python -m pytest tests/unit

integration: bootstrap
	$(BIN)/python -m pytest tests/integration

e2e: bootstrap
	$(BIN)/python -m pytest tests/e2e

lint: bootstrap
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: bootstrap
	@bash bench/check_tools.sh
	$(BIN)/python -m bench

# Regenerates the committed OpenAPI document (a test fails when it drifts from the code).
openapi: bootstrap
	$(BIN)/python -m functions.openapi > openapi.json

# Regenerates infra/functions.auto.json from functions/manifest.py and formats the Terraform.
infra: bootstrap
	$(BIN)/python -m infra.generate
	terraform fmt -recursive infra

# requirements.lock: requirements.txt resolved under constraints.txt into every package the functions install, each
# with the hashes of its files. infra/functions.tf ships it as the functions' requirements.txt; tests/unit/test_lock.py
# fails when it disagrees with the pins or with the virtualenv the tests ran in. Rerun after changing either file.
lock: $(VENV)/.installed
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --constraint=constraints.txt --output-file=requirements.lock requirements.txt

# One deploy: checks (the lock is what was tested, functions.auto.json is current), migrations (the Cloud Run job
# halo-migrate), then terraform plan and apply, for infra/environments/$(ENV).tfvars. DRY_RUN=1 (or deploy-plan)
# prints every step, the packaged files and the pending migrations, offline, and runs nothing; YES=1 skips the
# confirmation before apply. docs/operations.md, "Deploying", says what it needs (terraform, gcloud, a state bucket).
deploy: $(VENV)/.installed
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<name> [DRY_RUN=1] [YES=1]; environments: $$(ls infra/environments/*.tfvars | xargs -n1 basename | sed 's/.tfvars//' | tr '\n' ' ')"; exit 2; }
	$(BIN)/python -m infra.deploy $(ENV) $(if $(DRY_RUN),--dry-run) $(if $(YES),--yes)

deploy-plan:
	@$(MAKE) --no-print-directory deploy ENV=$(ENV) DRY_RUN=1

bootstrap: $(VENV)/.installed node_modules/.installed
	@bash emulators/check_system.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf .local
