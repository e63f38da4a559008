#!/usr/bin/env bash
# pytest, where a run that collects nothing (exit 5: a wrong path or marker) fails: a check
# that ran no test must not pass. Used by `make test` (scripts/test.sh) and `make check`.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pytest -p no:cacheprovider "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
