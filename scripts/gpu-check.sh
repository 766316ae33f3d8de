#!/usr/bin/env bash
# The GPU check, in one go on a machine with a GPU (run from the repository root):
#   1. builds the GPU feature that builds here (wgpu: offline; `FEATURE=tch BACKEND=tch-cuda`:
#      offline from the PyTorch wheel, run inside a venv with torch 2.9.0 and LIBTORCH_USE_PYTORCH=1;
#      `FEATURE=cuda` where burn's CUDA backend can download its LLVM bundle);
#   2. runs the fixture tests on the GPU (logits against the official references, greedy
#      generations, VQ, tree verification, every strategy kind, honest timing);
#   3. times the engine on random GPT-B weights (AR step, verifies of 2–64 tokens) with burn on the GPU;
#   4. runs configs/methods.toml on the GPU;
# and prints one summary table. Everything lands in results-gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
FEATURE=${FEATURE:-wgpu}
BACKEND=${BACKEND:-$FEATURE}
OUT=${OUT:-results-gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD), feature $FEATURE, backend $BACKEND"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true

cargo build --release --workspace --features "lantern-cli/$FEATURE"
LANTERN_TEST_BACKEND=$BACKEND cargo test --release --workspace --features "lantern-cli/$FEATURE" \
    --test it -- fixture_gpt:: fixture_vq:: tree_verify:: fixture_strategies:: 2>&1 \
    | tee "$OUT/tests.log" | grep -E "^test |test result"

target/release/lantern bench --backend "$BACKEND" --engines burn --models custom --gpt random \
    --gpt-config GPT-B --repeats 5 --out "$OUT/bench_gptb.json" | tee "$OUT/bench_gptb.md"
target/release/lantern sweep configs/methods.toml --backend "$BACKEND" --results "$OUT"

echo
echo "## summary"
echo "| check | result |"
echo "|---|---|"
echo "| fixture tests on $BACKEND | $(grep -c '^test .* ok$' "$OUT/tests.log") passed, $(grep -c '^test .* FAILED$' "$OUT/tests.log") failed |"
ar=$(grep -m1 "AR decode step" "$OUT/bench_gptb.md" | cut -d'|' -f3 | xargs)
v8=$(grep -m1 "verify 8 tree tokens" "$OUT/bench_gptb.md" | cut -d'|' -f3 | xargs)
v64=$(grep -m1 "verify 64 tree tokens" "$OUT/bench_gptb.md" | cut -d'|' -f3 | xargs)
echo "| GPT-B AR step / verify 8 / verify 64 (ms) | $ar / $v8 / $v64 |"
echo "| methods sweep | $OUT/methods/tables.md |"
echo
grep "^| " "$OUT/methods/tables.md" | cut -c1-220
