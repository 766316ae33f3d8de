//! Pillow's resampling (`Image.resize` with `BILINEAR` or `BICUBIC`), separable and antialiased
//! when shrinking (the kernel widens by the scale), weights normalised per output pixel, one pass
//! per axis in Pillow's order. Two paths, as in Pillow: float planes (`'F'` mode: f64
//! accumulation, an f32 intermediate; clean-fid's resize before Inception) and 8-bit planes (one
//! channel of an `RGB` image: 22-bit fixed-point weights, rounding and clipping to a byte after
//! each pass; torchvision's `Resize` on a PIL image, as the VGG16 precision/recall and CLIP
//! preprocessing apply it).

/// Pillow's resampling filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Triangle kernel, support 1.
    Bilinear,
    /// Keys cubic with a = −0.5, support 2.
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// For each output index: the first input index and the normalised weights.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut k: Vec<f64> = (xmin..xmax)
                .map(|x| filter.weight((x as f64 - center + 0.5) / filterscale))
                .collect();
            let total: f64 = k.iter().sum();
            if total != 0.0 {
                k.iter_mut().for_each(|w| *w /= total);
            }
            (xmin, k)
        })
        .collect()
}

/// Fixed-point fraction bits of Pillow's 8-bit resampling (`PRECISION_BITS = 32 − 8 − 2`).
const PRECISION_BITS: u32 = 22;

/// Resamples each contiguous row of width `w` with `coeffs` (one entry per output column):
/// `out[r][o] = dot(weights_o, row_r[x0_o..])`.
fn resample_rows<T: Copy, K>(
    plane: &[T],
    w: usize,
    coeffs: &[(usize, Vec<K>)],
    dot: &impl Fn(&[K], &[T]) -> T,
) -> Vec<T> {
    plane
        .chunks(w)
        .flat_map(|row| coeffs.iter().map(move |(x0, k)| dot(k, &row[*x0..])))
        .collect()
}

/// Row-major `h × w` → row-major `w × h`.
fn transpose<T: Copy>(plane: &[T], h: usize, w: usize) -> Vec<T> {
    (0..w)
        .flat_map(|x| (0..h).map(move |y| plane[y * w + x]))
        .collect()
}

/// Pillow's two passes, each only when its axis changes size, horizontal first unless the height
/// shrinks by more than twice what the width does (Pillow 13's rule; older Pillow always went
/// horizontal first, which differs by one level in a few pixels where the rule applies, never for
/// square images); `weights` turns a normalised kernel into the accumulator's form.
fn separable<T: Copy, K>(
    plane: &[T],
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
    filter: Filter,
    weights: impl Fn(Vec<f64>) -> Vec<K>,
    dot: impl Fn(&[K], &[T]) -> T,
) -> Vec<T> {
    assert_eq!(
        plane.len(),
        h * w,
        "plane of {} values is not {h} × {w}",
        plane.len()
    );
    let kernel = |n: usize, out: usize| -> Vec<(usize, Vec<K>)> {
        coefficients(n, out, filter)
            .into_iter()
            .map(|(x0, k)| (x0, weights(k)))
            .collect()
    };
    let horizontal = |p: Vec<T>| -> Vec<T> {
        if out_w == w {
            return p;
        }
        resample_rows(&p, w, &kernel(w, out_w), &dot)
    };
    let vertical = |p: Vec<T>, width: usize| -> Vec<T> {
        if out_h == h {
            return p;
        }
        let columns = transpose(&p, h, width);
        transpose(
            &resample_rows(&columns, h, &kernel(h, out_h), &dot),
            width,
            out_h,
        )
    };
    let (dh, dw) = (h as i64 - out_h as i64, w as i64 - out_w as i64);
    if dh > 0 && dh > 2 * dw {
        horizontal(vertical(plane.to_vec(), w))
    } else {
        vertical(horizontal(plane.to_vec()), out_w)
    }
}

/// Resizes a row-major `h × w` float plane to `out_h × out_w` as `Image.resize` does for an `'F'`
/// image.
pub fn pil_resize_f32(
    plane: &[f32],
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
    filter: Filter,
) -> Vec<f32> {
    separable(
        plane,
        (h, w),
        (out_h, out_w),
        filter,
        |k| k,
        |k, v| k.iter().zip(v).map(|(w, v)| w * *v as f64).sum::<f64>() as f32,
    )
}

/// [`pil_resize_f32`] with the bicubic filter (clean-fid's resize).
pub fn pil_bicubic(plane: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    pil_resize_f32(plane, (h, w), (out_h, out_w), Filter::Bicubic)
}

/// Resizes a row-major `h × w` 8-bit plane (one channel of an `RGB` image) to `out_h × out_w` as
/// `Image.resize` does: weights rounded to 22-bit fixed point, each pass rounded and clipped to a
/// byte.
pub fn pil_resize_u8(
    plane: &[u8],
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
    filter: Filter,
) -> Vec<u8> {
    let one = (1i64 << PRECISION_BITS) as f64;
    separable(
        plane,
        (h, w),
        (out_h, out_w),
        filter,
        // Pillow's `(int)(±0.5 + k · 2²²)`: the C cast truncates toward zero.
        |k| {
            k.iter()
                .map(|&w| if w < 0.0 { -0.5 + w * one } else { 0.5 + w * one } as i64)
                .collect()
        },
        |k, v| {
            let ss = k
                .iter()
                .zip(v)
                .fold(1i64 << (PRECISION_BITS - 1), |s, (w, v)| s + w * *v as i64);
            (ss >> PRECISION_BITS).clamp(0, 255) as u8
        },
    )
}

/// Pixel values in [-1, 1] as the bytes a saved PNG holds: `clamp(127.5·x + 128, 0, 255)`,
/// truncated, as torchvision's `save_image` (LlamaGen's samplers) writes them.
pub fn to_u8(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|&x| (127.5 * x + 128.0).clamp(0.0, 255.0) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity_and_constants_stay_constant() {
        let plane: Vec<f32> = (0..12).map(|i| i as f32).collect();
        assert_eq!(pil_bicubic(&plane, 3, 4, 3, 4), plane);
        let flat = vec![7.5f32; 5 * 9];
        for (oh, ow) in [(13, 2), (2, 13), (299, 299)] {
            let out = pil_bicubic(&flat, 5, 9, oh, ow);
            assert_eq!(out.len(), oh * ow);
            assert!(out.iter().all(|v| (v - 7.5).abs() < 1e-4), "{oh}×{ow}");
        }
    }
}
