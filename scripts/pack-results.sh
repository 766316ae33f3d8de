#!/usr/bin/env bash
# Packs results folders the way the reference results are committed (experiments/results/<name>):
# journals compressed with zstd (`journal*.jsonl` → `journal*.jsonl.zst`, which `lantern report`
# and `lantern compare` read as they are), SVG copies of the plots removed (PNG stays; `lantern
# report DIR --svg` writes them again), sample grids kept. Usage: scripts/pack-results.sh DIR...
set -euo pipefail
command -v zstd >/dev/null || { echo "pack-results: needs zstd (apt-get install zstd)" >&2; exit 1; }
for dir in "$@"; do
    [ -d "$dir" ] || { echo "pack-results: $dir is not a folder" >&2; exit 1; }
    for j in "$dir"/journal*.jsonl; do
        [ -e "$j" ] || continue
        if [ -e "$j.zst" ]; then
            # A resumed folder: the packed records first, then the new ones, in one file.
            { zstd -dc "$j.zst"; cat "$j"; } | zstd -q -19 -o "$j.zst.new"
            mv "$j.zst.new" "$j.zst"
            rm "$j"
        else
            zstd -q -19 --rm "$j"
        fi
    done
    rm -f "$dir"/*.svg
    echo "$dir: $(du -sh "$dir" | cut -f1)"
done
