#!/usr/bin/env bash
# What the browser test (tests/e2e/test_browser.py) needs: Debian's Chromium, since
# Playwright's own browser download is out of reach, and playwright-core as pinned in
# tests/e2e/browser/package-lock.json. Quick when both are in place: apt runs only when
# the browser is missing, npm ci only when the lock file changed since the last install
# (and it fills from npm's cache in ~/.npm when it can).
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM="${AMPLIFY_CHROMIUM:-/usr/bin/chromium}"
DIR=tests/e2e/browser

# The fonts: page text and screenshots look the same on every machine.
scripts/debian.sh need "$CHROMIUM" chromium fonts-dejavu-core
"$CHROMIUM" --version 2>/dev/null

if ! command -v node >/dev/null; then
  echo "node is missing: the browser test needs Node.js 20 or later" >&2
  exit 1
fi
stamp="$DIR/node_modules/.package-lock.sha256"
want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
echo "playwright-core $(node -p "require('./$DIR/node_modules/playwright-core/package.json').version")"
