#!/usr/bin/env bash
# Smoke test of the built bundle (dist/adaqat) with no network at all (a fresh network namespace):
# segment the sample DICOM with the bundled command line, start the viewer offscreen and save a
# screenshot, fine-tune the bundled model on two images for one short epoch. Exit 0 when all pass.
# Usage: bash packaging/smoke_test.sh [OUT_DIR]   (times and peak memory: OUT_DIR/*.time)
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="$PWD/dist/adaqat"
OUT="$(realpath -m "${1:-build/smoke}")"
DATA="${ADAQAT_SHARED_DATA:-$PWD/../shared/data}/cxr-lungs"
[[ -x "$BUNDLE/adaqat-viewer" ]] || { echo "error: $BUNDLE not built (run: bash packaging/build.sh)" >&2; exit 2; }
[[ -f "$DATA/manifest.csv" ]] || { echo "error: $DATA/manifest.csv missing (set ADAQAT_SHARED_DATA)" >&2; exit 2; }
rm -rf "$OUT" && mkdir -p "$OUT/data/images" "$OUT/data/masks"
if [[ $(id -u) -eq 0 ]]; then NONET=(unshare -n); else NONET=(unshare -rn); fi

# two training images and one held-out image (for the run's comparison with its parent)
{ echo "id,image,mask,split"
  awk -F, 'NR>1 && $4=="train" && n<2 {print $1",images/"$1".jpg,masks/"$1".png,train"; n++}' "$DATA/manifest.csv"
  awk -F, 'NR>1 && $4=="val" && n<1 {print $1",images/"$1".jpg,masks/"$1".png,val"; n++}' "$DATA/manifest.csv"
} > "$OUT/data/manifest.csv"
tail -n +2 "$OUT/data/manifest.csv" | while IFS=, read -r id _; do
  cp "$DATA/images/$id.jpg" "$OUT/data/images/"; cp "$DATA/masks/$id.png" "$OUT/data/masks/"; done

# a clean user folder and environment: nothing from the checkout or its venv
export ADAQAT_HOME="$OUT/home" ADAQAT_SETTINGS="$OUT/viewer.ini" QT_QPA_PLATFORM=offscreen
unset PYTHONPATH VIRTUAL_ENV
cd "$OUT"
step() {  # step NAME COMMAND...: run offline under /usr/bin/time -v, keep its log
  local name=$1; shift
  echo "== $name: $*"
  if ! "${NONET[@]}" /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1; then
    tail -20 "$OUT/$name.log" >&2; echo "error: smoke step '$name' failed" >&2; exit 1; fi
  awk -F': ' '/Elapsed \(wall/ {w=$2} /Maximum resident/ {printf "   wall %s, peak RSS %.0f MiB\n", w, $2/1024}' \
    "$OUT/$name.time"
}
SAMPLE="$BUNDLE/_internal/resources/samples/chest_cr_RG1_J2KR.dcm"
step segment "$BUNDLE/adaqat" segment "$SAMPLE" --out "$OUT/masks" --json
[[ -s "$OUT/masks/chest_cr_RG1_J2KR.png" ]] || { echo "error: no mask written" >&2; exit 1; }
step screenshot "$BUNDLE/adaqat-viewer" --demo --screenshot "$OUT/screenshot.png"
[[ -s "$OUT/screenshot.png" ]] || { echo "error: no screenshot written" >&2; exit 1; }
step train "$BUNDLE/adaqat" train --data "$OUT/data/manifest.csv" --out "$OUT/run" --from default \
  --epochs 1 --qat-epochs 1 --batch-size 2 --time-budget 240 --device cpu
ls -d "$OUT"/run/model-* > /dev/null || { echo "error: training wrote no model" >&2; exit 1; }
echo "smoke test passed: $OUT"
