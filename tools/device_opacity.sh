#!/usr/bin/env bash
# The shipped recipe (stage 1 AdaLoRA `everywhere`, 20 epochs; stage 2 INT8 QAT `merged`, 10 epochs) retrained
# with several --opacity-augment probabilities side by side on one lent GPU (BENCHMARKS.md, "Shipped model and
# opaque lung bases"). Expects .devdata/opacity/ from `python tools/pack_devdata_opacity.py`; carry it.
# Returns int8_<p>.tar (model-int8/ of each run) and logs.tgz (logs and stage-1 cards) under $OUT.
set -uo pipefail
D=$PWD/.devdata/opacity W=/tmp/w
mkdir -p $W/src/.devdata && tar xJf $D/site.tar.xz -C $W && xz -dc $D/src.tar.xz | tar x -C $W/src || exit 2
python3 - "$D" "$W/src/.devdata" <<'PY' || exit 2
import hashlib, lzma, sys
from pathlib import Path
import numpy as np
d, out = Path(sys.argv[1]), Path(sys.argv[2])
planes = [lzma.decompress((d / f"plane{i}.xz").read_bytes()) for i in range(4)]
raw = np.stack([np.frombuffer(p, np.uint8) for p in planes], axis=1).tobytes()[: int((d / "size.txt").read_text())]
digest = hashlib.sha256(raw).hexdigest()
assert digest == "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76", digest
(out / "lite_medsam.pth").write_bytes(raw)
(out / "cxr256_trainval.npz").write_bytes(lzma.decompress((d / "cxr256_trainval.npz.xz").read_bytes()))
print("checkpoint sha256 ok, cache unpacked")
PY
cd $W/src   # the packed, committed code, not the working tree
export PYTHONPATH=$W/site:$W/src PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchao, peft; print('torch', torch.__version__, 'torchao', torchao.__version__, 'peft', peft.__version__)"
start=$(date +%s)
for p in ${OPACITY:-0 0.25 0.5 0.8}; do
  timeout "${LIMIT:-520}" python3 -m core.cli train --data .devdata/cxr256_trainval.npz --out /tmp/r_$p --stages both \
    --epochs "${EPOCHS:-20}" --batch-size 16 --device cuda --policy everywhere --qat-policy merged --qat-epochs "${QAT_EPOCHS:-10}" \
    --checkpoint .devdata/lite_medsam.pth --opacity-augment $p --workers 3 --name cxr-lungs-adaqat > /tmp/log_$p.txt 2>&1 &
done
wait
echo "all runs finished in $(( $(date +%s) - start )) s"
for p in ${OPACITY:-0 0.25 0.5 0.8}; do
  tail -3 /tmp/log_$p.txt
  [ -f /tmp/r_$p/model-int8/model.safetensors ] && tar cf "$OUT/int8_$p.tar" -C /tmp/r_$p model-int8
  cp /tmp/r_$p/model-fp32/model.json /tmp/card_fp32_$p.json 2>/dev/null
done
tar czf "$OUT/logs.tgz" -C /tmp $(cd /tmp && ls log_*.txt card_fp32_*.json 2>/dev/null)
ls -la "$OUT"
