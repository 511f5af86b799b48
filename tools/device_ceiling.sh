#!/usr/bin/env bash
# The clinic fine-tune's ceiling on the lent GPU (BENCHMARKS.md, "The ceiling"): every RUNS entry
# TRAIN:POLICY:LR_ADAPTER:LR_BASE continues the shipped model with benchmarks/clinic_ceiling.py, all side
# by side on one GPU. Expects .devdata/ceiling/ from `python -m benchmarks.clinic_ceiling pack`; carry it.
# Returns ceiling.tgz (one JSON per run, logs, nvidia-smi) under $OUT; here:
#   tar xzf ceiling.tgz -C runs/ceiling && python benchmarks/clinic_ceiling.py table runs/ceiling/*.json
set -uo pipefail
D=$PWD/.devdata/ceiling W=/tmp/w
mkdir -p $W/r && tar xJf $D/site.tar.xz -C $W || exit 2
export PYTHONPATH=$W/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $W/r/nvidia_smi.txt
python3 -c "import torch, peft; print('torch', torch.__version__, 'peft', peft.__version__)" | tee -a $W/r/nvidia_smi.txt
RUNS=${RUNS:-clinic:decoder:1e-3:1e-4 clinic:tail:1e-3:1e-4 clinic:everywhere:1e-3:1e-4 shenzhen:decoder:1e-3:1e-4 shenzhen:tail:1e-3:1e-4 shenzhen:everywhere:1e-3:1e-4}
export OMP_NUM_THREADS=2
start=$(date +%s)
for run in $RUNS; do
  IFS=: read -r train policy la lb <<< "$run"
  name=${train}_${policy}_${la}
  timeout "${LIMIT:-480}" python3 benchmarks/clinic_ceiling.py run --train $train --policy $policy --lr-adapter $la \
    --lr-base $lb --epochs "${EPOCHS:-40}" --batch-size "${BATCH:-8}" --device cuda --workers 1 \
    --threads 2 --max-seconds "${TRAIN_S:-330}" --work /tmp/work_$name \
    --json-out $W/r/$name.json > $W/r/log_$name.txt 2>&1 &
done
wait
echo "all runs finished in $(( $(date +%s) - start )) s"
for f in $W/r/log_*.txt; do echo "== $f"; tail -3 $f; done
tar czf "$OUT/ceiling.tgz" -C $W/r .
ls -la "$OUT"
