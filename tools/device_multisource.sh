#!/usr/bin/env bash
# The shipped model retrained on two sources (cxr-lungs train + peds-lungs train), several mixes side by side
# on one lent GPU; chosen afterwards on the two val splits at full resolution on the CPU (BENCHMARKS.md,
# "Two sources"). The data travel in chunks (python tools/pack_devdata_multisource.py prints the calls):
#
#   bash tools/device_multisource.sh stash      # device calls 1..N-1, each carrying .devdata/msK
#   bash tools/device_multisource.sh train      # device call N, carrying .devdata/msN: rebuild, remix, train
#   bash tools/device_multisource.sh unpack DIR # here: DIR = the files that came back -> runs/multi/<run>/
#
# Calls must follow each other on the same warm machine (the stash lives in /tmp/dd). RUNS lists
# NAME:CXR_WEIGHT:PEDS_WEIGHT:OPACITY (cxr-lungs has 246 training images, peds-lungs 709: weight 3 balances
# them). Stage 1 is sized by BUDGET seconds (--time-budget), stage 2 runs QAT_EPOCHS epochs; best epochs
# are chosen on the val splits of both sources, each source counted equally (core/training/mixture.py).
# Returns int8_<run>.tar (model-int8 without its ONNX graphs, which `adaqat models onnx` rebuilds here)
# and logs.tgz (logs, stage-1 cards, mix records). A dry run of the whole path on a CPU, tiny:
#   OUT=/tmp/o DEVICE=cpu RUNS=t:3:1:0.6 EPOCHS=1 QAT_EPOCHS=1 EXTRA="--max-train-images 8 --max-val-images 4" \
#     PATH=$PWD/.venv/bin:$PATH bash tools/device_multisource.sh train
set -uo pipefail
step=${1:?stash, train or unpack}
RUNS=${RUNS:-bal06:3:1:0.6 bal0:3:1:0 nat06:1:1:0.6}

case $step in
stash)
  mkdir -p /tmp/dd && cp .devdata/ms*/part* /tmp/dd/ && ls -la /tmp/dd
  ;;
train)
  mkdir -p /tmp/dd && cp .devdata/ms*/part* .devdata/ms*/bundle.sha256 /tmp/dd/ || exit 2
  read -r sha count < /tmp/dd/bundle.sha256
  have=$(ls /tmp/dd/part* | wc -l)
  [ "$have" = "$count" ] || { echo "have $have of $count chunks: a fresh machine? run the stash calls first"; exit 3; }
  cat /tmp/dd/part* > /tmp/bundle.tar
  echo "$sha  /tmp/bundle.tar" | sha256sum -c - || exit 4
  W=/tmp/w && mkdir -p $W/src && tar xf /tmp/bundle.tar -C $W || exit 2
  tar xJf $W/bundle/site.tar.xz -C $W && xz -dc $W/bundle/src.tar.xz | tar x -C $W/src || exit 2
  cp tools/pack_devdata_multisource.py $W/ && python3 $W/pack_devdata_multisource.py unpack $W/bundle $W/data || exit 5
  cd $W/src   # the packed, committed code, not the working tree
  export PYTHONPATH=$W/site:$W/src PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee /tmp/nvidia_smi.txt
  python3 -c "import torch, torchao, peft; print('torch', torch.__version__, 'torchao', torchao.__version__, 'peft', peft.__version__)"
  start=$(date +%s)
  for run in $RUNS; do
    IFS=: read -r name wc wp p <<< "$run"
    python3 -c "from core.training.mixture import remix; r = remix('$W/data/base256.npz', {'cxr-lungs': $wc, 'peds-lungs': $wp}, '$W/data/mix_$name.npz'); print('$name', r['mix'])" > /tmp/mix_$name.txt 2>&1 || { cat /tmp/mix_$name.txt; exit 6; }
    timeout "${LIMIT:-500}" python3 -m core.cli train --data $W/data/mix_$name.npz --out /tmp/r_$name --stages both \
      --epochs "${EPOCHS:-20}" --time-budget "${BUDGET:-230}" --batch-size 16 --device "${DEVICE:-cuda}" --policy everywhere \
      --qat-policy merged --qat-epochs "${QAT_EPOCHS:-3}" --checkpoint $W/data/lite_medsam.pth --opacity-augment $p \
      --workers 4 --name cxr-lungs-adaqat ${EXTRA:-} > /tmp/log_$name.txt 2>&1 &
  done
  wait
  echo "all runs finished in $(( $(date +%s) - start )) s"
  for run in $RUNS; do
    name=${run%%:*}
    tail -4 /tmp/log_$name.txt
    cp /tmp/r_$name/model-fp32/model.json /tmp/card_fp32_$name.json 2>/dev/null
    [ -f /tmp/r_$name/model-int8/model.safetensors ] && tar cf "$OUT/int8_$name.tar" -C /tmp/r_$name \
      model-int8/model.json model-int8/model.safetensors
  done
  tar czf "$OUT/logs.tgz" -C /tmp $(cd /tmp && ls log_*.txt mix_*.txt card_fp32_*.json nvidia_smi.txt 2>/dev/null)
  ls -la "$OUT"
  ;;
unpack)
  src=${2:?the folder the device files came back in}
  ROOT=$(cd "$(dirname "$0")/.." && pwd) && cd "$ROOT" && mkdir -p runs/multi/logs || exit 2
  tar xzf "$src/logs.tgz" -C runs/multi/logs || exit 2
  for t in "$src"/int8_*.tar; do
    name=$(basename "$t" .tar) && name=${name#int8_} && mkdir -p runs/multi/$name && tar xf "$t" -C runs/multi/$name || exit 2
    # the card still names the ONNX graphs the device wrote: rebuild them here from the verified weights
    .venv/bin/python -m core.cli models onnx runs/multi/$name/model-int8 || exit 2
  done
  ls runs/multi
  ;;
*) echo "unknown step $step"; exit 1 ;;
esac
