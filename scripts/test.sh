#!/usr/bin/env bash
# What `make test` runs: lint and types, then the suite against a real Kafka broker.
# A broker that is already answering (a developer's) is used and left running; one this
# script starts is stopped on the way out, whatever happens. Likewise PostgreSQL for the
# store tests (scripts/postgres.sh), unless AMPLIFY_TEST_DATABASE_URL names a server to use,
# and Redis for the cluster-wide limits (scripts/redis.sh, or AMPLIFY_TEST_REDIS_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export AMPLIFY_TEST_KAFKA_BOOTSTRAP="${AMPLIFY_TEST_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

started_kafka=0
started_postgres=0
started_redis=0
cleanup() {
  if [ "$started_redis" = 1 ]; then scripts/redis.sh stop || true; fi
  if [ "$started_postgres" = 1 ]; then scripts/postgres.sh stop || true; fi
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop; fi
}
trap cleanup EXIT

echo "== lint and types"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy
$BIN/amplify-stream schemas --check
$BIN/amplify-stream asyncapi --check
$BIN/amplify-stream rules --check

echo "== browser"
scripts/browser.sh

echo "== editor"
scripts/neovim.sh

echo "== kafka"
if scripts/kafka.sh running; then
  echo "using the broker already on $AMPLIFY_TEST_KAFKA_BOOTSTRAP"
else
  scripts/kafka.sh start
  started_kafka=1
fi

echo "== postgresql"
if [ -n "${AMPLIFY_TEST_DATABASE_URL:-}" ]; then
  echo "using the server of AMPLIFY_TEST_DATABASE_URL"
elif scripts/postgres.sh status; then
  AMPLIFY_TEST_DATABASE_URL="$(scripts/postgres.sh url)"
  echo "using the PostgreSQL already on $AMPLIFY_TEST_DATABASE_URL"
else
  started_postgres=1 # before start: stop also clears a half-made cluster
  AMPLIFY_TEST_DATABASE_URL="$(scripts/postgres.sh start)"
fi
# The store tests fail (never skip) when this server does not answer.
export AMPLIFY_TEST_DATABASE_URL

echo "== redis"
if [ -n "${AMPLIFY_TEST_REDIS_URL:-}" ]; then
  echo "using the server of AMPLIFY_TEST_REDIS_URL"
elif scripts/redis.sh status; then
  AMPLIFY_TEST_REDIS_URL="$(scripts/redis.sh url)"
  echo "using the Redis already on $AMPLIFY_TEST_REDIS_URL"
else
  started_redis=1
  AMPLIFY_TEST_REDIS_URL="$(scripts/redis.sh start)"
fi
# The limits tests fail (never skip) when this server does not answer.
export AMPLIFY_TEST_REDIS_URL

echo "== tests"
scripts/pytest.sh "$@"
