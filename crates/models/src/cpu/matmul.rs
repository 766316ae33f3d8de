//! Skinny products `y = x·W (+ b)` for the host engine.
//!
//! `W: [k, n]` is packed once, at load, in panels of [`NR`] output columns (`[n/16][k][16]`,
//! 64-byte aligned, zero-padded), stored as f32, bf16 or f16. `x` is a few rows of f32 (a decode
//! step has 1–2, a tree verify up to ~128). A register tile of `MR` rows × `G` panels is
//! accumulated over all of `k` in f32 and written once; the CPU team splits the column tiles.
//! Kernels for AVX-512 and AVX2+FMA (F16C) are chosen at run time; a portable kernel serves
//! everything else. Every kernel sums in the same order per output (k ascending), in f32.

use serde::{Deserialize, Serialize};

use super::isa::Isa;
use super::pool::{team, Team};

/// Output columns per panel.
pub const NR: usize = 16;

/// The most panels a register tile spans (see [`plan`]).
const MAX_G: usize = 8;

/// Products with fewer multiply-adds than this run on the calling thread alone.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// How packed weights are stored (the products always accumulate in f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    /// 32-bit floats: bit-exact weights.
    F32,
    /// bfloat16 (8-bit mantissa, f32's range), rounded to nearest even.
    Bf16,
    /// IEEE half (11-bit mantissa, max 65504), rounded to nearest even.
    F16,
}

impl WeightDtype {
    /// Parses `f32`, `bf16` or `f16`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(format!(
                "dtype '{other}' is not known; allowed: f32, bf16, f16"
            )),
        }
    }

    /// The name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }

    /// Bytes per stored weight.
    pub fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::Bf16 | Self::F16 => 2,
        }
    }

    /// The value a weight reads back as after storage in this type.
    pub fn round(self, v: f32) -> f32 {
        match self {
            Self::F32 => v,
            Self::Bf16 => half::bf16::from_f32(v).to_f32(),
            Self::F16 => half::f16::from_f32(v).to_f32(),
        }
    }

    const fn code(self) -> u8 {
        match self {
            Self::F32 => F32,
            Self::Bf16 => BF16,
            Self::F16 => F16,
        }
    }
}

const F32: u8 = 0;
const BF16: u8 = 1;
const F16: u8 = 2;

/// 64 bytes, 64-byte aligned: the unit of packed storage.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A weight matrix `[k, n]` packed for the skinny-product kernels, with an optional bias.
#[derive(Clone)]
pub struct PackedMatrix {
    k: usize,
    n: usize,
    dtype: WeightDtype,
    lines: Vec<Line>,
    /// Bias padded to whole panels (zeros past `n`).
    bias: Option<Vec<f32>>,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedMatrix[{}×{} {}]",
            self.k,
            self.n,
            self.dtype.name()
        )
    }
}

impl PackedMatrix {
    /// Packs row-major `w: [k, n]` (burn's `Linear` layout) and an optional `bias: [n]`.
    pub fn pack(w: &[f32], k: usize, n: usize, bias: Option<&[f32]>, dtype: WeightDtype) -> Self {
        assert_eq!(w.len(), k * n, "weight is not [{k}, {n}]");
        let panels = n.div_ceil(NR);
        // Storage for whole groups of MAX_G panels: a tile may read up to MAX_G panels past its
        // first column, and reads past `n` must stay inside the (zeroed) buffer.
        let elems = panels.div_ceil(MAX_G) * MAX_G * k * NR;
        let bytes = elems * dtype.bytes();
        let mut lines = vec![Line([0; 64]); bytes.div_ceil(64)];
        let base = lines.as_mut_ptr().cast::<u8>();
        for p in 0..panels {
            for kk in 0..k {
                for j in 0..NR {
                    let col = p * NR + j;
                    let v = if col < n { w[kk * n + col] } else { 0.0 };
                    let idx = (p * k + kk) * NR + j;
                    // SAFETY: idx < elems, and the buffer holds `elems` values of the dtype.
                    unsafe {
                        match dtype {
                            WeightDtype::F32 => *base.cast::<f32>().add(idx) = v,
                            WeightDtype::Bf16 => {
                                *base.cast::<u16>().add(idx) = half::bf16::from_f32(v).to_bits()
                            }
                            WeightDtype::F16 => {
                                *base.cast::<u16>().add(idx) = half::f16::from_f32(v).to_bits()
                            }
                        }
                    }
                }
            }
        }
        let bias = bias.map(|b| {
            assert_eq!(b.len(), n, "bias is not [{n}]");
            let mut padded = b.to_vec();
            padded.resize(panels * NR, 0.0);
            padded
        });
        Self {
            k,
            n,
            dtype,
            lines,
            bias,
        }
    }

    /// Input width.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output width.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Storage type.
    pub fn dtype(&self) -> WeightDtype {
        self.dtype
    }

    /// Bytes of packed weights (what a product streams).
    pub fn bytes(&self) -> usize {
        self.n.div_ceil(NR) * self.k * NR * self.dtype.bytes()
    }

    /// Multiply-adds per input row (`k · n`).
    pub fn macs(&self) -> usize {
        self.k * self.n
    }

    /// Weight `(row kk, column col)` as the kernels read it.
    pub fn get(&self, kk: usize, col: usize) -> f32 {
        assert!(kk < self.k && col < self.n);
        let idx = ((col / NR) * self.k + kk) * NR + col % NR;
        let base = self.lines.as_ptr().cast::<u8>();
        // SAFETY: idx is inside the packed buffer.
        unsafe {
            match self.dtype {
                WeightDtype::F32 => *base.cast::<f32>().add(idx),
                WeightDtype::Bf16 => half::bf16::from_bits(*base.cast::<u16>().add(idx)).to_f32(),
                WeightDtype::F16 => half::f16::from_bits(*base.cast::<u16>().add(idx)).to_f32(),
            }
        }
    }

    fn panel_ptr(&self, panel: usize) -> *const u8 {
        // SAFETY: panel ≤ panels; the offset stays inside (or one past) the buffer.
        unsafe {
            self.lines
                .as_ptr()
                .cast::<u8>()
                .add(panel * self.k * NR * self.dtype.bytes())
        }
    }
}

/// One register tile's operands (raw pointers: the team writes disjoint column ranges).
#[derive(Clone, Copy)]
struct Tile {
    x: *const f32,
    ldx: usize,
    w: *const u8,
    /// Elements between consecutive panels (`k · NR`).
    panel: usize,
    k: usize,
    out: *mut f32,
    ldo: usize,
    /// Valid output columns of this tile (≤ G · NR).
    cols: usize,
    /// Bias at the tile's first column, or null.
    bias: *const f32,
    accumulate: bool,
}

type Kernel = unsafe fn(&Tile, usize);

/// Register tiling of a product with `m` rows: `(rows per tile, panels per tile)`.
fn plan(isa: Isa, m: usize) -> (usize, usize) {
    match (isa, m) {
        (Isa::Avx512, 1) => (1, 8),
        (Isa::Avx512, 2..=4) => (4, 4),
        // Eight rows per weight load: measured best on the embedded default's 8–64-row verifies.
        (Isa::Avx512, _) => (8, 2),
        (Isa::Avx2, 1) => (1, 4),
        (Isa::Avx2, 2) => (2, 2),
        (Isa::Avx2, _) => (4, 1),
        (Isa::Portable, _) => (4, 1),
    }
}

/// The kernel for `rows ≤ MR` rows of `g` panels.
fn kernel(isa: Isa, dtype: WeightDtype, rows: usize, g: usize) -> Kernel {
    macro_rules! pick {
        ($f:ident, $d:expr, [$(($mr:literal, $g:literal)),*]) => {
            match (rows, g) {
                $(($mr, $g) => $f::<$d, $mr, $g> as Kernel,)*
                _ => unreachable!("no kernel for {rows}×{g}"),
            }
        };
    }
    macro_rules! by_dtype {
        ($f:ident, $combos:tt) => {
            match dtype.code() {
                F32 => pick!($f, F32, $combos),
                BF16 => pick!($f, BF16, $combos),
                _ => pick!($f, F16, $combos),
            }
        };
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => by_dtype!(
            tile_avx512,
            [
                (1, 8),
                (1, 4),
                (2, 4),
                (3, 4),
                (4, 4),
                (1, 2),
                (2, 2),
                (3, 2),
                (4, 2),
                (5, 2),
                (6, 2),
                (7, 2),
                (8, 2)
            ]
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => by_dtype!(tile_avx2, [(1, 4), (2, 2), (1, 1), (2, 1), (3, 1), (4, 1)]),
        _ => by_dtype!(tile_portable, [(1, 1), (2, 1), (3, 1), (4, 1)]),
    }
}

/// A raw pointer the team may share (each thread writes its own columns).
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only to write disjoint column ranges from the team's threads.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the `Sync` wrapper, not the field).
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// `out[m, n] = x[m, k] · W (+ bias)`, or `out += …` when `accumulate`.
pub fn matmul(x: &[f32], m: usize, w: &PackedMatrix, out: &mut [f32], accumulate: bool) {
    matmul_isa(super::isa::isa(), x, m, w, out, accumulate)
}

/// [`matmul`] with an explicit kernel family (tests compare them).
pub fn matmul_isa(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &PackedMatrix,
    out: &mut [f32],
    accumulate: bool,
) {
    let (k, n) = (w.k, w.n);
    assert_eq!(x.len(), m * k, "x is not [{m}, {k}]");
    assert_eq!(out.len(), m * n, "out is not [{m}, {n}]");
    if m == 0 || n == 0 {
        return;
    }
    let (mr, g) = plan(isa, m);
    let tile_w = g * NR;
    let tiles = n.div_ceil(tile_w);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let x_ptr = x.as_ptr() as usize;
    let full = kernel(isa, w.dtype, mr, g);
    let rest = (!m.is_multiple_of(mr)).then(|| kernel(isa, w.dtype, m % mr, g));
    let part = |t: usize, nt: usize| {
        for tile in Team::part(tiles, t, nt) {
            let col0 = tile * tile_w;
            let mut rb = 0;
            while rb < m {
                let rows = mr.min(m - rb);
                let f = if rows == mr {
                    full
                } else {
                    rest.expect("remainder kernel")
                };
                let t = Tile {
                    x: (x_ptr as *const f32).wrapping_add(rb * k),
                    ldx: k,
                    w: w.panel_ptr(col0 / NR),
                    panel: k * NR,
                    k,
                    out: out_ptr.at(rb * n + col0),
                    ldo: n,
                    cols: tile_w.min(n - col0),
                    bias: w
                        .bias
                        .as_ref()
                        .map_or(std::ptr::null(), |b| b[col0..].as_ptr()),
                    accumulate,
                };
                // SAFETY: the tile's rows, panels and columns are inside x, w and out; threads
                // write disjoint column tiles; the kernel matches the running CPU's features.
                unsafe { f(&t, rows) };
                rb += rows;
            }
        }
    };
    if m * k * n < PARALLEL_MIN_MACS {
        part(0, 1);
    } else {
        team().run(&part);
    }
}

/// Writes a finished row segment: `v (+ bias) (+ out)` for the tile's valid columns.
#[inline(always)]
unsafe fn store_row(t: &Tile, r: usize, c0: usize, v: &[f32]) {
    let o = t.out.add(r * t.ldo + c0);
    let lanes = v.len().min(t.cols.saturating_sub(c0));
    for (j, &a) in v[..lanes].iter().enumerate() {
        let mut y = a;
        if !t.bias.is_null() {
            y += *t.bias.add(c0 + j);
        }
        if t.accumulate {
            y += *o.add(j);
        }
        *o.add(j) = y;
    }
}

/// Portable kernel: `MR` rows × `G` panels, plain f32 loops.
unsafe fn tile_portable<const D: u8, const MR: usize, const G: usize>(t: &Tile, rows: usize) {
    debug_assert_eq!(rows, MR);
    let mut acc = [[[0f32; NR]; G]; MR];
    for kk in 0..t.k {
        for (g, panel) in (0..G).map(|g| (g, g * t.panel + kk * NR)) {
            let mut w = [0f32; NR];
            for (j, wj) in w.iter_mut().enumerate() {
                *wj = match D {
                    F32 => *t.w.cast::<f32>().add(panel + j),
                    BF16 => half::bf16::from_bits(*t.w.cast::<u16>().add(panel + j)).to_f32(),
                    _ => half::f16::from_bits(*t.w.cast::<u16>().add(panel + j)).to_f32(),
                };
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let xv = *t.x.add(r * t.ldx + kk);
                for (a, &wj) in acc_r[g].iter_mut().zip(&w) {
                    *a = xv.mul_add(wj, *a);
                }
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (g, v) in acc_r.iter().enumerate() {
            if g * NR < t.cols {
                store_row(t, r, g * NR, v);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of a panel to prefetch ahead of the one being multiplied (one prefetch per cache line):
/// measured 9% faster on GPT-B's DRAM-bound decode step, neutral on cache-resident models.
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 32;

/// 16 weights at element `idx` of a panel, widened to f32.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn load16<const D: u8>(w: *const u8, idx: usize) -> __m512 {
    match D {
        F32 => _mm512_load_ps(w.cast::<f32>().add(idx)),
        BF16 => {
            let h = _mm256_load_si256(w.cast::<u16>().add(idx).cast());
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
        }
        _ => _mm512_cvtph_ps(_mm256_load_si256(w.cast::<u16>().add(idx).cast())),
    }
}

/// AVX-512 kernel: `MR` rows × `G` panels of 16 columns, one zmm accumulator each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn tile_avx512<const D: u8, const MR: usize, const G: usize>(t: &Tile, rows: usize) {
    debug_assert_eq!(rows, MR);
    let mut acc = [[_mm512_setzero_ps(); G]; MR];
    let mut w = [_mm512_setzero_ps(); G];
    let bytes = match D {
        F32 => 4,
        _ => 2,
    };
    for kk in 0..t.k {
        for (g, wg) in w.iter_mut().enumerate() {
            *wg = load16::<D>(t.w, g * t.panel + kk * NR);
            if kk % (64 / (NR * bytes)).max(1) == 0 {
                // A hint: never faults, even past the end of the weights.
                _mm_prefetch::<_MM_HINT_T0>(
                    t.w.wrapping_add((g * t.panel + (kk + PREFETCH) * NR) * bytes)
                        .cast(),
                );
            }
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xv = _mm512_set1_ps(*t.x.add(r * t.ldx + kk));
            for (a, &wg) in acc_r.iter_mut().zip(&w) {
                *a = _mm512_fmadd_ps(xv, wg, *a);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (g, &v) in acc_r.iter().enumerate() {
            let c0 = g * NR;
            if c0 >= t.cols {
                break;
            }
            let lanes = (t.cols - c0).min(NR);
            let mask: __mmask16 = if lanes == NR {
                0xFFFF
            } else {
                (1u16 << lanes) - 1
            };
            let o = t.out.add(r * t.ldo + c0);
            let mut y = v;
            if !t.bias.is_null() {
                y = _mm512_add_ps(y, _mm512_loadu_ps(t.bias.add(c0)));
            }
            if t.accumulate {
                y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, o));
            }
            _mm512_mask_storeu_ps(o, mask, y);
        }
    }
}

/// 8 weights at element `idx` of a panel, widened to f32.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn load8<const D: u8>(w: *const u8, idx: usize) -> __m256 {
    match D {
        F32 => _mm256_load_ps(w.cast::<f32>().add(idx)),
        BF16 => {
            let h = _mm_load_si128(w.cast::<u16>().add(idx).cast());
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        }
        _ => _mm256_cvtph_ps(_mm_load_si128(w.cast::<u16>().add(idx).cast())),
    }
}

/// AVX2 kernel: `MR` rows × `G` panels, two ymm accumulators per panel and row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_avx2<const D: u8, const MR: usize, const G: usize>(t: &Tile, rows: usize) {
    debug_assert_eq!(rows, MR);
    let mut acc = [[[_mm256_setzero_ps(); 2]; G]; MR];
    let mut w = [[_mm256_setzero_ps(); 2]; G];
    let bytes = match D {
        F32 => 4,
        _ => 2,
    };
    for kk in 0..t.k {
        for (g, wg) in w.iter_mut().enumerate() {
            let idx = g * t.panel + kk * NR;
            *wg = [load8::<D>(t.w, idx), load8::<D>(t.w, idx + 8)];
            if kk % (64 / (NR * bytes)).max(1) == 0 {
                _mm_prefetch::<_MM_HINT_T0>(t.w.wrapping_add((idx + PREFETCH * NR) * bytes).cast());
            }
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xv = _mm256_set1_ps(*t.x.add(r * t.ldx + kk));
            for (a, wg) in acc_r.iter_mut().zip(&w) {
                a[0] = _mm256_fmadd_ps(xv, wg[0], a[0]);
                a[1] = _mm256_fmadd_ps(xv, wg[1], a[1]);
            }
        }
    }
    let mut row = [0f32; NR];
    for (r, acc_r) in acc.iter().enumerate() {
        for (g, v) in acc_r.iter().enumerate() {
            if g * NR >= t.cols {
                break;
            }
            _mm256_storeu_ps(row.as_mut_ptr(), v[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), v[1]);
            store_row(t, r, g * NR, &row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Every kernel family this CPU runs, every dtype, row counts across tile remainders and
    /// column counts that end mid-panel, against a plain f64 product of the stored weights.
    #[test]
    fn kernels_match_a_plain_product() {
        let mut seed = 7;
        for isa in super::super::isa::available() {
            for dtype in [WeightDtype::F32, WeightDtype::Bf16, WeightDtype::F16] {
                for &(m, k, n) in &[
                    (1, 7, 5),
                    (2, 33, 70),
                    (3, 64, 129),
                    (5, 40, 48),
                    (7, 16, 50),
                    (9, 300, 200),
                    (17, 20, 40),
                    (1, 256, 1000),
                ] {
                    let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
                    let b: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
                    let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
                    let p = PackedMatrix::pack(&w, k, n, Some(&b), dtype);
                    let mut out: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
                    let before = out.clone();
                    matmul_isa(isa, &x, m, &p, &mut out, true);
                    for r in 0..m {
                        for c in 0..n {
                            let want: f64 = (0..k)
                                .map(|kk| x[r * k + kk] as f64 * dtype.round(w[kk * n + c]) as f64)
                                .sum::<f64>()
                                + b[c] as f64
                                + before[r * n + c] as f64;
                            let got = out[r * n + c] as f64;
                            assert!(
                                (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                                "{isa:?} {dtype:?} m{m} k{k} n{n} at ({r},{c}): {got} vs {want}"
                            );
                        }
                    }
                    assert_eq!(p.get(k - 1, n - 1), dtype.round(w[(k - 1) * n + n - 1]));
                }
            }
        }
    }

    #[test]
    fn kernel_families_agree_exactly() {
        // Same summation order in every family: identical bits for identical inputs.
        let (m, k, n) = (6, 96, 80);
        let mut seed = 3;
        let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
        let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let p = PackedMatrix::pack(&w, k, n, None, WeightDtype::F32);
        let outs: Vec<Vec<f32>> = super::super::isa::available()
            .into_iter()
            .map(|isa| {
                let mut o = vec![0f32; m * n];
                matmul_isa(isa, &x, m, &p, &mut o, false);
                o
            })
            .collect();
        assert!(outs.windows(2).all(|w| w[0] == w[1]));
    }
}
