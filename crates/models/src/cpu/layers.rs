//! The pieces of a transformer layer that the host GPT and the host drafter share: the plan of
//! one forward (positions, who sees whom), rotary self-attention over the host KV cache, and the
//! SwiGLU MLP. Activations are row-major `[batch · new tokens, width]`, batch row first.

use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;

use super::cache::HostKvCache;
use super::matmul::{matmul, PackedMatrix, WeightDtype};
use super::pool::{team, Team};
use super::simd::{axpy, exp, max, multiversion, sum};
use crate::attention::Visibility;
use crate::rope::RopeTable;

/// Host values of a burn tensor (any float dtype), row-major.
pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensor")
}

/// Row-major `[k, Σ nᵢ]` values of row-major `[k, nᵢ]` matrices placed side by side.
pub(crate) fn side_by_side(parts: &[(&[f32], usize)], k: usize) -> Vec<f32> {
    assert!(
        parts.iter().all(|&(m, width)| m.len() == k * width),
        "side-by-side matrices share their rows"
    );
    let n: usize = parts.iter().map(|p| p.1).sum();
    let mut w = Vec::with_capacity(k * n);
    for r in 0..k {
        for &(m, width) in parts {
            w.extend_from_slice(&m[r * width..(r + 1) * width]);
        }
    }
    w
}

/// Packs burn `Linear` layers that read the same input side by side (`[d_in, Σ d_out]`), e.g.
/// q, k and v, or the SwiGLU gate and up projections. Biases are concatenated (zero where a
/// layer has none).
pub(crate) fn pack_side_by_side(layers: &[&Linear], dtype: WeightDtype) -> PackedMatrix {
    let k = layers[0].weight.dims()[0];
    assert!(
        layers.iter().all(|l| l.weight.dims()[0] == k),
        "side-by-side layers share their input"
    );
    let widths: Vec<usize> = layers.iter().map(|l| l.weight.dims()[1]).collect();
    let weights: Vec<Vec<f32>> = layers.iter().map(|l| host(l.weight.val())).collect();
    let parts: Vec<(&[f32], usize)> = weights
        .iter()
        .zip(&widths)
        .map(|(w, &width)| (&w[..], width))
        .collect();
    let w = side_by_side(&parts, k);
    let bias: Vec<f32> = layers
        .iter()
        .zip(&widths)
        .flat_map(|(l, &width)| l.bias.as_ref().map_or(vec![0.0; width], |b| host(b.val())))
        .collect();
    let has_bias = layers.iter().any(|l| l.bias.is_some());
    PackedMatrix::pack(&w, k, bias.len(), has_bias.then_some(&bias[..]), dtype)
}

/// EAGLE's drafter input: `fc(cat(embed(token), feature))` for `rows` batch rows of the same
/// `tokens`, `features: [rows, n, d]`; returns `[rows · n, d]`.
pub(crate) fn eagle_input(
    embed: &[f32],
    fc: &PackedMatrix,
    features: &[f32],
    tokens: &[u32],
    rows: usize,
) -> Vec<f32> {
    let d = fc.n();
    let n = tokens.len();
    assert_eq!(
        features.len(),
        rows * n * d,
        "features are not [{rows}, {n}, {d}]"
    );
    let mut input = Vec::with_capacity(rows * n * 2 * d);
    for r in 0..rows {
        for (i, &t) in tokens.iter().enumerate() {
            input.extend_from_slice(&embed[t as usize * d..(t as usize + 1) * d]);
            input.extend_from_slice(&features[(r * n + i) * d..(r * n + i + 1) * d]);
        }
    }
    let mut x = vec![0f32; rows * n * d];
    matmul(&input, rows * n, fc, &mut x, false);
    x
}

/// A burn RMSNorm as `(weight, epsilon)`.
pub(crate) fn norm(n: &RmsNorm) -> (Vec<f32>, f32) {
    (host(n.gamma.val()), n.epsilon as f32)
}

/// Which keys each new token of one forward sees, decided once and shared by every layer.
pub(crate) struct Plan<'a> {
    /// Batch rows.
    pub rows: usize,
    /// New tokens per row.
    pub n: usize,
    /// Rotary position of each new token: `[n]` shared by every row, or `[rows · n]` per row.
    pub positions: &'a [usize],
    /// The slot of new token 0 (committed + pending).
    pub slot0: usize,
    /// Per `(row, token)`: 1 where slot `0..slot0 + n` is visible, else 0.
    visible: Vec<Vec<f32>>,
    /// Whether every row sees the same slots (then `visible` holds one row's).
    shared: bool,
}

impl<'a> Plan<'a> {
    /// Plans `vis.rows()` new tokens per row after the cache's committed and pending slots, at
    /// rotary `positions` (`[n]` for every row alike, or `[rows · n]`).
    pub fn new(positions: &'a [usize], vis: &Visibility, cache: &HostKvCache) -> Self {
        let (rows, n) = (cache.batch(), vis.rows());
        assert!(
            positions.len() == n || positions.len() == rows * n,
            "one rotary position per new token, or per row and new token"
        );
        let committed = cache.len();
        let slot0 = cache.reserve(n);
        assert_eq!(
            (vis.rows(), vis.cols()),
            (n, cache.pending() + n),
            "visibility must be new × (pending + new)"
        );
        let padded = |r: usize, s: usize| {
            cache
                .key_valid()
                .and_then(|kv| kv[r].get(s))
                .is_some_and(|v| !v)
        };
        let any_pad = (0..rows).any(|r| (0..slot0 + n).any(|s| padded(r, s)));
        let plan_rows = if any_pad { rows } else { 1 };
        let visible = (0..plan_rows)
            .flat_map(|r| (0..n).map(move |i| (r, i)))
            .map(|(r, i)| {
                (0..slot0 + n)
                    .map(|s| {
                        let open = if s < committed {
                            !vis.committed_hidden(i, s)
                        } else {
                            vis.get(i, s - committed)
                        };
                        if open && !(padded(r, s) && s != slot0 + i) {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        Self {
            rows,
            n,
            positions,
            slot0,
            visible,
            shared: !any_pad,
        }
    }

    fn visible(&self, row: usize, token: usize) -> &[f32] {
        let r = if self.shared { 0 } else { row };
        &self.visible[r * self.n + token]
    }
}

/// Lanes of a key block.
const KB_LANES: usize = 16;

/// Scores of `QB` queries against `KB` blocks of 16 keys: `out[i][s] = scale · q_i · k_s`, keys
/// read from the transposed cache (`kt: [head_dim][cap]`), so each key block is one vector.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn qk_tile<const QB: usize, const KB: usize>(
    q: &[f32],
    kt: &[f32],
    cap: usize,
    hd: usize,
    (i0, s0): (usize, usize),
    keys: usize,
    scale: f32,
    out: &mut [f32],
) {
    let mut acc = [[[0f32; KB_LANES]; KB]; QB];
    for d in 0..hd {
        let row = &kt[d * cap + s0..d * cap + s0 + KB * KB_LANES];
        for (kb, chunk) in row.chunks_exact(KB_LANES).enumerate() {
            for (qi, acc_q) in acc.iter_mut().enumerate() {
                let qd = q[(i0 + qi) * hd + d];
                for (a, &k) in acc_q[kb].iter_mut().zip(chunk) {
                    *a = qd.mul_add(k, *a);
                }
            }
        }
    }
    for (qi, acc_q) in acc.iter().enumerate() {
        let o = &mut out[(i0 + qi) * keys + s0..(i0 + qi) * keys + s0 + KB * KB_LANES];
        for (chunk, a) in o.chunks_exact_mut(KB_LANES).zip(acc_q) {
            for (y, &x) in chunk.iter_mut().zip(a) {
                *y = x * scale;
            }
        }
    }
}

multiversion! {
    /// Softmax attention of one head for `n` queries over the keys `0..total` they may see
    /// (`visible[i]`: 1 or 0 per key), from the transposed keys and slot-major values of one
    /// cache head.
    /// `q: [n][hd]`, `out: [n][hd]`; `scores` is scratch of at least `n · round16(total)`.
    fn attend_head(
        q: &[f32],
        kt: &[f32],
        v: &[f32],
        cap: usize,
        total: usize,
        scale: f32,
        visible: &[&[f32]],
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let hd = v.len() / cap;
        let n = q.len() / hd;
        let keys = total.div_ceil(KB_LANES) * KB_LANES;
        let mut i = 0;
        while i < n {
            let qb = (n - i).min(4);
            let mut s = 0;
            while s < keys {
                let kb = ((keys - s) / KB_LANES).min(4);
                macro_rules! tile {
                    ($(($q:literal, $k:literal)),*) => {
                        match (qb, kb) {
                            $(($q, $k) => qk_tile::<$q, $k>(q, kt, cap, hd, (i, s), keys, scale, scores),)*
                            _ => unreachable!(),
                        }
                    };
                }
                tile!(
                    (1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3), (2, 4),
                    (3, 1), (3, 2), (3, 3), (3, 4), (4, 1), (4, 2), (4, 3), (4, 4)
                );
                s += kb * KB_LANES;
            }
            i += qb;
        }
        for (i, vis) in visible.iter().enumerate().take(n) {
            let row = &mut scores[i * keys..i * keys + total];
            for (x, &ok) in row.iter_mut().zip(vis.iter()) {
                *x = if ok > 0.0 { *x } else { f32::NEG_INFINITY };
            }
            let max = max(row);
            for (x, &ok) in row.iter_mut().zip(vis.iter()) {
                // Hidden keys: exp of a clamped −inf is tiny but not 0; the mask makes it 0.
                *x = exp(*x - max) * ok;
            }
            let sum = sum(row);
            let inv = 1.0 / sum;
            for x in row.iter_mut() {
                *x *= inv;
            }
        }
        if hd == 4 * KB_LANES {
            let mut i = 0;
            while i < n {
                match n - i {
                    1 => pv_tile::<1, 4>(scores, keys, i, total, v, out),
                    2 => pv_tile::<2, 4>(scores, keys, i, total, v, out),
                    3 => pv_tile::<3, 4>(scores, keys, i, total, v, out),
                    _ => pv_tile::<4, 4>(scores, keys, i, total, v, out),
                }
                i += (n - i).min(4);
            }
        } else {
            for i in 0..n {
                let o = &mut out[i * hd..(i + 1) * hd];
                o.fill(0.0);
                for (s, &p) in scores[i * keys..i * keys + total].iter().enumerate() {
                    axpy(p, &v[s * hd..(s + 1) * hd], o);
                }
            }
        }
    }
}

/// `out[i] = Σ_s p[i][s] · v[s]` for `QB` queries and a head of `HC` blocks of 16 values, the
/// accumulators held in registers across all keys.
#[inline(always)]
fn pv_tile<const QB: usize, const HC: usize>(
    p: &[f32],
    keys: usize,
    i0: usize,
    total: usize,
    v: &[f32],
    out: &mut [f32],
) {
    let hd = HC * KB_LANES;
    let mut acc = [[[0f32; KB_LANES]; HC]; QB];
    for s in 0..total {
        let vs = &v[s * hd..(s + 1) * hd];
        for (qi, acc_q) in acc.iter_mut().enumerate() {
            let w = p[(i0 + qi) * keys + s];
            for (a, chunk) in acc_q.iter_mut().zip(vs.chunks_exact(KB_LANES)) {
                for (x, &y) in a.iter_mut().zip(chunk) {
                    *x = w.mul_add(y, *x);
                }
            }
        }
    }
    for (qi, acc_q) in acc.iter().enumerate() {
        let o = &mut out[(i0 + qi) * hd..(i0 + qi + 1) * hd];
        for (chunk, a) in o.chunks_exact_mut(KB_LANES).zip(acc_q) {
            chunk.copy_from_slice(a);
        }
    }
}

multiversion! {
    /// Rotates the first `rotated` values (the q and k heads) of every row of `qkv` (rows of
    /// `width`; row `r·n + i` is token i of batch row r) by its rotary position: `positions[j]`
    /// of row j, the pattern repeating per batch row when it holds one row's.
    fn rotate_rows(
        qkv: &mut [f32],
        width: usize,
        rotated: usize,
        positions: &[usize],
        rope: &RopeTable,
    ) {
        for (j, row) in qkv.chunks_exact_mut(width).enumerate() {
            let pos = positions[j % positions.len()];
            for head in row[..rotated].chunks_exact_mut(rope.head_dim) {
                rope.rotate(head, pos);
            }
        }
    }
}

/// A raw pointer the team may share to write disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: every use writes a disjoint range from one thread.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so that closures capture the `Sync` wrapper, not the field).
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Rotary self-attention with fused q/k/v and an output projection.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    /// `[d_in, (heads + 2·kv_heads)·head_dim]`: q, k, v side by side.
    pub qkv: PackedMatrix,
    /// `[heads·head_dim, d_out]`.
    pub o: PackedMatrix,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Chameleon's qk-norm, applied to q and k before RoPE (`None` for LlamaGen).
    pub qk_norm: Option<QkNorm>,
}

/// Per-head LayerNorm of q and k over `head_dim` (fixed eps, no affine in the statistics), then
/// a per-head affine: `[heads · head_dim]` for q, `[kv_heads · head_dim]` for k.
#[derive(Debug, Clone)]
pub(crate) struct QkNorm {
    pub q_weight: Vec<f32>,
    pub q_bias: Vec<f32>,
    pub k_weight: Vec<f32>,
    pub k_bias: Vec<f32>,
    pub eps: f32,
}

impl QkNorm {
    /// Normalises the q and k heads at the start of every row of `qkv` (rows of `width`).
    fn apply(&self, qkv: &mut [f32], width: usize, hd: usize) {
        let q_len = self.q_weight.len();
        for row in qkv.chunks_exact_mut(width) {
            let (q, rest) = row.split_at_mut(q_len);
            let k = &mut rest[..self.k_weight.len()];
            for (x, (w, b)) in [
                (q, (&self.q_weight, &self.q_bias)),
                (k, (&self.k_weight, &self.k_bias)),
            ] {
                for ((head, w), b) in x
                    .chunks_exact_mut(hd)
                    .zip(w.chunks_exact(hd))
                    .zip(b.chunks_exact(hd))
                {
                    layer_norm_affine(head, w, b, self.eps);
                }
            }
        }
    }
}

/// `x ← (x − mean) / √(var + eps) · w + b` over one vector (biased variance, as `F.layer_norm`).
fn layer_norm_affine(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, w), b) in x.iter_mut().zip(w).zip(b) {
        *v = (*v - mean) * inv * w + b;
    }
}

impl Attention {
    /// `x += o(attention(qkv(h)))` for layer `layer`, writing the new keys and values into the
    /// cache at the plan's slots. `h, x: [rows · n, d]`.
    pub fn forward(
        &self,
        h: &[f32],
        x: &mut [f32],
        plan: &Plan,
        rope: &RopeTable,
        cache: &mut HostKvCache,
        layer: usize,
    ) {
        let (hq, hk, hd) = (self.heads, self.kv_heads, self.head_dim);
        let m = plan.rows * plan.n;
        let width = (hq + 2 * hk) * hd;
        let mut qkv = vec![0f32; m * width];
        matmul(h, m, &self.qkv, &mut qkv, false);
        if let Some(norm) = &self.qk_norm {
            norm.apply(&mut qkv, width, hd);
        }
        rotate_rows(&mut qkv, width, (hq + hk) * hd, plan.positions, rope);
        for r in 0..plan.rows {
            for i in 0..plan.n {
                let row = &qkv[(r * plan.n + i) * width..(r * plan.n + i + 1) * width];
                for g in 0..hk {
                    cache.write(
                        layer,
                        r,
                        g,
                        plan.slot0 + i,
                        &row[(hq + g) * hd..(hq + g + 1) * hd],
                        &row[(hq + hk + g) * hd..(hq + hk + g + 1) * hd],
                    );
                }
            }
        }
        let mut attn = vec![0f32; m * hq * hd];
        let out = Shared(attn.as_mut_ptr());
        let scale = 1.0 / (hd as f32).sqrt();
        let cache = &*cache;
        let cap = cache.capacity();
        let total = plan.slot0 + plan.n;
        let tasks = plan.rows * hq;
        let part = |t: usize, nt: usize| {
            let mut scores = vec![0f32; plan.n * total.div_ceil(16) * 16];
            let mut q = vec![0f32; plan.n * hd];
            let mut o = vec![0f32; plan.n * hd];
            for task in Team::part(tasks, t, nt) {
                let (r, head) = (task / hq, task % hq);
                let (kt, v) = cache.head(layer, r, head / (hq / hk));
                for i in 0..plan.n {
                    let row = (r * plan.n + i) * width + head * hd;
                    q[i * hd..(i + 1) * hd].copy_from_slice(&qkv[row..row + hd]);
                }
                let visible: Vec<&[f32]> = (0..plan.n).map(|i| plan.visible(r, i)).collect();
                attend_head(&q, kt, v, cap, total, scale, &visible, &mut scores, &mut o);
                for i in 0..plan.n {
                    let at = ((r * plan.n + i) * hq + head) * hd;
                    // SAFETY: each (row, token, head) output block is written by one task only.
                    unsafe {
                        std::ptr::copy_nonoverlapping(o[i * hd..].as_ptr(), out.at(at), hd);
                    }
                }
            }
        };
        if m * total * hq * hd < 1 << 15 {
            part(0, 1);
        } else {
            team().run(&part);
        }
        matmul(&attn, m, &self.o, x, true);
    }
}

/// SwiGLU MLP: `x += down(silu(gate h) · up h)`, gate and up packed side by side.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    /// `[d, 2f]`: gate then up.
    pub gate_up: PackedMatrix,
    /// `[f, d]`.
    pub down: PackedMatrix,
}

impl Mlp {
    /// `x += down(silu(gate h) · up h)` for `m` rows.
    pub fn forward(&self, h: &[f32], x: &mut [f32], m: usize) {
        let f = self.down.k();
        let mut gu = vec![0f32; m * 2 * f];
        matmul(h, m, &self.gate_up, &mut gu, false);
        let mut a = vec![0f32; m * f];
        super::simd::silu_mul(&gu, f, &mut a);
        matmul(&a, m, &self.down, x, true);
    }
}
