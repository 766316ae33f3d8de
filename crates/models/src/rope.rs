//! LlamaGen's 2D rotary embedding (`precompute_freqs_cis_2d` + `apply_rotary_emb`).
//!
//! The table has one row per sequence position: `cls_token_num` all-zero rows for the
//! conditioning positions (so their queries and keys are exactly zero, as in the official code),
//! then one row per grid cell in raster order, then `extra_zero_rows` zero rows so that tree
//! positions past the last cell stay in range (LANTERN appends 10). Rotation is on interleaved
//! pairs `(x[2m], x[2m+1])`; the first `head_dim/4` pairs rotate with the row index, the rest
//! with the column index. [`RopeTable::from_angles`] builds other tables in the same pair layout
//! (the Chameleon decoder's 1D table, `crate::chameleon::rope_table`).

use burn::prelude::*;
use burn::tensor::TensorData;

/// Precomputed rotary table for per-token positions: `cos` and signed `sin`, each `[positions, head_dim]`.
#[derive(Debug, Clone)]
pub struct Rope2d {
    /// `cos θ` repeated for both members of each pair: `[positions, head_dim]`.
    cos: Tensor<2>,
    /// `(-sin θ, +sin θ)` per pair: `[positions, head_dim]`.
    sin: Tensor<2>,
    positions: usize,
}

/// Rotation angles of one table row: `head_dim / 2` values, or `None` for a zero row.
pub fn rope_angles(
    position: usize,
    grid: usize,
    head_dim: usize,
    base: f64,
    cls_token_num: usize,
) -> Option<Vec<f32>> {
    let cell = position.checked_sub(cls_token_num)?;
    if cell >= grid * grid {
        return None;
    }
    let (row, col) = ((cell / grid) as f32, (cell % grid) as f32);
    let half = head_dim / 2;
    let quarter = head_dim / 4;
    // w_j = base^(-2j/half), computed in f32 as the official code does.
    let freq = |j: usize| (1.0 / base.powf((2 * j) as f64 / half as f64)) as f32;
    Some(
        (0..half)
            .map(|m| {
                if m < quarter {
                    row * freq(m)
                } else {
                    col * freq(m - quarter)
                }
            })
            .collect(),
    )
}

/// The rotary table on the host: `cos` and signed `sin`, `[positions, head_dim]` each (see
/// [`Rope2d`]); the host engine rotates with it directly.
#[derive(Debug, Clone)]
pub struct RopeTable {
    /// `cos θ` for both members of each pair.
    pub cos: Vec<f32>,
    /// `(-sin θ, +sin θ)` per pair.
    pub sin: Vec<f32>,
    /// Rows.
    pub positions: usize,
    /// Row width.
    pub head_dim: usize,
}

impl RopeTable {
    /// `cls_token_num` zero rows, `grid²` grid rows, `extra_zero_rows` (at least one) zero rows.
    pub fn new(
        grid: usize,
        head_dim: usize,
        base: f64,
        cls_token_num: usize,
        extra_zero_rows: usize,
    ) -> Self {
        let positions = cls_token_num + grid * grid + extra_zero_rows.max(1);
        Self::from_angles(positions, head_dim, |p| {
            rope_angles(p, grid, head_dim, base, cls_token_num)
        })
    }

    /// A table of `positions` rows whose row p rotates pair m by `angles(p)[m]` (`None`: a zero
    /// row).
    pub fn from_angles(
        positions: usize,
        head_dim: usize,
        angles: impl Fn(usize) -> Option<Vec<f32>>,
    ) -> Self {
        let mut cos = vec![0f32; positions * head_dim];
        let mut sin = vec![0f32; positions * head_dim];
        for p in 0..positions {
            if let Some(angles) = angles(p) {
                for (m, a) in angles.iter().enumerate() {
                    let (s, c) = (*a as f64).sin_cos();
                    let i = p * head_dim + 2 * m;
                    cos[i] = c as f32;
                    cos[i + 1] = c as f32;
                    sin[i] = -(s as f32);
                    sin[i + 1] = s as f32;
                }
            }
        }
        Self {
            cos,
            sin,
            positions,
            head_dim,
        }
    }

    /// Rotates one head vector `x: [head_dim]` in place by row `position` (past the table: the
    /// last row, a zero row), computing `x·cos + swap(x)·sin` as [`apply_rotary`] does.
    #[inline(always)]
    pub fn rotate(&self, x: &mut [f32], position: usize) {
        let hd = self.head_dim;
        let p = position.min(self.positions - 1) * hd;
        let (cos, sin) = (&self.cos[p..p + hd], &self.sin[p..p + hd]);
        let mut swapped = [0f32; 2];
        for ((pair, c), s) in x
            .chunks_exact_mut(2)
            .zip(cos.chunks_exact(2))
            .zip(sin.chunks_exact(2))
        {
            swapped[0] = pair[1];
            swapped[1] = pair[0];
            pair[0] = pair[0] * c[0] + swapped[0] * s[0];
            pair[1] = pair[1] * c[1] + swapped[1] * s[1];
        }
    }
}

impl Rope2d {
    /// Builds the table: `cls_token_num` zero rows, `grid²` grid rows, `extra_zero_rows` (at least
    /// one) zero rows.
    pub fn new(
        grid: usize,
        head_dim: usize,
        base: f64,
        cls_token_num: usize,
        extra_zero_rows: usize,
        device: &Device,
    ) -> Self {
        Self::from_table(
            RopeTable::new(grid, head_dim, base, cls_token_num, extra_zero_rows),
            device,
        )
    }

    /// The host table `t` on `device`.
    pub fn from_table(t: RopeTable, device: &Device) -> Self {
        let shape = [t.positions, t.head_dim];
        Self {
            cos: Tensor::from_data(TensorData::new(t.cos, shape), device),
            sin: Tensor::from_data(TensorData::new(t.sin, shape), device),
            positions: t.positions,
        }
    }

    /// Number of positions the table covers.
    pub fn len(&self) -> usize {
        self.positions
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.positions == 0
    }

    /// The `(cos, signed sin)` rows for `positions`, shaped `[1, N, 1, head_dim]` for broadcasting.
    ///
    /// Positions past the table read its last row, which is a zero row whenever the table was
    /// built with `extra_zero_rows > 0` (such tokens lie past the image and are never kept).
    pub fn rows(&self, positions: &[usize]) -> (Tensor<4>, Tensor<4>) {
        let device = self.cos.device();
        let n = positions.len();
        let [_, hd] = self.cos.dims();
        let idx: Vec<i64> = positions
            .iter()
            .map(|&p| p.min(self.positions - 1) as i64)
            .collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &device);
        let cos = self
            .cos
            .clone()
            .select(0, idx.clone())
            .reshape([1, n, 1, hd]);
        let sin = self.sin.clone().select(0, idx).reshape([1, n, 1, hd]);
        (cos, sin)
    }
}

/// Rotates interleaved pairs of `x: [B, N, H, head_dim]` with rows from [`Rope2d::rows`].
pub fn apply_rotary(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [b, n, h, hd] = x.dims();
    let swapped = x
        .clone()
        .reshape([b, n, h, hd / 2, 2])
        .flip([4])
        .reshape([b, n, h, hd]);
    x * cos.clone() + swapped * sin.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cond_rows_are_zero_and_first_cell_is_identity() {
        let dev = crate::backend::test_device();
        let rope = Rope2d::new(4, 8, 10000.0, 2, 3, &dev);
        assert_eq!(rope.len(), 2 + 16 + 3);
        let (cos, sin) = rope.rows(&[0, 1, 2, 18]);
        let cos: Vec<f32> = cos.into_data().try_into_vec_as().unwrap();
        let sin: Vec<f32> = sin.into_data().try_into_vec_as().unwrap();
        assert!(cos[..16].iter().all(|&v| v == 0.0));
        assert!(sin[..16].iter().all(|&v| v == 0.0));
        assert!(cos[16..24].iter().all(|&v| v == 1.0));
        assert!(sin[16..24].iter().all(|&v| v == 0.0));
        assert!(cos[24..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn rotation_matches_complex_multiplication() {
        let dev = crate::backend::test_device();
        let rope = Rope2d::new(4, 8, 10000.0, 1, 1, &dev);
        let p = 1 + 4 * 2 + 3; // row 2, column 3
        let angles = rope_angles(p, 4, 8, 10000.0, 1).unwrap();
        let x: Vec<f32> = (0..8).map(|i| i as f32 * 0.3 - 1.0).collect();
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 1, 1, 8]), &dev);
        let (cos, sin) = rope.rows(&[p]);
        let out: Vec<f32> = apply_rotary(xt, &cos, &sin)
            .into_data()
            .try_into_vec_as()
            .unwrap();
        for m in 0..4 {
            let (s, c) = (angles[m] as f64).sin_cos();
            let (a, b) = (x[2 * m] as f64, x[2 * m + 1] as f64);
            assert!((out[2 * m] as f64 - (a * c - b * s)).abs() < 1e-6);
            assert!((out[2 * m + 1] as f64 - (b * c + a * s)).abs() < 1e-6);
        }
        // Row pairs use the row index, column pairs the column index.
        assert_eq!(angles[0], 2.0);
        assert_eq!(angles[2], 3.0);
    }
}
