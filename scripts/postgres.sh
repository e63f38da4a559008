#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the store tests, from Debian's packages
# (installed when missing). It has its own data directory (.postgres/) and its own port,
# so a PostgreSQL the machine already runs is never touched.
#
#   scripts/postgres.sh start   install if needed, create and start a fresh cluster with the
#                               database amplify_test, wait until it answers, print its URL
#   scripts/postgres.sh stop    stop the cluster this script started and delete it
#   scripts/postgres.sh status  exit 0 when amplify_test answers on the port
#   scripts/postgres.sh url     print the URL
#
# Trust authentication on loopback only: a test database, never one for real data.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG_RUN="${PG_RUN:-$ROOT/.postgres}"
PGPORT="${PGPORT:-55432}"
PG_DB=amplify_test
# A fresh initdb, kept once per PostgreSQL version: copying it is ten times faster.
PG_CACHE="${PG_CACHE:-$HOME/.cache/amplify-stream}"
URL="postgresql+asyncpg://postgres@127.0.0.1:$PGPORT/$PG_DB"
# Where the cluster lives: a directory under $PG_RUN, or a link to one in /tmp (see start).
# One per port, so a start on another PGPORT never takes over a running cluster.
CLUSTER_LINK="$PG_RUN/port-$PGPORT"
BIN=""

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
  # A developer's own binaries on PATH first, else the newest of Debian's versioned ones
  # (Debian puts neither initdb nor pg_ctl on PATH).
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    BIN="$(dirname "$(readlink -f "$(command -v initdb)")")"; return 0
  fi
  local dir
  for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then BIN="$dir"; return 0; fi
  done
  return 1
}

psql_bin() {
  if [ -n "$BIN" ] && [ -x "$BIN/psql" ]; then echo "$BIN/psql"; else command -v psql; fi
}

# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

answers() {
  local psql
  psql="$(psql_bin 2>/dev/null)" || return 1
  PGCONNECT_TIMEOUT=5 "$psql" -X -q -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$PG_DB" \
    -c 'SELECT 1' >/dev/null 2>&1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PGPORT") 2>/dev/null; }

running() {
  [ -e "$CLUSTER_LINK/data/postmaster.pid" ] &&
    as_owner "$BIN/pg_ctl" status -D "$(readlink -f "$CLUSTER_LINK")/data" >/dev/null 2>&1
}

start() {
  if ! find_bin; then
    "$ROOT/scripts/debian.sh" install postgresql
    find_bin || { say "no initdb/pg_ctl under /usr/lib/postgresql/*/bin after installing"; exit 1; }
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    say "running as root needs the postgres system user (PostgreSQL refuses to run as root)"
    exit 1
  fi
  if running; then
    wait_until_answers
    say "already running on 127.0.0.1:$PGPORT"; echo "$URL"; return 0
  fi
  if port_open; then
    say "port $PGPORT is taken by another process; stop it or set PGPORT"; exit 1
  fi
  stop_cluster
  mkdir -p "$PG_RUN"
  local cluster="$CLUSTER_LINK"
  mkdir -p "$cluster"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$cluster"
    if ! runuser -u postgres -- test -w "$cluster"; then
      # The project sits where the postgres user cannot go (under /root, say): the
      # cluster goes to /tmp and .postgres/port-N points at it.
      rmdir "$cluster"
      cluster="$(mktemp -d /tmp/amplify-postgres.XXXXXX)"
      chown postgres: "$cluster"
      ln -s "$cluster" "$CLUSTER_LINK"
    fi
  fi
  init_data "$cluster"
  # Durability traded for speed: nothing here outlives the test run. No Unix socket:
  # loopback TCP only, and no socket path-length limit to hit.
  cat >>"$cluster/data/postgresql.conf" <<CONF
# scripts/postgres.sh: a throwaway test cluster
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
CONF
  # 9>&-: the server must not inherit the lock, or it would hold it for its whole life.
  if ! as_owner "$BIN/pg_ctl" start -D "$cluster/data" -l "$cluster/postgres.log" -w -t 60 -s \
    9>&-; then
    say "PostgreSQL did not start; last lines of $cluster/postgres.log:"
    tail -n 30 "$cluster/postgres.log" >&2; exit 1
  fi
  "$(psql_bin)" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
    -c "CREATE DATABASE $PG_DB" >/dev/null
  wait_until_answers
  say "PostgreSQL $("$BIN/pg_ctl" --version | awk '{print $3}') up on 127.0.0.1:$PGPORT"
  echo "$URL"
}

# $1/data: a copy of the cached initdb output, made (and cached) when there is none yet.
init_data() {
  local owner version template
  owner="$([ "$(id -u)" = 0 ] && echo postgres || id -un)"
  version="$("$BIN/pg_ctl" --version | awk '{print $3}')"
  template="$PG_CACHE/postgres-$version-$owner"
  if [ -f "$template/.complete" ]; then
    cp -a "$template/data" "$1/data"; return 0
  fi
  # --no-sync: no fsync of a directory that is thrown away.
  as_owner "$BIN/initdb" -D "$1/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync >"$1/initdb.log" 2>&1 || {
    say "initdb failed; see $1/initdb.log"; tail -n 20 "$1/initdb.log" >&2; exit 1
  }
  # Copied by this user (cp -a keeps the owner), so the cache may sit where the postgres
  # user cannot go; renamed into place whole, so a half copy is never used.
  mkdir -p "$PG_CACHE"
  local tmp; tmp="$(mktemp -d "$PG_CACHE/.postgres-template.XXXXXX")"
  cp -a "$1/data" "$tmp/data" && touch "$tmp/.complete"
  mv -T "$tmp" "$template" 2>/dev/null || rm -rf "$tmp"
}

wait_until_answers() {
  for _ in $(seq 1 100); do
    if answers; then return 0; fi
    sleep 0.1
  done
  say "PostgreSQL did not answer on 127.0.0.1:$PGPORT within 10 s"; exit 1
}

# Stop the cluster (if it runs) and delete it, wherever it lives.
stop_cluster() {
  [ -e "$CLUSTER_LINK" ] || [ -L "$CLUSTER_LINK" ] || return 0
  local cluster
  cluster="$(readlink -f "$CLUSTER_LINK")"
  if [ -f "$cluster/data/postmaster.pid" ] && { [ -n "$BIN" ] || find_bin; }; then
    # immediate: no shutdown checkpoint, the data is deleted next anyway.
    as_owner "$BIN/pg_ctl" stop -D "$cluster/data" -m immediate -w -t 30 -s || true
  fi
  rm -rf "$cluster" "$CLUSTER_LINK"
}

stop() {
  stop_cluster
  rm -f "$PG_RUN/install.log"
  rmdir "$PG_RUN" 2>/dev/null || true # clusters on other ports stay
}

# One start or stop at a time per port: two runs racing would share one data directory.
lock() {
  exec 9>"${TMPDIR:-/tmp}/amplify-postgres-$PGPORT.lock"
  flock -w 120 9 || { say "another postgres.sh holds the lock for port $PGPORT"; exit 1; }
}

case "${1:-}" in
  start) lock; start ;;
  stop) lock; stop ;;
  status) find_bin || true; answers ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
