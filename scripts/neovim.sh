#!/usr/bin/env bash
# What the editor test (tests/e2e/test_neovim.py) needs: Debian's Neovim (0.7 on
# bookworm), installed when missing.
set -euo pipefail
NVIM="${AMPLIFY_NVIM:-nvim}"
"$(dirname "$0")/debian.sh" need "$NVIM" neovim
"$NVIM" --version | head -1
