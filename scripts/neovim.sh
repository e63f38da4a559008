#!/usr/bin/env bash
# What the editor test (tests/e2e/test_neovim.py) needs: Debian's Neovim (0.7 on
# bookworm), installed when missing.
set -euo pipefail
NVIM="${AMPLIFY_NVIM:-nvim}"
if ! command -v "$NVIM" >/dev/null; then
  echo "installing neovim (Debian's package)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends neovim
fi
"$NVIM" --version | head -1
