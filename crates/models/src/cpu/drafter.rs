//! The EAGLE drafter on the host engine: the weights of a burn [`Drafter`], packed once, and the
//! same extend protocol over a [`HostKvCache`]. Logits come from the target's head.

use super::cache::HostKvCache;
use super::layers::{eagle_input, host, norm, pack_side_by_side, Attention, Mlp, Plan};
use super::matmul::{PackedMatrix, WeightDtype};
use super::simd::rms_norm;
use crate::attention::Visibility;
use crate::config::DrafterConfig;
use crate::drafter::{Drafter, DRAFTER_EXTRA_ROPE_ROWS};
use crate::rope::RopeTable;

#[derive(Debug, Clone)]
struct Layer {
    input_norm: Option<(Vec<f32>, f32)>,
    attention: Attention,
    post_norm: (Vec<f32>, f32),
    mlp: Mlp,
}

/// An EAGLE drafter packed for the host engine.
#[derive(Debug, Clone)]
pub struct HostDrafter {
    config: DrafterConfig,
    embed: Vec<f32>,
    fc: PackedMatrix,
    layers: Vec<Layer>,
    rope: RopeTable,
}

impl HostDrafter {
    /// Packs the weights of `drafter` (matrices in `dtype`; embeddings and norms stay f32).
    pub fn from_burn(drafter: &Drafter, dtype: WeightDtype) -> Self {
        let c = drafter.config().clone();
        let layers = drafter
            .layers
            .iter()
            .map(|l| {
                let a = &l.self_attn;
                Layer {
                    input_norm: l.input_layernorm.as_ref().map(norm),
                    attention: Attention {
                        qkv: pack_side_by_side(&[&a.q_proj, &a.k_proj, &a.v_proj], dtype),
                        o: pack_side_by_side(&[&a.o_proj], dtype),
                        heads: a.n_head,
                        kv_heads: a.n_kv_head,
                        head_dim: a.head_dim,
                        qk_norm: None,
                    },
                    post_norm: norm(&l.post_attention_layernorm),
                    mlp: Mlp {
                        gate_up: pack_side_by_side(&[&l.mlp.gate_proj, &l.mlp.up_proj], dtype),
                        down: pack_side_by_side(&[&l.mlp.down_proj], dtype),
                    },
                }
            })
            .collect();
        let grid = (c.block_size() as f64).sqrt().round() as usize;
        Self {
            embed: host(drafter.embed_tokens.weight.val()),
            fc: pack_side_by_side(&[&drafter.fc], dtype),
            layers,
            rope: RopeTable::new(
                grid,
                c.head_dim(),
                c.rope_base(),
                c.cls_token_num(),
                DRAFTER_EXTRA_ROPE_ROWS,
            ),
            config: c,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DrafterConfig {
        &self.config
    }

    /// The matrices one pass runs (the target head not included).
    fn matrices(&self) -> impl Iterator<Item = &PackedMatrix> {
        std::iter::once(&self.fc).chain(self.layers.iter().flat_map(|l| {
            [
                &l.attention.qkv,
                &l.attention.o,
                &l.mlp.gate_up,
                &l.mlp.down,
            ]
        }))
    }

    /// Bytes of packed matrices one drafter pass streams (the target head not included).
    pub fn step_bytes(&self) -> usize {
        self.matrices().map(PackedMatrix::bytes).sum()
    }

    /// Matrix multiply-adds per element row of a pass (the target head not included).
    pub fn step_macs(&self) -> usize {
        self.matrices().map(PackedMatrix::macs).sum()
    }

    /// A cache for `batch` rows holding `capacity` drafter elements.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> HostKvCache {
        let c = &self.config;
        HostKvCache::new(
            c.num_hidden_layers,
            batch,
            c.kv_heads(),
            c.head_dim(),
            capacity.div_ceil(8) * 8,
        )
    }

    /// Runs new elements after the cache's committed and pending ones, as [`Drafter::extend`]:
    /// `features: [rows, n, hidden]` paired with `tokens` (the same `n` in every row). Returns
    /// the predicted features `[rows, n, hidden]`; the elements become pending.
    pub fn extend(
        &self,
        features: &[f32],
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
        cache: &mut HostKvCache,
    ) -> Vec<f32> {
        let hs = self.config.hidden_size;
        let (rows, n) = (cache.batch(), tokens.len());
        assert_eq!(n, positions.len(), "one rotary position per element");
        let m = rows * n;
        let mut x = eagle_input(&self.embed, &self.fc, features, tokens, rows);
        let plan = Plan::new(positions, vis, cache);
        let mut h = vec![0f32; m * hs];
        for (l, layer) in self.layers.iter().enumerate() {
            match &layer.input_norm {
                Some((w, eps)) => rms_norm(&x, w, *eps, &mut h),
                None => h.copy_from_slice(&x),
            }
            layer
                .attention
                .forward(&h, &mut x, &plan, &self.rope, cache, l);
            rms_norm(&x, &layer.post_norm.0, layer.post_norm.1, &mut h);
            layer.mlp.forward(&h, &mut x, m);
        }
        cache.advance(n);
        x
    }
}
