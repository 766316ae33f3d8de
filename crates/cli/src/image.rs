//! Turning decoded images into PNG files.

use std::path::Path;

use lantern_models::burn::prelude::*;

/// `[B, 3, H, W]` in [-1, 1] → one RGB8 buffer per image, as LlamaGen saves samples:
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
