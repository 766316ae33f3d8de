//! Decoded images as PNG files and sample grids.

use std::path::Path;

use lantern_models::burn::prelude::*;

/// `[B, 3, H, W]` in [-1, 1] → one `(width, height, RGB8)` per image, as LlamaGen saves samples:
/// `clamp(127.5·x + 128, 0, 255)`.
pub fn to_rgb8(images: Tensor<4>) -> Vec<(usize, usize, Vec<u8>)> {
    let [b, c, h, w] = images.dims();
    assert_eq!(c, 3, "expected RGB images");
    let v: Vec<f32> = images.into_data().try_into_vec_as().expect("f32 pixels");
    (0..b)
        .map(|i| {
            let mut rgb = vec![0u8; h * w * 3];
            for ch in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        let val = v[((i * 3 + ch) * h + y) * w + x];
                        rgb[(y * w + x) * 3 + ch] = (127.5 * val + 128.0).clamp(0.0, 255.0) as u8;
                    }
                }
            }
            (w, h, rgb)
        })
        .collect()
}

/// Writes an RGB8 buffer as a PNG file.
pub fn write_png(path: &Path, width: usize, height: usize, rgb: &[u8]) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(rgb)
        .map_err(std::io::Error::other)?;
    Ok(())
}

/// A file-name-safe version of a label.
pub fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

/// Writes up to 8 equally sized images side by side (4 per row, 2 px gaps) as `dir/<label>.png`.
pub fn write_grid(
    dir: &Path,
    label: &str,
    images: &[Vec<u8>],
    w: usize,
    h: usize,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cols = images.len().min(4);
    let rows = images.len().div_ceil(4);
    let gap = 2;
    let (gw, gh) = (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap);
    let mut out = vec![255u8; gw * gh * 3];
    for (i, img) in images.iter().enumerate() {
        let (ox, oy) = ((i % 4) * (w + gap), (i / 4) * (h + gap));
        for y in 0..h {
            let src = &img[y * w * 3..(y + 1) * w * 3];
            let dst = ((oy + y) * gw + ox) * 3;
            out[dst..dst + w * 3].copy_from_slice(src);
        }
    }
    write_png(&dir.join(format!("{}.png", slug(label))), gw, gh, &out)
}
