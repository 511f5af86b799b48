#!/usr/bin/env bash
# Stage-2 QAT precision policies on the lent GPU machine, from the chosen stage-1 model (see BENCHMARKS.md).
# Expects .devdata/s2/model-fp32 (stage-1 output), .devdata/cxr256_trainval.npz, the slim medsam package and wheels.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/.devdata/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
pids=()
for policy in ${POLICIES:-merged paper}; do
  mkdir -p /tmp/s2_$policy && cp -r .devdata/s2/model-fp32 /tmp/s2_$policy/
  timeout "${LIMIT:-400}" python3 -m core.cli train --data .devdata/cxr256_trainval.npz --out /tmp/s2_$policy --stages 2 \
    --qat-policy $policy --qat-epochs "${QAT_EPOCHS:-10}" --batch-size 16 --device cuda --workers 3 \
    --name cxr-lungs-adaqat > "$OUT/stage2_$policy.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait $pid; done
for policy in ${POLICIES:-merged paper}; do
  [ -d /tmp/s2_$policy/model-int8 ] && tar cf "$OUT/int8_$policy.tar" -C /tmp/s2_$policy model-int8
done
ls -la "$OUT"
