#!/usr/bin/env bash
# Extracts the natural photos that packages ship (see checkpoints/tiny/README.md for the list and
# licences) into data/photos/ (one file per class: the `tiny-peaked` layout), then lays them out as
# themed classes in data/themes/{train,heldout}/<class>/ (links; the `tiny` layout, one photo of
# each theme held out). Needs only PyPI and the Debian archive.
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

# Themes of the `tiny` preset: class -> "held-out photo | training photos".
themes="$(dirname "$out")/themes"
declare -A theme=(
    [flowers]="mate_LadyBird.jpg | mate_FreshFlower.jpg mate_Garden.jpg mate_YellowFlower.jpg mate_TwoWings.jpg sklearn_flower.jpg plasma_FallenLeaf.jpg"
    [foliage]="mate_RainDrops.jpg | mate_Blinds.jpg mate_GreenMeadow.jpg plasma_OneStandsOut.jpg plasma_Path.jpg skimage_grass.png"
    [water_and_sky]="plasma_BytheWater.jpg | mate_Aqua.jpg mate_Storm.jpg mate_Dune.jpg plasma_ColdRipple.jpg plasma_DarkestHour.jpg plasma_summer_1am.jpg plasma_Kite.jpg plasma_EveningGlow.jpg"
    [textures]="mate_Wood.jpg | plasma_Grey.jpg skimage_brick.png skimage_gravel.png skimage_coins.png plasma_ColorfulCups.jpg"
    [people_and_things]="skimage_coffee.png | skimage_astronaut.png skimage_camera.png skimage_chelsea.png skimage_rocket.jpg sklearn_china.jpg"
    [microscopy_and_space]="skimage_hubble_deep_field.jpg | skimage_ihc.png skimage_retina.jpg"
)
rm -rf "$themes"
photos="$(cd "$out" && pwd)"
for c in "${!theme[@]}"; do
    mkdir -p "$themes/train/$c" "$themes/heldout/$c"
    held="${theme[$c]%% |*}"
    ln -s "$photos/$held" "$themes/heldout/$c/$held"
    for f in ${theme[$c]#*| }; do
        ln -s "$photos/$f" "$themes/train/$c/$f"
    done
done
echo "$(find "$themes/train" -name '*.*' | wc -l) training and $(find "$themes/heldout" -name '*.*' | wc -l) held-out photos in $themes"
