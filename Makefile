# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

RASA_VENV := .venv/rasa
ACTIONS_VENV := .venv/actions
RASA := $(RASA_VENV)/bin/rasa
PY := $(ACTIONS_VENV)/bin/python
CUSTOMER ?= C-1001
MAX_HISTORY := 5
# pytest workers for make test: two, one per core; TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2

export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONPATH := $(CURDIR)

.PHONY: help run shell token train validate lint test test-stories test-nlu nlu-report bench bench-cdp clean venvs webchat browser

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

venvs: $(RASA_VENV)/.installed $(ACTIONS_VENV)/.installed  ## create or update both venvs

$(RASA_VENV)/.installed: requirements/rasa.txt
	@scripts/make-venv $(RASA_VENV) requirements/rasa.txt

$(ACTIONS_VENV)/.installed: requirements/actions.txt requirements/dev.txt
	@scripts/make-venv $(ACTIONS_VENV) requirements/actions.txt requirements/dev.txt

webchat: node_modules/.package-lock.json  ## install the web chat's browser library (socket.io-client, npm)

node_modules/.package-lock.json: package.json package-lock.json
	@npm ci --no-audit --no-fund

run: venvs webchat  ## train if needed, seed the CDP, start the action server, Rasa and the agent console (Ctrl-C stops)
	@$(PY) -m tools.run

shell: $(ACTIONS_VENV)/.installed  ## chat from the terminal as CUSTOMER (default C-1001; CUSTOMER=anonymous)
	@$(PY) -m tools.chat --customer $(CUSTOMER)

token: $(ACTIONS_VENV)/.installed  ## print a signed customer token for CUSTOMER (seeds the demo CDP if empty)
	@$(PY) -m cdp seed > /dev/null
	@CDP_IDENTITY_SECRET="$${CDP_IDENTITY_SECRET:-$$($(PY) -c 'from tools.settings import local_secret; print(local_secret("CDP_IDENTITY_SECRET", "identity_secret"))')}" \
		$(PY) -m cdp token $(CUSTOMER)

train: venvs  ## train a model if data/, domain.yml or config.yml changed
	@$(PY) -m tools.training

validate: venvs  ## rasa data validate (fails on errors and on unexpected warnings)
	@$(PY) -m tools.validate_data --max-history $(MAX_HISTORY)

lint: $(ACTIONS_VENV)/.installed  ## ruff over all Python code
	@$(ACTIONS_VENV)/bin/ruff check .

test-stories: train  ## rasa test on the test stories; fails on any wrong prediction
	@$(RASA) test core --model "$$($(PY) -m tools.training --print-path)" --stories tests/stories \
		--fail-on-prediction-errors --out results/rasa/core

# NLU quality (docs/nlu.md). test-nlu scores the trained model on every held-out file in
# tests/nlu/ and fails if an issue-4 target is missed; nlu-report is slow (several trainings) and
# is not part of `make test`. NLU_RASA_PYTHON may point at a Rasa venv with the MiniLM wheel.
NLU_RASA_PYTHON ?= $(RASA_VENV)/bin/python
NLU_FOLDS ?= 3

test-nlu: train  ## held-out NLU scores (tests/nlu/, report in results/rasa/nlu); fails if a target is missed
	@$(RASA) test nlu --model "$$($(PY) -m tools.training --print-path)" --nlu tests/nlu \
		--out results/rasa/nlu --successes
	@$(PY) -m tools.nlu_report summarize results/rasa/nlu --check

nlu-report: venvs  ## NLU cross-validation (results/nlu-cv/) and pipeline comparison (results/nlu-pipeline.md); slow
	$(RASA) test nlu --cross-validation --folds $(NLU_FOLDS) --config config.yml --nlu data/nlu \
		--out results/nlu-cv
	$(PY) -m tools.nlu_report compare --rasa-python $(NLU_RASA_PYTHON)

browser:  ## Debian's chromium and chromium-driver for the browser tests (apt-get when missing)
	@scripts/ensure-chromium

test: venvs webchat browser lint validate train  ## the whole suite: lint, data validation, pytest (SQLite, PostgreSQL, end to end), test stories
	@$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --junitxml=results/junit.xml
	@$(MAKE) --no-print-directory test-stories

bench: venvs train  ## turn latency, SQLite and PostgreSQL (results/bench.md); handoff latency (results/bench_handoff.md)
	@status=0; $(PY) -m tools.bench || status=$$?; $(PY) -m tools.bench_handoff && exit $$status

bench-cdp: venvs  ## CDP import, profile reads, event ingestion (results/bench-cdp.md); BENCH_CDP_ARGS=--quick for a short run
	$(PY) -m tools.bench_cdp $(BENCH_CDP_ARGS)

clean:  ## remove runtime state and models (keeps the venvs)
	rm -rf var models results/rasa results/junit.xml
