#!/usr/bin/env bash
# Installs Debian packages for a command that is missing, the one way every script here
# does it (Java and Maven for the broker, Chromium, Neovim, PostgreSQL):
#
#   scripts/debian.sh need COMMAND PACKAGE...   nothing when COMMAND is on PATH; else
#                                               apt-get install PACKAGE... (as root, or
#                                               through sudo), or fail with one line that
#                                               says what to install
#   scripts/debian.sh install PACKAGE...        install them, whatever is on PATH
#
# apt's output goes to a log file, shown (its last lines) only when the install fails.
set -euo pipefail

LOG_DIR="${AMPLIFY_INSTALL_LOG_DIR:-${TMPDIR:-/tmp}}"

say() { echo "debian.sh: $*" >&2; }

install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null; then
      say "install $* (Debian: apt-get install $*): installing needs root or sudo"; exit 1
    fi
    sudo=(sudo)
  fi
  if ! command -v apt-get >/dev/null; then
    say "install $* (or your system's packages of them): no apt-get on this machine"; exit 1
  fi
  local log="$LOG_DIR/amplify-apt-$1.log"
  say "installing Debian's $* (log: $log)"
  if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "$@"; } >"$log" 2>&1; then
    say "installing $* failed; last lines of $log:"
    tail -n 30 "$log" >&2; exit 1
  fi
}

need() {
  local command=$1; shift
  if command -v "$command" >/dev/null; then return 0; fi
  install "$@"
  if ! command -v "$command" >/dev/null; then
    say "$command is still missing after installing $*"; exit 1
  fi
}

case "${1:-}" in
  need) shift; [ $# -ge 2 ] || { echo "usage: $0 need COMMAND PACKAGE..." >&2; exit 2; }; need "$@" ;;
  install) shift; [ $# -ge 1 ] || { echo "usage: $0 install PACKAGE..." >&2; exit 2; }; install "$@" ;;
  *) echo "usage: $0 need COMMAND PACKAGE... | install PACKAGE..." >&2; exit 2 ;;
esac
