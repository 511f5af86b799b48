# Sourced by demo.sh and test.sh: a project virtual environment with the package installed editable.
# $1 is the extra to install ("" or "[test]"). Re-running is cheap: pip skips what is installed.
set -euo pipefail
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# torch and torchvision first, pinned: the pins match the wheels on the machine's disk.
.venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install --quiet -e ".$1"
