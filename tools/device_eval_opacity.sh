#!/usr/bin/env bash
# bench_opacity_robustness.py on the lent GPU machine's 16 CPU cores (INT8 inference is a CPU path): one
# process per (model, set), one thread each, then one merging pass that prints the table (paired Wilcoxon
# against the shipped model). Used when the 2-core VM was too loaded to score in time (BENCHMARKS.md).
# Expects .devdata/eval/: src.tar.xz (HEAD's core/ + the benchmark), site.tar.xz and pydicom.tar.xz (packages
# the image lacks), data.tar (cxr-lungs val+test and clinic-sample val, files unchanged, manifests filtered
# to those rows), model_<name>.safetensors.xz + model_<name>.json (models to score besides the shipped one).
set -uo pipefail
REPO=$PWD D=$PWD/.devdata/eval W=/tmp/e
mkdir -p $W/src $W/models $W/out && tar xJf $D/site.tar.xz -C $W && tar xJf $D/pydicom.tar.xz -C $W/site \
  && xz -dc $D/src.tar.xz | tar x -C $W/src && tar xf $D/data.tar -C $W || exit 2
models=("$REPO/resources/models/default")
for card in $D/model_*.json; do
  name=$(basename "$card" .json); mkdir -p $W/models/$name
  cp "$card" $W/models/$name/model.json && xz -dc $D/$name.safetensors.xz > $W/models/$name/model.safetensors
  models+=("$W/models/$name")
done
cd $W/src
export PYTHONPATH=$W/site:$W/src PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore OMP_NUM_THREADS=1 ADAQAT_SHARED_DATA=$W/data
python3 -c "import torch; print('torch', torch.__version__, torch.backends.quantized.engine)"; nproc
start=$(date +%s)
for i in "${!models[@]}"; do
  for set in ${SETS:-val synthetic test clinic}; do
    python3 benchmarks/bench_opacity_robustness.py --model "${models[$i]}" --sets $set --json-out $W/out/m${i}_$set.json \
      > $W/out/m${i}_$set.log 2>&1 &
  done
done
wait
echo "scored in $(( $(date +%s) - start )) s"
args=(); for m in "${models[@]}"; do args+=(--model "$m"); done
python3 benchmarks/bench_opacity_robustness.py "${args[@]}" --sets ${SETS:-val synthetic test clinic} --reuse $W/out/*.json \
  --json-out "$OUT/opacity_gpu_host.json" 2>&1 | grep -v "^W1202"
tar czf "$OUT/logs.tgz" -C $W/out .
