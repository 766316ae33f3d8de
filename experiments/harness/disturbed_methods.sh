#!/usr/bin/env bash
# Issue #25's acceptance run: `configs/methods.toml` twice, on a quiet machine and then with a
# bounded CPU hog (one spinning process per core, plus one) beside the first minutes of the second
# run, when `auto` measures its step costs. Then `lantern compare --speedups` prints each
# configuration's speedup by medians in both runs, whether they agree within noise, and how far
# each run's `auto` is from its best fixed tree.
#
#   experiments/harness/disturbed_methods.sh               # results in results/disturbed/
#   OUT=/tmp/d HOG_AFTER=10 HOG_FOR=300 experiments/harness/disturbed_methods.sh
#   experiments/harness/disturbed_methods.sh --set data.seeds=1   # a short preview (6 images a row)
#
# Run it on an otherwise idle machine: the quiet run is the reference. The quality pass is off
# (`quality.enabled=false`): it times nothing and would lengthen both runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-results/disturbed}
LANTERN=${LANTERN:-target/release/lantern}
HOG_AFTER=${HOG_AFTER:-5}   # seconds into the disturbed run when the hog starts
HOG_FOR=${HOG_FOR:-240}     # seconds it spins
SETS=(--set quality.enabled=false "$@")

rm -rf "$OUT"
mkdir -p "$OUT"
t0=$SECONDS
"$LANTERN" sweep configs/methods.toml --results "$OUT/quiet" "${SETS[@]}"
echo "quiet run: $((SECONDS - t0)) s"

spinners=$(($(nproc) + 1))
(
    sleep "$HOG_AFTER"
    echo "hog: $spinners spinning processes for $HOG_FOR s"
    for _ in $(seq "$spinners"); do
        timeout "$HOG_FOR" sh -c 'while :; do :; done' &
    done
    wait
    echo "hog: stopped"
) &
hog=$!
t0=$SECONDS
"$LANTERN" sweep configs/methods.toml --results "$OUT/hog" "${SETS[@]}"
echo "run beside the hog: $((SECONDS - t0)) s"
wait "$hog"

"$LANTERN" compare "$OUT/quiet/methods" "$OUT/hog/methods" --speedups | tee "$OUT/compare.txt"
