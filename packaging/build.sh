#!/usr/bin/env bash
# Build the clinic bundles from packaging/adaqat.spec (PyInstaller onedir), each with its .tar.gz:
#   dist/adaqat-reader/     reading stations: viewer + adaqat segment/evaluate/models on ONNX Runtime, no torch
#   dist/adaqat-annotator/  the annotator's PC: everything, fine-tuning included (torch)
# Usage: bash packaging/build.sh [reader|annotator|both]   (default both, the reader first: it takes a minute
# or two, the annotator ~13 min on 2 cores). ADAQAT_ARCHIVE=0 skips the .tar.gz files.
# Installs PyInstaller into the project venv (extra "bundle") when missing; needs the network only for that step.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-both}"
case "$WHICH" in
  reader) FLAVOURS=(reader) ;; annotator) FLAVOURS=(annotator) ;; both) FLAVOURS=(reader annotator) ;;
  *) echo "error: unknown bundle '$WHICH' (use reader, annotator or both)" >&2; exit 2 ;;
esac
if [[ ! -x .venv/bin/python ]]; then source scripts/setup_venv.sh ""; fi
# PyInstaller (extra "bundle"): installed only when missing, so that a build from another folder (a clean
# export of a commit, `ln -s` to this venv) never re-points the venv's editable install of the project
.venv/bin/python -c "import PyInstaller" 2>/dev/null || .venv/bin/python -m pip install -q -e ".[bundle]"
for flavour in "${FLAVOURS[@]}"; do
  name="adaqat-$flavour"
  echo "== building dist/$name"
  ADAQAT_BUNDLE="$flavour" .venv/bin/python -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath "build/pyinstaller-$flavour" packaging/adaqat.spec
  ln -sfn adaqat-viewer "dist/$name/adaqat"   # the engine's command line (core.bundle dispatches on the name)
  if [[ "${ADAQAT_ARCHIVE:-1}" != 0 ]]; then
    tar -C dist -czf "dist/$name-linux-x86_64.tar.gz" "$name"
    du -sh "dist/$name-linux-x86_64.tar.gz"
  fi
  du -sh "dist/$name"
done
