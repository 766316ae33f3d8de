#!/usr/bin/env bash
# The engine benchmark, side by side in one run (run it on an otherwise idle machine, from the
# repository root, after `just build`):
#   1. `lantern bench` on the embedded default: every engine and weight storage;
#   2. the official PyTorch LlamaGen generate() on random GPT-B weights, and ours on the very same
#      weights file (f32, bf16, f16 host engine; burn), three images each;
#   3. `lantern bench` on those GPT-B weights.
# Needs python3 with torch and numpy, and a checkout of FoundationVision/LlamaGen (LLAMAGEN=path).
# Writes results/engine/{tiny,gptb}.json and results/engine/run.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLAMAGEN:?set LLAMAGEN to a FoundationVision/LlamaGen checkout}"
WEIGHTS=${WEIGHTS:-/tmp/gptb.pt}
IMAGES=${IMAGES:-3}
THREADS=${THREADS:-2}
LANTERN=${LANTERN:-target/release/lantern}
OUT=results/engine
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads"

echo "## lantern bench, embedded default"
RAYON_NUM_THREADS=$THREADS "$LANTERN" bench --engines host,burn --dtypes f32,bf16,f16 --out "$OUT/tiny.json"

[ -f "$WEIGHTS" ] || python3 experiments/engine/pytorch_llamagen_ar.py --llamagen "$LLAMAGEN" \
    --model GPT-B --save "$WEIGHTS" --images 0
echo "## official PyTorch generate(), GPT-B, CFG 4, top-k 2000"
python3 experiments/engine/pytorch_llamagen_ar.py --llamagen "$LLAMAGEN" --model GPT-B \
    --images "$IMAGES" --threads "$THREADS" 2>&1 | grep -v -i warning
for dt in f32 bf16 f16; do
    echo "## lantern generate, host engine, $dt weights"
    RAYON_NUM_THREADS=$THREADS "$LANTERN" generate --models custom --gpt "$WEIGHTS" --gpt-config GPT-B \
        --strategy ar --cfg 4 --top-k 2000 --class 3 --images "$IMAGES" --dtype "$dt" --out "out/engine-$dt"
done
echo "## lantern generate, burn engine, f32 weights"
RAYON_NUM_THREADS=$THREADS "$LANTERN" generate --models custom --gpt "$WEIGHTS" --gpt-config GPT-B \
    --strategy ar --cfg 4 --top-k 2000 --class 3 --images 1 --engine burn --out out/engine-burn
echo "## lantern bench, GPT-B"
RAYON_NUM_THREADS=$THREADS "$LANTERN" bench --models custom --gpt "$WEIGHTS" --gpt-config GPT-B \
    --engines host,burn --dtypes f32,bf16,f16 --repeats 5 --out "$OUT/gptb.json"
