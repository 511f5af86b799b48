#!/usr/bin/env bash
# Build the clinic bundle: dist/adaqat/ (onedir) and dist/adaqat-linux-x86_64.tar.gz.
# Installs PyInstaller into the project venv (extra "bundle"); needs the network only for that step.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]]; then source scripts/setup_venv.sh ""; fi
.venv/bin/python -m pip install -q -e ".[bundle]"
.venv/bin/python -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/adaqat.spec
ln -sfn adaqat-viewer dist/adaqat/adaqat   # the engine's command line (core.bundle dispatches on the name)
tar -C dist -czf dist/adaqat-linux-x86_64.tar.gz adaqat
du -sh dist/adaqat dist/adaqat-linux-x86_64.tar.gz
