#!/usr/bin/env bash
# A one-node Apache Kafka (KRaft) on 127.0.0.1 from Maven Central jars, for tests and
# benchmarks on machines without Docker. The jars are cached in $KAFKA_HOME/libs.
#
#   scripts/kafka.sh fetch   gather the broker jars (once; cached)
#   scripts/kafka.sh start   format fresh storage, start the broker, wait until it answers
#   scripts/kafka.sh stop    stop the broker this script started (its data stays on disk)
#   scripts/kafka.sh kill    SIGKILL it at once, as a crash does (a fault test's broker)
#   scripts/kafka.sh status  exit 0 when the broker answers
#   scripts/kafka.sh running exit 0 when something listens on the broker's port
#   scripts/kafka.sh transactions ARGS  Kafka's TransactionsCommand against the broker
#                            (list, describe-producers, find-hanging, ...)
#
# KAFKA_PORT, CONTROLLER_PORT and KAFKA_RUN (the directory of its data) run a second
# broker beside the first. KAFKA_KEEP_DATA=1: `start` reuses the storage already in
# KAFKA_RUN (topics, offsets, transactions survive a stop and start: outage tests).
#
# One node of a cluster (tests/faults/cluster.py): KAFKA_NODE_ID, KAFKA_VOTERS (every
# node's `id@host:controller-port`), KAFKA_CLUSTER_ID (the same for each node),
# KAFKA_REPLICAS (the internal topics' replication factor; 3 gives min.insync 2),
# KAFKA_PROPS (more lines of server.properties), KAFKA_HEAP, and KAFKA_WAIT=0: `start`
# returns once the JVM is launched (a voter answers only once a quorum is up).
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${LOG4J_VERSION:-2.26.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KAFKA_HOME="${KAFKA_HOME:-$HOME/.cache/amplify-stream/kafka-$KAFKA_VERSION}"
KAFKA_RUN="${KAFKA_RUN:-$ROOT/.kafka}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${CONTROLLER_PORT:-9093}"
KAFKA_KEEP_DATA="${KAFKA_KEEP_DATA:-0}"
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_VOTERS="${KAFKA_VOTERS:-$KAFKA_NODE_ID@127.0.0.1:$CONTROLLER_PORT}"
KAFKA_REPLICAS="${KAFKA_REPLICAS:-1}"
KAFKA_PROPS="${KAFKA_PROPS:-}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
KAFKA_WAIT="${KAFKA_WAIT:-1}"
PIDFILE="$KAFKA_RUN/kafka.pid"

# The broker runs on Java 17 and its jars come through Maven: Debian's packages when missing.
need_java() { "$ROOT/scripts/debian.sh" need java openjdk-17-jre-headless; }

fetch() {
  need_java
  if [ -f "$KAFKA_HOME/libs/.complete" ]; then return 0; fi
  "$ROOT/scripts/debian.sh" need mvn maven
  mkdir -p "$KAFKA_HOME/pom"
  cat >"$KAFKA_HOME/pom/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.amplify</groupId><artifactId>kafka-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$KAFKA_HOME/libs"
  mvn -B -q -f "$KAFKA_HOME/pom/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs"
  touch "$KAFKA_HOME/libs/.complete"
}

answers() {
  # A metadata request through the admin client proves the broker serves requests.
  timeout 20 java -cp "$KAFKA_HOME/libs/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }

start() {
  fetch
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "kafka already running (pid $(cat "$PIDFILE"))"; return 0
  fi
  if port_open; then
    echo "port $KAFKA_PORT is taken by another process; stop it or set KAFKA_PORT" >&2; exit 1
  fi
  local keep=0
  if [ "$KAFKA_KEEP_DATA" = 1 ] && [ -f "$KAFKA_RUN/data/meta.properties" ]; then keep=1; fi
  if [ "$keep" = 0 ]; then rm -rf "$KAFKA_RUN"; fi
  mkdir -p "$KAFKA_RUN/data"
  local min_isr=1
  if [ "$KAFKA_REPLICAS" -ge 3 ]; then min_isr=2; fi
  cat >"$KAFKA_RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_VOTERS
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_RUN/data
num.partitions=3
offsets.topic.replication.factor=$KAFKA_REPLICAS
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$KAFKA_REPLICAS
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
$KAFKA_PROPS
PROPS
  cat >"$KAFKA_RUN/log4j2.yaml" <<'LOG'
Configuration:
  Appenders:
    Console: {name: STDOUT, PatternLayout: {Pattern: "[%d] %p %m (%c)%n"}}
  Loggers:
    Root: {level: WARN, AppenderRef: [{ref: STDOUT}]}
LOG
  if [ "$keep" = 0 ]; then
    local cid="${KAFKA_CLUSTER_ID:-}"
    if [ -z "$cid" ]; then cid=$(java -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool random-uuid); fi
    java -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$KAFKA_RUN/server.properties" >"$KAFKA_RUN/format.log" 2>&1
  fi
  nohup java -Xmx"$KAFKA_HEAP" -Xms256m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$KAFKA_RUN/log4j2.yaml" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$KAFKA_RUN/server.properties" \
    >"$KAFKA_RUN/kafka.log" 2>&1 &
  echo $! >"$PIDFILE"
  if [ "$KAFKA_WAIT" = 0 ]; then echo "kafka node $KAFKA_NODE_ID launched (pid $!)"; return 0; fi
  for _ in $(seq 1 90); do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "kafka exited during start-up; last lines of $KAFKA_RUN/kafka.log:" >&2
      tail -n 30 "$KAFKA_RUN/kafka.log" >&2; exit 1
    fi
    if port_open && answers; then echo "kafka $KAFKA_VERSION up on 127.0.0.1:$KAFKA_PORT"; return 0; fi
    sleep 1
  done
  echo "kafka did not answer within 90 s; see $KAFKA_RUN/kafka.log" >&2; exit 1
}

stop() {
  [ -f "$PIDFILE" ] || return 0
  local pid; pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

# A crash: SIGKILL, nothing flushed, no controlled shutdown.
kill_now() {
  [ -f "$PIDFILE" ] || return 0
  kill -9 "$(cat "$PIDFILE")" 2>/dev/null || true
  rm -f "$PIDFILE"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  kill) kill_now ;;
  status) answers ;;
  # Cheap and load-proof: something listens on the port (used to decide who owns it).
  running) port_open ;;
  transactions)
    shift
    java -cp "$KAFKA_HOME/libs/*" org.apache.kafka.tools.TransactionsCommand \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" "$@" ;;
  *) echo "usage: $0 fetch|start|stop|kill|status|running|transactions" >&2; exit 2 ;;
esac
