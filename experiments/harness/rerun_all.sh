#!/usr/bin/env bash
# Re-runs every shipped sweep from scratch, one after another on an otherwise idle machine, so
# that every reference results folder (experiments/results/<name>) carries the records of the
# current harness (forward counts, peak memory, repeats, hardware), then packs each folder as it
# is committed (scripts/pack-results.sh). Usage: experiments/harness/rerun_all.sh [CONFIG ...]
# (default: every shipped config, in the order below); LANTERN_BIN names the lantern binary
# (default: the workspace's release build).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${LANTERN_BIN:-$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/lantern}
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(configs/smoke.toml configs/fixture/*.toml configs/lantern_k.toml configs/ambiguity.toml
         configs/ambiguity_peaked.toml configs/lantern_pp_lambda.toml
         configs/entropy_temperature.toml configs/paper/*.toml configs/training_free.toml
         configs/sjd_fresh_proposal.toml
         configs/methods.toml configs/lantern_delta.toml)
for c in "${configs[@]}"; do
    name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$c" | head -1)
    rm -rf "experiments/results/$name"
    start=$(date +%s)
    "$bin" sweep "$c" --results experiments/results
    scripts/pack-results.sh "experiments/results/$name"
    echo "$c: $(( $(date +%s) - start )) s" | tee -a "${TIMES:-/tmp/lantern-rerun-times}"
done
