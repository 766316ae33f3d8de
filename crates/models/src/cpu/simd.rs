//! Vector helpers of the host engine (dot products, axpy, exp, RMSNorm, SiLU), written as plain
//! loops over 16-lane chunks and compiled once per kernel family: [`multiversion!`] wraps a body
//! in AVX-512 and AVX2 copies and dispatches on [`super::isa::isa`], so callers dispatch once
//! per loop, not per element.

/// Defines `fn $name(args) -> ret` whose body is compiled for AVX-512, AVX2 and portable code
/// and chosen at run time by [`super::isa::isa`]. The body should call `#[inline(always)]`
/// helpers only, so that they inherit the target features.
#[macro_export]
#[doc(hidden)]
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $t:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $t),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $t),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4($($arg: $t),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma,f16c")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3($($arg: $t),*) $(-> $ret)? { body($($arg),*) }
                match $crate::cpu::isa::isa() {
                    // SAFETY: isa() reports only families the running CPU supports.
                    $crate::cpu::isa::Isa::Avx512 => unsafe { v4($($arg),*) },
                    $crate::cpu::isa::Isa::Avx2 => unsafe { v3($($arg),*) },
                    $crate::cpu::isa::Isa::Portable => body($($arg),*),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                body($($arg),*)
            }
        }
    };
}

pub use crate::multiversion;

/// Lanes of the chunked loops (one AVX-512 register, two AVX2 registers).
pub const LANES: usize = 16;

/// `Σ a·b` with 16 partial sums (exact order fixed for a given length).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..LANES {
            acc[j] = x[j].mul_add(y[j], acc[j]);
        }
    }
    for (j, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[j] = x.mul_add(*y, acc[j]);
    }
    hsum(&acc)
}

/// Pairwise sum of the 16 partial sums.
#[inline(always)]
pub fn hsum(acc: &[f32; LANES]) -> f32 {
    let mut h = *acc;
    let mut w = LANES / 2;
    while w > 0 {
        for j in 0..w {
            h[j] += h[j + w];
        }
        w /= 2;
    }
    h[0]
}

/// `Σ x` with 16 partial sums.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let c = x.chunks_exact(LANES);
    let r = c.remainder();
    for chunk in c {
        for j in 0..LANES {
            acc[j] += chunk[j];
        }
    }
    for (j, v) in r.iter().enumerate() {
        acc[j] += v;
    }
    hsum(&acc)
}

/// The largest element (−inf for an empty slice; NaN-free input assumed).
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let c = x.chunks_exact(LANES);
    let r = c.remainder();
    for chunk in c {
        for j in 0..LANES {
            acc[j] = if chunk[j] > acc[j] { chunk[j] } else { acc[j] };
        }
    }
    for (j, &v) in r.iter().enumerate() {
        acc[j] = if v > acc[j] { v } else { acc[j] };
    }
    acc.iter()
        .copied()
        .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m })
}

/// `y += a·x`.
#[inline(always)]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = xi.mul_add(a, *yi);
    }
}

/// `e^x` in f32 (relative error ≲ 2e-7 over the normal range; tiny but positive below −87.3,
/// clamped above 88.7), branch-free and without float→int conversions so that loops over it
/// vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let x = if x < -87.33 { -87.33 } else { x };
    let x = if x > 88.72 { 88.72 } else { x };
    let t = x.mul_add(LOG2E, MAGIC);
    let n = t - MAGIC;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    // exp(r) on |r| ≤ ln2/2: degree-6 minimax-style polynomial (Cephes expf coefficients).
    let p = 1.987_569_1e-4f32
        .mul_add(r, 1.398_199_9e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 5e-1);
    let e = p.mul_add(r * r, r) + 1.0;
    // Scale by 2^n in two steps so that n = 128 (x near 88.7) does not overflow the exponent.
    let n = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let half = n >> 1;
    let scale = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    e * scale(half) * scale(n - half)
}

/// `x ← x / √(mean(x²) + eps) · weight`, in burn's `RmsNorm` order, for each row of `x` (rows of `weight.len()`).
#[inline(always)]
pub fn rms_norm_rows(x: &mut [f32], weight: &[f32], eps: f32) {
    let d = weight.len();
    for row in x.chunks_exact_mut(d) {
        let rms = (dot(row, row) / d as f32 + eps).sqrt();
        for (v, w) in row.iter_mut().zip(weight) {
            *v = *v / rms * w;
        }
    }
}

multiversion! {
    /// `x ← softmax(x)` in f32: −inf entries become exactly 0; a row with no finite entry becomes
    /// uniform.
    pub fn softmax_in_place(x: &mut [f32]) {
        let m = max(x);
        if !m.is_finite() {
            let u = 1.0 / x.len() as f32;
            x.iter_mut().for_each(|v| *v = u);
            return;
        }
        for v in x.iter_mut() {
            *v = if *v == f32::NEG_INFINITY { 0.0 } else { exp(*v - m) };
        }
        let inv = 1.0 / sum(x);
        for v in x.iter_mut() {
            *v *= inv;
        }
    }
}

multiversion! {
    /// RMSNorm of every row of `x` into `out` (same shape), as burn's `RmsNorm`.
    pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
        out.copy_from_slice(x);
        rms_norm_rows(out, weight, eps);
    }
}

multiversion! {
    /// SwiGLU gate on the flattened elements `start .. start + out.len()` of `[rows, f]`: for
    /// rows of `gu = [gate | up]` (width `2f`), `silu(gate) · up`.
    fn silu_mul_range(gu: &[f32], f: usize, start: usize, out: &mut [f32]) {
        let mut idx = start;
        let mut done = 0;
        while done < out.len() {
            let (row, col) = (idx / f, idx % f);
            let len = (f - col).min(out.len() - done);
            let g = &gu[row * 2 * f + col..row * 2 * f + col + len];
            let u = &gu[row * 2 * f + f + col..row * 2 * f + f + col + len];
            for ((o, &gi), &ui) in out[done..done + len].iter_mut().zip(g).zip(u) {
                *o = gi / (1.0 + exp(-gi)) * ui;
            }
            idx += len;
            done += len;
        }
    }
}

/// SwiGLU gate: for each row of `gu = [gate | up]` (width `2f`), `out = silu(gate) · up`, the
/// elements split over the CPU team.
pub fn silu_mul(gu: &[f32], f: usize, out: &mut [f32]) {
    if out.len() < 1 << 13 {
        return silu_mul_range(gu, f, 0, out);
    }
    let (ptr, len) = (out.as_mut_ptr() as usize, out.len());
    super::pool::team().run(&|t, n| {
        let r = super::pool::Team::part(len, t, n);
        // SAFETY: the threads' element ranges are disjoint parts of `out`.
        let part =
            unsafe { std::slice::from_raw_parts_mut((ptr as *mut f32).add(r.start), r.len()) };
        silu_mul_range(gu, f, r.start, part);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(-200.0), exp(-87.33));
        assert!(exp(-87.33) < 1.2e-38);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn softmax_in_place_matches_f64() {
        let mut x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        x[3] = f32::NEG_INFINITY;
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
        let z: f64 = e.iter().sum();
        softmax_in_place(&mut x);
        assert_eq!(x[3], 0.0);
        for (a, b) in x.iter().zip(&e) {
            assert!((*a as f64 - b / z).abs() < 1e-7);
        }
        let mut dead = vec![f32::NEG_INFINITY; 4];
        softmax_in_place(&mut dead);
        assert_eq!(dead, vec![0.25; 4]);
    }

    #[test]
    fn dot_and_norm() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.01).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - want).abs() < 1e-3);
        let x = vec![3.0f32, 4.0];
        let mut out = vec![0f32; 2];
        rms_norm(&x, &[1.0, 2.0], 0.0, &mut out);
        let r = (12.5f32).sqrt();
        assert!((out[0] - 3.0 / r).abs() < 1e-6 && (out[1] - 8.0 / r).abs() < 1e-6);
        let mut o = vec![0f32; 1];
        silu_mul(&[2.0, 3.0], 1, &mut o);
        assert!((o[0] - 2.0 / (1.0 + (-2f32).exp()) * 3.0).abs() < 1e-6);
    }
}
