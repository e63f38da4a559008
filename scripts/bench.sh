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
cleanup() { if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop; fi; }
trap cleanup EXIT
if ! scripts/kafka.sh running; then
  scripts/kafka.sh start
  started_kafka=1
fi
.venv/bin/python -m benchmarks.run "$@"
