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

/// Writes an RGB8 buffer as a compact PNG: indexed colour when it has at most 256 colours (plots),
/// RGB otherwise (decoded samples), at the best compression.
pub fn write_png(path: &Path, width: usize, height: usize, rgb: &[u8]) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, width as u32, height as u32);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let data = match palette(rgb) {
        Some((colours, indices)) => {
            enc.set_color(png::ColorType::Indexed);
            enc.set_palette(colours);
            enc.set_filter(png::FilterType::NoFilter);
            enc.set_adaptive_filter(png::AdaptiveFilterType::NonAdaptive);
            indices
        }
        None => {
            enc.set_color(png::ColorType::Rgb);
            rgb.to_vec()
        }
    };
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(&data)
        .map_err(std::io::Error::other)?;
    Ok(())
}

/// The palette (RGB triples) and per-pixel indices of an RGB8 buffer with at most 256 colours.
fn palette(rgb: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut index = std::collections::HashMap::<[u8; 3], u8>::new();
    let mut colours = Vec::new();
    let mut indices = Vec::with_capacity(rgb.len() / 3);
    for px in rgb.chunks_exact(3) {
        let key = [px[0], px[1], px[2]];
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                let i = u8::try_from(index.len()).ok()?;
                index.insert(key, i);
                colours.extend_from_slice(&key);
                i
            }
        };
        indices.push(i);
    }
    Some((colours, indices))
}

/// Rewrites an 8-bit RGB or RGBA PNG file (what plotters writes) as [`write_png`] does; other
/// PNG layouts are left as they are.
pub fn compact_png(path: &Path) -> std::io::Result<()> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info().map_err(std::io::Error::other)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(std::io::Error::other)?;
    let bytes = &buf[..info.buffer_size()];
    let rgb: Vec<u8> = match (info.color_type, info.bit_depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => bytes.to_vec(),
        (png::ColorType::Rgba, png::BitDepth::Eight)
            if bytes.chunks_exact(4).all(|p| p[3] == 255) =>
        {
            bytes
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect()
        }
        _ => return Ok(()),
    };
    write_png(path, info.width as usize, info.height as usize, &rgb)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_colours_are_indexed_and_many_stay_rgb_both_lossless() {
        let dir = std::env::temp_dir().join(format!("lantern-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (w, h) = (40, 30);
        let plot: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                if i % 7 == 0 {
                    [200, 30, 30]
                } else {
                    [255, 255, 255]
                }
            })
            .collect();
        // Every pixel its own colour: more than a palette holds.
        let noise: Vec<u8> = (0..w * h)
            .flat_map(|k| [(k % 256) as u8, (k / 256) as u8, (k * 7 % 256) as u8])
            .collect();
        for (name, rgb, indexed) in [("plot", &plot, true), ("noise", &noise, false)] {
            let path = dir.join(format!("{name}.png"));
            write_png(&path, w, h, rgb).unwrap();
            compact_png(&path).unwrap();
            let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
            let mut reader = decoder.read_info().unwrap();
            assert_eq!(reader.info().color_type == png::ColorType::Indexed, indexed);
            let mut out = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut out).unwrap();
            let decoded: Vec<u8> = match info.color_type {
                png::ColorType::Indexed => {
                    let pal = reader.info().palette.as_ref().unwrap().to_vec();
                    out[..info.buffer_size()]
                        .iter()
                        .flat_map(|&i| pal[3 * i as usize..3 * i as usize + 3].to_vec())
                        .collect()
                }
                _ => out[..info.buffer_size()].to_vec(),
            };
            assert_eq!(&decoded, rgb, "{name}");
        }
    }
}
