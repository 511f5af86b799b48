#!/usr/bin/env bash
# Quick start, command 2: set up (once) and run the whole test suite, offline, headless.
set -euo pipefail
cd "$(dirname "$0")/.."
# The PACS tests start their own Orthanc (Debian package "orthanc") on 127.0.0.1; install it when missing,
# and keep the package's own service stopped (the tests never use it).
if ! command -v Orthanc >/dev/null && [ ! -x /usr/sbin/Orthanc ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc >/dev/null \
        && { service orthanc stop >/dev/null 2>&1 || true; }) \
        || echo "warning: could not install orthanc (run as root: apt-get install orthanc); the PACS tests are skipped" >&2
fi
source scripts/setup_venv.sh "[test]"
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
