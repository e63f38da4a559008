#!/usr/bin/env bash
# A throwaway Redis on 127.0.0.1 for the tests of the cluster-wide limits. It has its own
# port and directory (.redis/), so a Redis the machine already runs is never touched.
#
#   scripts/redis.sh start   fetch redis-server if missing, start it, wait until it
#                            answers, print its URL
#   scripts/redis.sh stop    stop the server this script started and delete its directory
#   scripts/redis.sh status  exit 0 when a Redis answers on the port
#   scripts/redis.sh url     print the URL
#
# redis-server comes from PATH, else from Debian's packages without root: `apt-get
# download` of redis-tools (which holds the binary) and the libraries it needs that the
# machine lacks, unpacked with `dpkg -x` into a cache kept across runs. No password and
# nothing persisted: a test server, never one for real data.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REDIS_RUN="${REDIS_RUN:-$ROOT/.redis}"
REDIS_PORT="${REDIS_PORT:-56379}"
CACHE="${REDIS_CACHE:-$HOME/.cache/amplify-stream}/redis"
URL="redis://127.0.0.1:$REDIS_PORT/0"
DIR="$REDIS_RUN/port-$REDIS_PORT"
# redis-tools holds the binary, redis-server the link that runs it as the server (its
# init scripts are not used); the rest are libraries that a slim Debian lacks.
PACKAGES=(redis-server redis-tools libjemalloc2 liblzf1 libatomic1)
SERVER=""

say() { echo "redis.sh: $*" >&2; }

find_server() {
  if command -v redis-server >/dev/null; then SERVER="$(command -v redis-server)"; return 0; fi
  if [ -f "$CACHE/.complete" ]; then SERVER="$CACHE/root/usr/bin/redis-server"; return 0; fi
  return 1
}

# Debian's packages unpacked into $CACHE (renamed into place whole: a half fetch is never
# used). apt-get download needs the package lists: without them (a fresh machine), they
# are fetched into the cache too, which needs no root.
fetch() {
  command -v apt-get >/dev/null || { say "no redis-server on PATH and no apt-get to fetch it"; exit 1; }
  mkdir -p "$(dirname "$CACHE")"
  local tmp log="$CACHE.log"
  tmp="$(mktemp -d "$(dirname "$CACHE")/.redis.XXXXXX")"
  say "fetching Debian's redis-server into $CACHE (log: $log)"
  if ! (cd "$tmp" && apt-get download "${PACKAGES[@]}") >"$log" 2>&1; then
    local apt=(-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/apt-cache" -o Debug::NoLocking=1)
    mkdir -p "$tmp/lists/partial" "$tmp/apt-cache/archives/partial"
    if ! { apt-get "${apt[@]}" update -q &&
      (cd "$tmp" && apt-get "${apt[@]}" download "${PACKAGES[@]}"); } >>"$log" 2>&1; then
      say "fetching ${PACKAGES[*]} failed; last lines of $log:"; tail -n 20 "$log" >&2
      rm -rf "$tmp"; exit 1
    fi
  fi
  local deb
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
  rm -rf "$tmp"/*.deb "$tmp/lists" "$tmp/apt-cache"
  # The libraries beside the binary, found through LD_LIBRARY_PATH (see run_server).
  if ! LD_LIBRARY_PATH="$(libs "$tmp")" "$tmp/root/usr/bin/redis-server" --version >>"$log" 2>&1; then
    say "the fetched redis-server does not run; last lines of $log:"; tail -n 20 "$log" >&2
    rm -rf "$tmp"; exit 1
  fi
  touch "$tmp/.complete"
  rm -rf "$CACHE"
  mv -T "$tmp" "$CACHE"
}

libs() { echo "$1/root/usr/lib/x86_64-linux-gnu:$1/root/usr/lib/$(uname -m)-linux-gnu"; }

run_server() {
  if [[ "$SERVER" == "$CACHE/"* ]]; then
    LD_LIBRARY_PATH="$(libs "$CACHE")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$SERVER" "$@"
  else
    "$SERVER" "$@"
  fi
}

# A PING answered, over bash's /dev/tcp (redis-cli may be missing).
answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 &&
      read -r -t 2 reply <&3 && [ "${reply%$'\r'}" = "+PONG" ]
  ) 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; }

running() { [ -f "$DIR/redis.pid" ] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null; }

start() {
  find_server || { fetch; find_server; }
  if running; then
    wait_until_answers
    say "already running on 127.0.0.1:$REDIS_PORT"; echo "$URL"; return 0
  fi
  if port_open; then
    say "port $REDIS_PORT is taken by another process; stop it or set REDIS_PORT"; exit 1
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR"
  # Loopback only, nothing saved to disk; daemonized, so the caller's shell is free.
  # 9>&-: the server must not inherit the lock, or it would hold it for its whole life.
  if ! run_server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR" --save "" \
    --appendonly no --daemonize yes --pidfile "$DIR/redis.pid" \
    --logfile "$DIR/redis.log" 9>&-; then
    say "redis-server did not start; last lines of $DIR/redis.log:"
    tail -n 20 "$DIR/redis.log" >&2 || true; exit 1
  fi
  wait_until_answers
  say "$(run_server --version | awk '{print $1, $2, $3}') up on 127.0.0.1:$REDIS_PORT"
  echo "$URL"
}

wait_until_answers() {
  for _ in $(seq 1 100); do
    if answers; then return 0; fi
    sleep 0.1
  done
  say "Redis did not answer on 127.0.0.1:$REDIS_PORT within 10 s"
  tail -n 20 "$DIR/redis.log" >&2 || true; exit 1
}

stop() {
  if running; then
    local pid; pid="$(cat "$DIR/redis.pid")"
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$DIR"
  rmdir "$REDIS_RUN" 2>/dev/null || true # servers on other ports stay
}

# One start or stop at a time per port.
lock() {
  exec 9>"${TMPDIR:-/tmp}/amplify-redis-$REDIS_PORT.lock"
  flock -w 120 9 || { say "another redis.sh holds the lock for port $REDIS_PORT"; exit 1; }
}

case "${1:-}" in
  start) lock; start ;;
  stop) lock; stop ;;
  status) answers ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
