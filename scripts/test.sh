#!/usr/bin/env bash
# What `make test` runs: lint and types, then the suite against a real Kafka broker.
# A broker that is already answering (a developer's) is used and left running; one this
# script starts is stopped on the way out, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export AMPLIFY_TEST_KAFKA_BOOTSTRAP="${AMPLIFY_TEST_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

started_kafka=0
cleanup() { if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop; fi; }
trap cleanup EXIT

echo "== lint and types"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy
$BIN/amplify-stream schemas --check

echo "== kafka"
if scripts/kafka.sh status; then
  echo "using the broker already on $AMPLIFY_TEST_KAFKA_BOOTSTRAP"
else
  scripts/kafka.sh start
  started_kafka=1
fi

echo "== tests"
set +e
$BIN/pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
