#!/usr/bin/env bash
# Smoke test of the built bundles with no network at all (a fresh network namespace, unshare -n).
#   annotator (dist/adaqat-annotator): segment the sample DICOM with the bundled command line, start the
#     viewer offscreen and save a screenshot with its mask, fine-tune the bundled model on two images for one
#     short epoch, and export the new model as a package (what an annotator sends to reading stations).
#   reader (dist/adaqat-reader): no torch in the folder; segment the sample DICOM and a sample JPEG; import and activate a model
#     package (the annotator's fine-tuned model when the annotator was tested in the same run, else the
#     bundled model exported by the reader itself); screenshot of the viewer with the mask of that model;
#     `adaqat train` refused in one line that names the annotator bundle; `adaqat evaluate` scores (no SciPy);
#     five damaged pictures that every decoder accepts are refused (code-block, block-grid, row-streak,
#     block-displacement and zero-run checks).
# Usage: bash packaging/smoke_test.sh [reader|annotator|both] [OUT_DIR]   (default both, build/smoke)
# Exit 0 when all pass; times and peak memory of each step: OUT_DIR/<bundle>/*.time.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-both}"
case "$WHICH" in
  reader) FLAVOURS=(reader) ;; annotator) FLAVOURS=(annotator) ;; both) FLAVOURS=(annotator reader) ;;
  *) echo "error: unknown bundle '$WHICH' (use reader, annotator or both)" >&2; exit 2 ;;
esac
ROOT_OUT="$(realpath -m "${2:-build/smoke}")"
DATA="${ADAQAT_SHARED_DATA:-$PWD/../shared/data}/cxr-lungs"
DIST="$PWD/dist"
REPO="$PWD"
for flavour in "${FLAVOURS[@]}"; do
  [[ -x "$DIST/adaqat-$flavour/adaqat-viewer" ]] || {
    echo "error: $DIST/adaqat-$flavour not built (run: bash packaging/build.sh $flavour)" >&2; exit 2; }
done
if [[ $(id -u) -eq 0 ]]; then NONET=(unshare -n); else NONET=(unshare -rn); fi
export QT_QPA_PLATFORM=offscreen
unset PYTHONPATH VIRTUAL_ENV
rm -rf "$ROOT_OUT" && mkdir -p "$ROOT_OUT"

step() {  # step NAME COMMAND...: run offline under /usr/bin/time -v, keep its log; fail the test if it fails
  local name=$1; shift
  echo "== $name: $*"
  if ! "${NONET[@]}" /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1; then
    tail -20 "$OUT/$name.log" >&2; echo "error: smoke step '$name' failed" >&2; exit 1; fi
  awk -F': ' '/Elapsed \(wall/ {w=$2} /Maximum resident/ {printf "   wall %s, peak RSS %.0f MiB\n", w, $2/1024}' \
    "$OUT/$name.time"
}
fresh_user() {  # a clean user folder and environment for one bundle: nothing from the checkout or its venv
  OUT="$ROOT_OUT/$1" && mkdir -p "$OUT"
  export ADAQAT_HOME="$OUT/home" ADAQAT_SETTINGS="$OUT/viewer.ini"
  cd "$OUT"
}
import_flags() {  # --allow-unsigned where this version checks package signatures (a smoke package is unsigned)
  if "$1" models import --help 2>/dev/null | grep -q -- --allow-unsigned; then echo --allow-unsigned; fi
}

smoke_annotator() {
  local bundle="$DIST/adaqat-annotator"
  fresh_user annotator
  mkdir -p "$OUT/data/images" "$OUT/data/masks"
  [[ -f "$DATA/manifest.csv" ]] || { echo "error: $DATA/manifest.csv missing (set ADAQAT_SHARED_DATA)" >&2; exit 2; }
  # two training images and one held-out image (for the run's comparison with its parent)
  { echo "id,image,mask,split"
    awk -F, 'NR>1 && $4=="train" && n<2 {print $1",images/"$1".jpg,masks/"$1".png,train"; n++}' "$DATA/manifest.csv"
    awk -F, 'NR>1 && $4=="val" && n<1 {print $1",images/"$1".jpg,masks/"$1".png,val"; n++}' "$DATA/manifest.csv"
  } > "$OUT/data/manifest.csv"
  tail -n +2 "$OUT/data/manifest.csv" | while IFS=, read -r id _; do
    cp "$DATA/images/$id.jpg" "$OUT/data/images/"; cp "$DATA/masks/$id.png" "$OUT/data/masks/"; done
  local sample="$bundle/_internal/resources/samples/chest_cr_RG1_J2KR.dcm"
  step segment "$bundle/adaqat" segment "$sample" --out "$OUT/masks" --json
  [[ -s "$OUT/masks/chest_cr_RG1_J2KR.png" ]] || { echo "error: no mask written" >&2; exit 1; }
  step screenshot "$bundle/adaqat-viewer" --demo --screenshot "$OUT/screenshot.png"
  [[ -s "$OUT/screenshot.png" ]] || { echo "error: no screenshot written" >&2; exit 1; }
  step train "$bundle/adaqat" train --data "$OUT/data/manifest.csv" --out "$OUT/run" --from default \
    --epochs 1 --qat-epochs 1 --batch-size 2 --time-budget 240 --device cpu
  [[ -f "$OUT/run/model-int8/model.json" ]] || { echo "error: training wrote no INT8 model" >&2; exit 1; }
  step export "$bundle/adaqat" models export "$OUT/run/model-int8" "$ROOT_OUT/clinic.adaqat-model"
}

smoke_reader() {
  local bundle="$DIST/adaqat-reader"
  fresh_user reader
  if find "$bundle" \( -name 'libtorch*' -o -name 'torch' -o -name 'segment_anything' -o -name 'peft' \) | grep -q .; then
    echo "error: the reader bundle carries torch or its companions" >&2; exit 1; fi
  local sample="$bundle/_internal/resources/samples/chest_cr_RG1_J2KR.dcm"
  step segment "$bundle/adaqat" segment "$sample" --out "$OUT/masks" --json
  [[ -s "$OUT/masks/chest_cr_RG1_J2KR.png" ]] || { echo "error: no mask written" >&2; exit 1; }
  # a JPEG through OpenCV's decoder (its video/LAPACK libraries are stand-ins in the reader)
  local jpeg; jpeg=$(ls "$bundle/_internal/resources/samples/"*.jpg | head -1)
  step segment_jpeg "$bundle/adaqat" segment "$jpeg" --out "$OUT/masks_jpeg"
  [[ -s "$OUT/masks_jpeg/$(basename "${jpeg%.jpg}").png" ]] || { echo "error: no mask for the JPEG" >&2; exit 1; }
  local package="$ROOT_OUT/clinic.adaqat-model"
  if [[ ! -s "$package" ]]; then  # no annotator in this run: the reader exports its bundled model itself
    package="$OUT/bundled.adaqat-model"
    step export "$bundle/adaqat" models export default "$package"
  fi
  local digest; digest=$(sha256sum "$package" | cut -d' ' -f1)
  step import "$bundle/adaqat" models import "$package" --sha256 "$digest" --activate $(import_flags "$bundle/adaqat")
  grep -q "(active)" "$OUT/import.log" || { echo "error: the imported model is not active" >&2; exit 1; }
  step segment_imported "$bundle/adaqat" segment "$sample" --out "$OUT/masks_imported" --json
  [[ -s "$OUT/masks_imported/chest_cr_RG1_J2KR.png" ]] || { echo "error: no mask from the imported model" >&2; exit 1; }
  step screenshot "$bundle/adaqat-viewer" --demo --screenshot "$OUT/screenshot.png"
  [[ -s "$OUT/screenshot.png" ]] || { echo "error: no screenshot written" >&2; exit 1; }
  echo "== train (must be refused): adaqat train"
  local status=0
  "${NONET[@]}" "$bundle/adaqat" train --data x.csv --out "$OUT/run" > "$OUT/train.log" 2>&1 || status=$?
  if [[ $status -ne 2 ]] || ! grep -q "adaqat-annotator" "$OUT/train.log" || grep -q Traceback "$OUT/train.log"; then
    cat "$OUT/train.log" >&2; echo "error: the reader's 'adaqat train' did not refuse in one line" >&2; exit 1; fi
  echo "   refused: $(head -1 "$OUT/train.log")"
  # evaluate (no SciPy in the reader): the imported model scored against the bundled model's mask of the sample
  printf 'id,image,mask,split\nsample,%s,%s,test\n' "$sample" "$OUT/masks/chest_cr_RG1_J2KR.png" > "$OUT/eval.csv"
  step evaluate "$bundle/adaqat" evaluate --data "$OUT/eval.csv" --split test --compare default --json
  grep -q '"dice"' "$OUT/evaluate.log" || { echo "error: the reader's 'adaqat evaluate' printed no Dice" >&2; exit 1; }
  # damaged pixel data that every decoder accepts (a JPEG 2000 code-block, a JPEG DC coefficient, a lossless-JPEG
  # difference, JPEG blocks lost, zeroed JPEG 2000 packet headers; written by the checkout's venv): the frozen
  # reader refuses each in one line, so its checks are live (the OpenJPEG termination check goes through ctypes
  # to the bundled library)
  (cd "$REPO" && .venv/bin/python -m tests.codec_mutation damaged "$OUT/damaged") > /dev/null
  echo "== damaged (must be refused): adaqat segment $OUT/damaged/*.dcm"
  status=0
  "${NONET[@]}" "$bundle/adaqat" segment "$OUT"/damaged/*.dcm --out "$OUT/masks_damaged" > "$OUT/damaged.log" 2>&1 || status=$?
  if [[ $status -eq 0 ]] || [[ $(grep -c "pixel data damaged" "$OUT/damaged.log") -ne 5 ]] || grep -q Traceback "$OUT/damaged.log" \
     || ! grep -q "code-block" "$OUT/damaged.log" || ! grep -q "block grid" "$OUT/damaged.log" \
     || ! grep -q "lossless-JPEG" "$OUT/damaged.log" || ! grep -q "to the side of the picture" "$OUT/damaged.log" \
     || ! grep -q "zero bytes" "$OUT/damaged.log"; then
    cat "$OUT/damaged.log" >&2; echo "error: the reader did not refuse the damaged pictures" >&2; exit 1; fi
  echo "   refused: 5 of 5"
}

for flavour in "${FLAVOURS[@]}"; do
  "smoke_$flavour"
  cd "$ROOT_OUT/.."
done
echo "smoke test passed: $ROOT_OUT"
