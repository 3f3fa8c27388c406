# Two commands a newcomer needs: `make run` and `make test`. Both bootstrap themselves:
# a virtualenv in .venv, the pinned Python packages, and the Kafka jars from Maven Central.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JARS := ops/kafka/target/libs/.resolved
SAMPLE := data/sample.jsonl

.PHONY: setup run stop cluster cluster-stop test test-cluster test-deps lint unit schemas sample bench dashboard clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(JARS): ops/kafka/pom.xml
	@command -v mvn >/dev/null || { echo "Maven (mvn) is needed once to fetch the Kafka jars"; exit 1; }
	mvn -q -B -f ops/kafka/pom.xml dependency:copy-dependencies \
	    -DoutputDirectory=$(CURDIR)/ops/kafka/target/libs -DincludeScope=runtime
	touch $@

setup: $(STAMP) $(JARS)  ## Create .venv, install packages, fetch the Kafka jars

run: setup  ## Start broker + worker in the background and load the sample data once
	$(BIN)/tracker up --sample $(SAMPLE)

stop:  ## Stop the worker and the broker (data stays in .data/)
	$(BIN)/tracker down

lint: setup  ## ruff and mypy
	$(BIN)/ruff check services schemas tests ops data bench
	$(BIN)/mypy

unit: setup  ## Tests that need no broker
	$(BIN)/pytest -q tests/unit

test-deps:  ## System packages the tests use (Debian prometheus for promtool), once
	bash ops/install-test-deps.sh

test: setup test-deps lint  ## Everything CI runs: lint, types, unit and integration tests
	$(BIN)/pytest -q -p no:cacheprovider tests

test-cluster: setup  ## Only the failure tests on three Kafka nodes and two workers (part of `test`)
	$(BIN)/pytest -q -p no:cacheprovider -m cluster tests/integration

schemas: setup  ## Regenerate schemas/json from the pydantic models
	$(BIN)/python -m schemas.export

sample: setup  ## Regenerate data/sample.jsonl from the published figures
	$(BIN)/python data/generate_sample.py > $(SAMPLE)

bench: setup  ## Throughput, latency, recovery, memory vs baselines (BENCH_ARGS=--quick: short)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:  ## Remove .venv, the jars and all local data
	rm -rf $(VENV) ops/kafka/target .data

dashboard: $(STAMP)  ## Regenerate ops/grafana/dashboards/tracker.json (edit build_dashboard.py)
	$(BIN)/python -m ops.grafana.build_dashboard

cluster: setup  ## The production topology here: 3 Kafka nodes (KRaft), 2 workers; loads the sample
	$(BIN)/tracker cluster up --sample $(SAMPLE)

cluster-stop:  ## Stop the cluster's workers and Kafka nodes (data stays in .data/cluster/)
	$(BIN)/tracker cluster down
