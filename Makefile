# The two quick-start commands are `make run` and `make test`; the rest are for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format schemas kafka-start kafka-stop clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Everything in one process: memory bus, offline providers when no keys are set.
run: install
	$(BIN)/amplify-stream serve

## Lint, type-check, and the whole suite against a real Kafka broker (started and stopped here).
test: install
	scripts/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: install
	$(BIN)/amplify-stream schemas

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

clean:
	rm -rf $(VENV) .kafka .pytest_cache .mypy_cache .ruff_cache
