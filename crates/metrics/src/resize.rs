//! Pillow's bicubic resize of a float (`'F'` mode) plane: separable, antialiased when shrinking
//! (the kernel widens by the scale), Keys kernel with a = −0.5, weights normalised per output
//! pixel, horizontal pass then vertical, f64 accumulation and an f32 intermediate. clean-fid
//! resizes every image to 299 this way before Inception ("clean" mode).

/// Pillow's bicubic kernel (a = −0.5), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each output index: the first input index and the normalised weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut k: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) / filterscale))
                .collect();
            let total: f64 = k.iter().sum();
            if total != 0.0 {
                k.iter_mut().for_each(|w| *w /= total);
            }
            (xmin, k)
        })
        .collect()
}

/// Resizes a row-major `h × w` plane to `out_h × out_w` as `Image.resize(.., BICUBIC)` does for
/// an `'F'` image.
pub fn pil_bicubic(plane: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    assert_eq!(
        plane.len(),
        h * w,
        "plane of {} values is not {h} × {w}",
        plane.len()
    );
    let horizontal = if out_w != w {
        let cx = coefficients(w, out_w);
        let mut tmp = vec![0f32; h * out_w];
        for y in 0..h {
            let row = &plane[y * w..(y + 1) * w];
            for (xx, (x0, k)) in cx.iter().enumerate() {
                let s: f64 = k.iter().zip(&row[*x0..]).map(|(w, v)| w * *v as f64).sum();
                tmp[y * out_w + xx] = s as f32;
            }
        }
        tmp
    } else {
        plane.to_vec()
    };
    if out_h == h {
        return horizontal;
    }
    let cy = coefficients(h, out_h);
    let mut out = vec![0f32; out_h * out_w];
    for (yy, (y0, k)) in cy.iter().enumerate() {
        for x in 0..out_w {
            let s: f64 = k
                .iter()
                .enumerate()
                .map(|(i, w)| w * horizontal[(y0 + i) * out_w + x] as f64)
                .sum();
            out[yy * out_w + x] = s as f32;
        }
    }
    out
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
