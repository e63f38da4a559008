#!/usr/bin/env bash
# What `make bench` runs: the benchmarks against a real Kafka broker (started here when
# none answers, and stopped again), gateway and workers as separate processes.
set -euo pipefail
cd "$(dirname "$0")/.."
export AMPLIFY_TEST_KAFKA_BOOTSTRAP="${AMPLIFY_TEST_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
# 5,000 sockets on each side of the gateway.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
started_kafka=0
started_redis=0
cleanup() {
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop; fi
  if [ "$started_redis" = 1 ]; then scripts/redis.sh stop; fi
}
trap cleanup EXIT
if ! scripts/kafka.sh running; then
  scripts/kafka.sh start
  started_kafka=1
fi
# The cluster-wide limits of scale_gateways are counted in Redis.
if ! scripts/redis.sh status; then
  scripts/redis.sh start >/dev/null
  started_redis=1
fi
AMPLIFY_TEST_REDIS_URL="$(scripts/redis.sh url)"
export AMPLIFY_TEST_REDIS_URL
.venv/bin/python -m benchmarks.run "$@"
