//! Scaled dot-product attention over (committed cache ∪ pending ∪ new tokens), and the masks
//! that say which keys each new token may see.
//!
//! Key layout for a forward over `n` new tokens: `[0, prefix)` committed slots (always visible,
//! except caption slots marked as padding), `[prefix, prefix + pending)` tokens written by earlier
//! forwards of the same round (e.g. upper levels of a draft tree), then the `n` new tokens.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::TensorData;

use crate::cache::KvCache;
use crate::rope::{apply_rotary, Rope2d};

/// Which of the pending and new tokens each new token may attend to.
///
/// Row `i` is new token `i`; columns are the `pending` tokens of this round followed by the
/// `n` new tokens. Committed slots are visible (apart from caption padding) unless hidden with
/// [`Visibility::hide_committed`] (ZipAR: an upper row must not see the rows below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    rows: usize,
    cols: usize,
    visible: Vec<bool>,
    /// `(committed slots, rows × slots bits)`: committed slots hidden from each new token.
    committed_hidden: Option<(usize, Vec<bool>)>,
}

impl Visibility {
    /// Plain causal order over `n` new tokens with nothing pending.
    pub fn causal(n: usize) -> Self {
        let mut v = Self::hidden(n, n);
        for i in 0..n {
            for j in 0..=i {
                v.set(i, j);
            }
        }
        v
    }

    /// A tree over `n` new tokens given each node's parent among earlier nodes (`None` = a root,
    /// which sees only the committed prefix and itself). Parents must precede children.
    pub fn tree(parents: &[Option<usize>]) -> Self {
        Self::tree_after(0, &[], parents)
    }

    /// A tree level appended after `pending` tokens: `ancestors[i]` lists which pending tokens
    /// node `i`'s ancestry covers, and `parents[i]` its parent among the new nodes (if any).
    pub fn tree_after(pending: usize, ancestors: &[Vec<usize>], parents: &[Option<usize>]) -> Self {
        let n = parents.len();
        let mut v = Self::hidden(n, pending + n);
        for (i, parent) in parents.iter().enumerate() {
            if let Some(p) = *parent {
                assert!(
                    p < i,
                    "tree parents must precede their children ({p} ≥ {i})"
                );
                for j in 0..pending + n {
                    if v.get(p, j) {
                        v.set(i, j);
                    }
                }
            }
            if let Some(anc) = ancestors.get(i) {
                for &j in anc {
                    assert!(j < pending, "ancestor {j} is not a pending token");
                    v.set(i, j);
                }
            }
            v.set(i, pending + i);
        }
        v
    }

    /// An all-hidden `rows × cols` matrix to fill with [`Visibility::set`].
    pub fn hidden(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            visible: vec![false; rows * cols],
            committed_hidden: None,
        }
    }

    /// Hides committed slots (absolute cache slots, conditioning included) from new tokens:
    /// `hide(row, slot)` for every row and every slot below `committed`.
    pub fn hide_committed(&mut self, committed: usize, hide: impl Fn(usize, usize) -> bool) {
        let bits: Vec<bool> = (0..self.rows)
            .flat_map(|r| (0..committed).map(move |s| (r, s)))
            .map(|(r, s)| hide(r, s))
            .collect();
        self.committed_hidden = bits.iter().any(|&b| b).then_some((committed, bits));
    }

    /// Whether committed slot `slot` is hidden from new token `row`.
    pub fn committed_hidden(&self, row: usize, slot: usize) -> bool {
        self.committed_hidden
            .as_ref()
            .is_some_and(|(n, bits)| slot < *n && bits[row * n + slot])
    }

    /// Lets new token `row` see column `col`.
    pub fn set(&mut self, row: usize, col: usize) {
        self.visible[row * self.cols + col] = true;
    }

    /// Whether new token `row` sees column `col`.
    pub fn get(&self, row: usize, col: usize) -> bool {
        self.visible[row * self.cols + col]
    }

    /// Number of new tokens (rows).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Pending + new tokens (columns).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Whether every entry is visible and no committed slot is hidden (then no mask is needed).
    pub fn all_visible(&self) -> bool {
        self.committed_hidden.is_none() && self.visible.iter().all(|&v| v)
    }
}

/// Builds the boolean attention mask `[B or 1, 1, n, prefix + pending + n]` (true = hidden),
/// or `None` when every key is visible.
///
/// `key_valid[b][j]` marks caption slot `j < key_valid[b].len()` as real (true) or padding; as in
/// LlamaGen's `causal_mask[:, :, :T] *= emb_mask` followed by forcing the diagonal, a padded slot
/// stays visible to itself only.
pub fn build_mask(
    prefix: usize,
    vis: &Visibility,
    key_valid: Option<&[Vec<bool>]>,
    query_slot0: usize,
    device: &Device,
) -> Option<Tensor<4, Bool>> {
    let n = vis.rows();
    let total = prefix + vis.cols();
    let padded = key_valid.is_some_and(|kv| kv.iter().any(|row| row.iter().any(|v| !v)));
    if !padded && vis.all_visible() {
        return None;
    }
    let rows: Vec<Option<&Vec<bool>>> = match key_valid {
        Some(kv) if padded => kv.iter().map(Some).collect(),
        _ => vec![None],
    };
    let batch = rows.len();
    let mut hidden = vec![false; batch * n * total];
    for (b, valid) in rows.iter().enumerate() {
        for i in 0..n {
            let q_slot = query_slot0 + i;
            let base = (b * n + i) * total;
            for j in 0..prefix {
                let pad = valid.is_some_and(|v| j < v.len() && !v[j]);
                hidden[base + j] = (pad && j != q_slot) || vis.committed_hidden(i, j);
            }
            for c in 0..vis.cols() {
                let slot = prefix + c;
                let pad = valid.is_some_and(|v| slot < v.len() && !v[slot]);
                hidden[base + slot] = !vis.get(i, c) || (pad && slot != q_slot);
            }
        }
    }
    Some(Tensor::from_data(
        TensorData::new(hidden, [batch, 1, n, total]),
        device,
    ))
}

/// Scaled dot-product attention with scale `1/√head_dim`.
///
/// `q: [B, H, N, hd]`, `k, v: [B, H_kv, S, hd]` (heads repeated as `repeat_interleave` does),
/// `mask: [B or 1, 1, N, S]` with true = hidden. Returns `[B, H, N, hd]`.
pub fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
) -> Tensor<4> {
    let [b, h, n, hd] = q.dims();
    let [_, h_kv, s, _] = k.dims();
    let (k, v) = if h_kv == h {
        (k, v)
    } else {
        let rep = h / h_kv;
        let expand = |t: Tensor<4>| {
            t.unsqueeze_dim::<5>(2)
                .expand([b, h_kv, rep, s, hd])
                .reshape([b, h, s, hd])
        };
        (expand(k), expand(v))
    };
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt());
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask.expand([b, h, n, s]), f32::NEG_INFINITY),
        None => scores,
    };
    softmax(scores, 3).matmul(v)
}

/// Everything a forward's layers share: rotary rows and the attention mask.
pub(crate) struct StepPlan {
    /// `(cos, signed sin)` rows, `[1, N, 1, head_dim]` each.
    pub rot: (Tensor<4>, Tensor<4>),
    /// `[B or 1, 1, N, S]`, true = hidden; `None` when all keys are visible.
    pub mask: Option<Tensor<4, Bool>>,
}

impl StepPlan {
    /// Plans a forward of `positions.len()` tokens after the cache's committed and pending
    /// slots (or, without a cache, over the tokens alone).
    pub fn new(
        rope: &Rope2d,
        positions: &[usize],
        vis: &Visibility,
        key_valid: Option<&[Vec<bool>]>,
        cache: Option<&KvCache>,
        device: &Device,
    ) -> Self {
        let (prefix, slot0) = match cache {
            Some(c) => (c.len(), c.reserve(positions.len())),
            None => (0, 0),
        };
        Self {
            rot: rope.rows(positions),
            mask: build_mask(prefix, vis, key_valid, slot0, device),
        }
    }
}

/// Rotary self-attention core shared by the GPT and the drafter: rotates `q: [B, N, H, hd]`
/// and `k: [B, N, H_kv, hd]`, writes k and v (`[B, N, H_kv, hd]`) into layer `layer` of the
/// cache if one is given, attends, and returns `[B, N, H·hd]` (before the output projection).
pub(crate) fn rotary_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    plan: &StepPlan,
    cache: Option<(&mut KvCache, usize)>,
) -> Tensor<3> {
    let [b, n, h, hd] = q.dims();
    let q = apply_rotary(q, &plan.rot.0, &plan.rot.1).swap_dims(1, 2);
    let k = apply_rotary(k, &plan.rot.0, &plan.rot.1).swap_dims(1, 2);
    let v = v.swap_dims(1, 2);
    let (keys, values) = match cache {
        Some((cache, layer)) => cache.write(layer, k, v),
        None => (k, v),
    };
    attend(q, keys, values, plan.mask.clone())
        .swap_dims(1, 2)
        .reshape([b, n, h * hd])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_rows_see_exactly_their_ancestors() {
        // 0 ← root; 1, 2 children of 0; 3 child of 2.
        let v = Visibility::tree(&[None, Some(0), Some(0), Some(2)]);
        let want = [
            [true, false, false, false],
            [true, true, false, false],
            [true, false, true, false],
            [true, false, true, true],
        ];
        for (i, row) in want.iter().enumerate() {
            for (j, &w) in row.iter().enumerate() {
                assert_eq!(v.get(i, j), w, "({i},{j})");
            }
        }
        assert_eq!(
            Visibility::causal(3),
            Visibility::tree(&[None, Some(0), Some(1)])
        );
    }

    #[test]
    fn grouped_query_heads_use_repeat_interleave_order() {
        use burn::tensor::Distribution;
        let dev = crate::backend::test_device();
        let q = Tensor::<4>::random([1, 4, 3, 8], Distribution::Normal(0.0, 1.0), &dev);
        let k = Tensor::<4>::random([1, 2, 5, 8], Distribution::Normal(0.0, 1.0), &dev);
        let v = Tensor::<4>::random([1, 2, 5, 8], Distribution::Normal(0.0, 1.0), &dev);
        // repeat_interleave(2, dim=1): heads [0, 0, 1, 1].
        let idx = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0, 1, 1], [4]), &dev);
        let full = attend(
            q.clone(),
            k.clone().select(1, idx.clone()),
            v.clone().select(1, idx),
            None,
        );
        let grouped = attend(q, k, v, None);
        let a: Vec<f32> = full.into_data().try_into_vec_as().unwrap();
        let b: Vec<f32> = grouped.into_data().try_into_vec_as().unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6));
    }

    #[test]
    fn padded_caption_slots_are_hidden_except_on_the_diagonal() {
        let dev = crate::backend::test_device();
        let valid = vec![vec![false, true, true]];
        let mask = build_mask(0, &Visibility::causal(3), Some(&valid), 0, &dev).unwrap();
        let m: Vec<bool> = mask.into_data().try_into_vec_as().unwrap();
        // Query 0 (a padded slot) sees itself; queries 1 and 2 do not see slot 0.
        assert_eq!(
            m,
            vec![false, true, true, true, false, true, true, false, false]
        );
        assert!(build_mask(5, &Visibility::causal(1), None, 5, &dev).is_none());
    }
}
