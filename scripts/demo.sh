#!/usr/bin/env bash
# Quick start, command 1: set up (once) and open the viewer on the bundled sample studies with the
# bundled default model. Extra arguments go to adaqat-viewer, e.g. --screenshot shot.png (headless).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_venv.sh ""
if [[ " $* " == *" --screenshot "* && -z "${DISPLAY:-}" ]]; then export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"; fi
exec .venv/bin/adaqat-viewer --demo "$@"
