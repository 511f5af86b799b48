#!/usr/bin/env bash
# Quick start, command 2: set up (once) and run the whole test suite, offline, headless.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_venv.sh "[test]"
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
