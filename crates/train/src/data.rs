//! Image datasets: a folder of photos (one class per photo, or ImageNet-style class folders),
//! sampled as random crops with horizontal flips, either at one resolution (photos resized once)
//! or at every zoom (square regions of a random size, box-filtered down to the crop size).

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;
use lantern_decoding::rng::Rng;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;

/// How a crop's source region is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CropScale {
    /// The region is the crop itself, at the resolution the photos were loaded at.
    Fixed,
    /// The region's side is log-uniform between the crop side and the photo's short side and is
    /// box-filtered down to the crop side: every zoom of a photo, from native pixels to the whole.
    LogUniform,
}

/// The photos a stage trains on and the ones its held-out metrics use.
#[derive(Clone, Copy)]
pub struct Split<'a> {
    /// Training photos.
    pub train: &'a ImageSet,
    /// Held-out photos (for `tiny-peaked`, the training photos: other crops of them).
    pub heldout: &'a ImageSet,
}

/// A labelled image dataset held in memory.
pub struct ImageSet {
    /// Class names (file stems or folder names), index = label.
    pub classes: Vec<String>,
    /// `(label, image)` pairs.
    pub images: Vec<(usize, RgbImage)>,
    /// How crops are sized.
    pub scale: CropScale,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

/// Which side of a photo a load normalises.
#[derive(Clone, Copy)]
enum Side {
    /// Resize so that the shorter side has this many pixels.
    Short(u32),
    /// Shrink (never enlarge) so that the longer side has at most this many pixels.
    LongAtMost(u32),
}

/// Loads an image and resizes it as `side` says.
fn load(path: &Path, side: Side) -> Result<RgbImage, String> {
    let img = image::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let s = match side {
        Side::Short(n) => n as f64 / w.min(h) as f64,
        Side::LongAtMost(n) if w.max(h) > n => n as f64 / w.max(h) as f64,
        Side::LongAtMost(_) => return Ok(img),
    };
    let (nw, nh) = ((w as f64 * s).round() as u32, (h as f64 * s).round() as u32);
    Ok(image::imageops::resize(
        &img,
        nw.max(1),
        nh.max(1),
        FilterType::Lanczos3,
    ))
}

impl ImageSet {
    /// Loads `dir`: if it holds sub-folders, each is a class of images (ImageNet style);
    /// otherwise each image file is its own class. Images are resized to `short_side`.
    pub fn load(dir: &Path, short_side: u32) -> Result<Self, String> {
        Self::load_as(dir, Side::Short(short_side), CropScale::Fixed)
    }

    /// Loads class folders at native resolution (longer side capped at `max_side`) for crops at
    /// every zoom. With `classes`, the folders must be exactly those (a held-out split of a
    /// training set keeps its labels).
    pub fn load_zoomed(
        dir: &Path,
        max_side: u32,
        classes: Option<&[String]>,
    ) -> Result<Self, String> {
        let set = Self::load_as(dir, Side::LongAtMost(max_side), CropScale::LogUniform)?;
        if let Some(want) = classes {
            if set.classes != want {
                return Err(format!(
                    "{}: class folders {:?} differ from the training set's {:?}",
                    dir.display(),
                    set.classes,
                    want
                ));
            }
        }
        Ok(set)
    }

    fn load_as(dir: &Path, side: Side, scale: CropScale) -> Result<Self, String> {
        let entries = sorted_entries(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let folders: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
        let mut classes = Vec::new();
        let mut images = Vec::new();
        if folders.is_empty() {
            for p in entries.iter().filter(|p| is_image(p)) {
                images.push((classes.len(), load(p, side)?));
                classes.push(
                    p.file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        } else {
            for f in folders {
                let label = classes.len();
                classes.push(
                    f.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                );
                for p in sorted_entries(f).map_err(|e| format!("{}: {e}", f.display()))? {
                    if is_image(&p) {
                        images.push((label, load(&p, side)?));
                    }
                }
            }
        }
        if images.is_empty() {
            return Err(format!("{}: no .png/.jpg images found", dir.display()));
        }
        Ok(Self {
            classes,
            images,
            scale,
        })
    }

    /// A random `size × size` crop (random image, position and horizontal flip) as CHW values in
    /// [-1, 1], with its label.
    pub fn crop(&self, size: u32, rng: &mut Rng) -> (Vec<f32>, usize) {
        let (label, img) = &self.images[(rng.next_u64() % self.images.len() as u64) as usize];
        let (w, h) = img.dimensions();
        let region = match self.scale {
            CropScale::Fixed => size,
            CropScale::LogUniform => {
                let span = (w.min(h) as f64 / size as f64).max(1.0).ln();
                ((size as f64 * (rng.uniform() * span).exp()) as u32).clamp(size, w.min(h))
            }
        };
        let x0 = (rng.next_u64() % (w - region + 1) as u64) as u32;
        let y0 = (rng.next_u64() % (h - region + 1) as u64) as u32;
        let flip = rng.next_u64() % 2 == 1;
        (box_filter(img, (x0, y0, region), size, flip), *label)
    }

    /// A batch of `window`-pixel squares, each cut at random from a `size` crop: the pixel
    /// statistics of `size` crops at a fraction of the pixels (`[B, 3, window, window]`).
    pub fn batch_windows(
        &self,
        b: usize,
        (size, window): (u32, u32),
        rng: &mut Rng,
        device: &Device,
    ) -> Tensor<4> {
        assert!(
            window <= size,
            "a window of {window} px does not fit a {size} px crop"
        );
        let (s, w) = (size as usize, window as usize);
        let mut data = Vec::with_capacity(b * 3 * w * w);
        for _ in 0..b {
            let (c, _) = self.crop(size, rng);
            let x0 = (rng.next_u64() % (s - w + 1) as u64) as usize;
            let y0 = (rng.next_u64() % (s - w + 1) as u64) as usize;
            for plane in c.chunks_exact(s * s) {
                for y in y0..y0 + w {
                    data.extend_from_slice(&plane[y * s + x0..y * s + x0 + w]);
                }
            }
        }
        Tensor::from_data(TensorData::new(data, [b, 3, w, w]), device)
    }

    /// A batch of crops: `[B, 3, size, size]` and labels.
    pub fn batch(
        &self,
        b: usize,
        size: u32,
        rng: &mut Rng,
        device: &Device,
    ) -> (Tensor<4>, Vec<usize>) {
        let mut data = Vec::with_capacity(b * 3 * (size * size) as usize);
        let mut labels = Vec::with_capacity(b);
        for _ in 0..b {
            let (c, l) = self.crop(size, rng);
            data.extend(c);
            labels.push(l);
        }
        let s = size as usize;
        (
            Tensor::from_data(TensorData::new(data, [b, 3, s, s]), device),
            labels,
        )
    }
}

/// The `region`-pixel square of `img` at `(x0, y0)` averaged down to `size × size` (each output
/// pixel the mean of its source box; the identity when `region == size`), optionally mirrored,
/// as CHW values in [-1, 1].
fn box_filter(
    img: &RgbImage,
    (x0, y0, region): (u32, u32, u32),
    size: u32,
    flip: bool,
) -> Vec<f32> {
    let s = size as usize;
    let edge = |i: usize| (i * region as usize / s) as u32;
    let mut out = vec![0f32; 3 * s * s];
    for y in 0..s {
        let (ya, yb) = (edge(y), edge(y + 1).max(edge(y) + 1));
        for x in 0..s {
            let (xa, xb) = (edge(x), edge(x + 1).max(edge(x) + 1));
            let mut sum = [0u32; 3];
            for sy in ya..yb {
                for sx in xa..xb {
                    let px = img.get_pixel(x0 + sx, y0 + sy);
                    for c in 0..3 {
                        sum[c] += px[c] as u32;
                    }
                }
            }
            let n = ((yb - ya) * (xb - xa)) as f32;
            let ox = if flip { s - 1 - x } else { x };
            for c in 0..3 {
                out[(c * s + y) * s + ox] = sum[c] as f32 / n / 127.5 - 1.0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, (x + y) as u8]))
    }

    #[test]
    fn box_filter_is_the_identity_at_native_size_and_averages_when_zoomed_out() {
        let img = gradient(16, 16);
        let same = box_filter(&img, (2, 3, 8), 8, false);
        for y in 0..8 {
            for x in 0..8 {
                let want = img.get_pixel(2 + x, 3 + y)[0] as f32 / 127.5 - 1.0;
                assert_eq!(same[(y * 8 + x) as usize], want);
            }
        }
        // 16 px → 4 px: each output pixel is the mean of a 4 × 4 box; red = x, so box i has mean
        // x = 4i + 1.5.
        let small = box_filter(&img, (0, 0, 16), 4, false);
        for (i, &got) in small[..4].iter().enumerate() {
            let want = (4.0 * i as f32 + 1.5) / 127.5 - 1.0;
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let flipped = box_filter(&img, (0, 0, 16), 4, true);
        assert_eq!(flipped[0], small[3]);
    }

    #[test]
    fn zoomed_crops_span_native_pixels_to_the_whole_photo() {
        let set = ImageSet {
            classes: vec!["a".into()],
            images: vec![(0, gradient(256, 128))],
            scale: CropScale::LogUniform,
        };
        let mut rng = Rng::new(7);
        // The red channel's spread inside a crop measures the region's width: 15 at native
        // scale (16 px), up to ~120 when the region is the whole short side (128 px).
        let spreads: Vec<f32> = (0..400)
            .map(|_| {
                let (c, _) = set.crop(16, &mut rng);
                let red = &c[..256];
                (red.iter().copied().fold(f32::MIN, f32::max)
                    - red.iter().copied().fold(f32::MAX, f32::min))
                    * 127.5
            })
            .collect();
        let lo = spreads.iter().copied().fold(f32::MAX, f32::min);
        let hi = spreads.iter().copied().fold(f32::MIN, f32::max);
        assert!(lo < 20.0 && hi > 100.0, "spread {lo}..{hi}");
    }
}
