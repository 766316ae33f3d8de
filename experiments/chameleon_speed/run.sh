#!/usr/bin/env bash
# Chameleon-family speed, on an otherwise idle machine, from the repository root after
# `just build` (writes experiments/results/chameleon_speed/):
#   1. `lantern bench` on a random Chameleon-7B shape in bf16 (13.5 GB of matrices): the AR step
#      and tree verifies as ratios to the machine's memory floor;
#   2. transformers' own `generate()` (f32 and bf16) on random weights of a ≈1B Chameleon shape,
#      and `lantern sweep` (AR, host engine, f32 and bf16) on the very same weights, one Lumina-mGPT
#      image of 16 × 16 tokens (273 new tokens with the EOLs) per seed, T 1, top-k 2000, no CFG.
# Needs a python with torch and transformers (PYTHON; CPU use only).
set -euo pipefail
cd "$(dirname "$0")/../.."
LANTERN=${LANTERN:-target/release/lantern}
THREADS=${THREADS:-2}
IMAGES=${IMAGES:-2}
WEIGHTS=${WEIGHTS:-/tmp/chameleon-1b}
PYTHON=${PYTHON:-python3}
OUT=experiments/results/chameleon_speed
here=experiments/chameleon_speed
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads"

echo "## lantern bench, random Chameleon-7B shape, bf16, CFG (two sequences)"
RAYON_NUM_THREADS=$THREADS "$LANTERN" bench --gpt random --gpt-config "$here/chameleon-7b.json" \
    --dtypes bf16 --repeats 3 --out "$OUT/bench_7b.json"
echo "## lantern bench, random Chameleon-7B shape, bf16, --cfg false (one sequence)"
RAYON_NUM_THREADS=$THREADS "$LANTERN" bench --gpt random --gpt-config "$here/chameleon-7b.json" \
    --dtypes bf16 --repeats 3 --cfg false --out "$OUT/bench_7b_nocfg.json"
echo "## lantern bench, random ≈1B Chameleon shape, f32 and bf16, CFG"
RAYON_NUM_THREADS=$THREADS "$LANTERN" bench --gpt random --gpt-config "$here/chameleon-1b.json" \
    --dtypes f32,bf16 --repeats 3 --out "$OUT/bench_1b.json"

[ -f "$WEIGHTS/config.json" ] || "$PYTHON" "$here/transformers_chameleon_ar.py" --shape "$here/chameleon-1b.json" \
    --save "$WEIGHTS" --images 0
for dt in float32 bfloat16; do
    echo "## transformers generate(), ≈1B Chameleon shape, $dt"
    "$PYTHON" "$here/transformers_chameleon_ar.py" --shape "$here/chameleon-1b.json" --load "$WEIGHTS" \
        --images "$IMAGES" --threads "$THREADS" --dtype "$dt" 2>&1 | grep -v -i "warn\|Loading weights"
done
for dt in f32 bf16; do
    echo "## lantern sweep, AR, host engine, $dt weights"
    rm -rf "results/chameleon_1b_$dt"
    RAYON_NUM_THREADS=$THREADS "$LANTERN" sweep "$here/ar_1b.toml" --results results --set "name=chameleon_1b_$dt" \
        --set "model.gpt=$WEIGHTS" --set "model.dtype=$dt" --set "data.prompts=$WEIGHTS/captions.txt" \
        --set "data.seeds=$IMAGES"
    cp "results/chameleon_1b_$dt/tables.md" "$OUT/sweep_1b_$dt.md"
done
