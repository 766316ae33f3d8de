//! Image datasets: a folder of photos (one class per photo, or ImageNet-style class folders),
//! resized once and sampled as random crops with horizontal flips.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;
use lantern_decoding::rng::Rng;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;

/// A labelled image dataset held in memory.
pub struct ImageSet {
    /// Class names (file stems or folder names), index = label.
    pub classes: Vec<String>,
    /// `(label, image)` pairs.
    pub images: Vec<(usize, RgbImage)>,
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

/// Loads and resizes an image so that its shorter side is `short_side` (never upscaled below it).
fn load(path: &Path, short_side: u32) -> Result<RgbImage, String> {
    let img = image::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let s = short_side as f64 / w.min(h) as f64;
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
        let entries = sorted_entries(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let folders: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
        let mut classes = Vec::new();
        let mut images = Vec::new();
        if folders.is_empty() {
            for p in entries.iter().filter(|p| is_image(p)) {
                images.push((classes.len(), load(p, short_side)?));
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
                        images.push((label, load(&p, short_side)?));
                    }
                }
            }
        }
        if images.is_empty() {
            return Err(format!("{}: no .png/.jpg images found", dir.display()));
        }
        Ok(Self { classes, images })
    }

    /// A random `size × size` crop (random image, position and horizontal flip) as CHW values in
    /// [-1, 1], with its label.
    pub fn crop(&self, size: u32, rng: &mut Rng) -> (Vec<f32>, usize) {
        let (label, img) = &self.images[(rng.next_u64() % self.images.len() as u64) as usize];
        let (w, h) = img.dimensions();
        let x0 = (rng.next_u64() % (w - size + 1) as u64) as u32;
        let y0 = (rng.next_u64() % (h - size + 1) as u64) as u32;
        let flip = rng.next_u64() % 2 == 1;
        let s = size as usize;
        let mut out = vec![0f32; 3 * s * s];
        for y in 0..size {
            for x in 0..size {
                let sx = if flip { x0 + size - 1 - x } else { x0 + x };
                let px = img.get_pixel(sx, y0 + y);
                for c in 0..3 {
                    out[(c * s + y as usize) * s + x as usize] = px[c] as f32 / 127.5 - 1.0;
                }
            }
        }
        (out, *label)
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
