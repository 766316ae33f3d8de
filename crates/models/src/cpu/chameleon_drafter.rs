//! LANTERN's Chameleon-family drafter on the host engine: the weights of a burn
//! [`ChameleonDrafter`] packed once, and the extend protocol over a [`HostKvCache`]. Its features
//! go through the target's head ([`super::HostChameleon::logits`]) with no norm in between.

use super::cache::HostKvCache;
use super::chameleon::{pack_layer, HostLayer};
use super::layers::{eagle_input, host, pack_side_by_side, Plan};
use super::matmul::{PackedMatrix, WeightDtype};
use super::simd::rms_norm;
use crate::attention::Visibility;
use crate::chameleon::{rope_table, ChameleonConfig, ChameleonDrafter};
use crate::rope::RopeTable;

/// A Chameleon-family drafter packed for the host engine.
#[derive(Debug, Clone)]
pub struct HostChameleonDrafter {
    config: ChameleonConfig,
    embed: Vec<f32>,
    fc: PackedMatrix,
    layers: Vec<HostLayer>,
    rope: RopeTable,
}

impl HostChameleonDrafter {
    /// Packs the weights of `drafter` (matrices in `dtype`; embeddings and norms stay f32).
    pub fn from_burn(drafter: &ChameleonDrafter, dtype: WeightDtype) -> Self {
        let c = drafter.config().clone();
        Self {
            embed: host(drafter.embed_tokens.weight.val()),
            fc: pack_side_by_side(&[&drafter.fc], dtype),
            layers: drafter
                .layers
                .iter()
                .map(|l| pack_layer(l, dtype))
                .collect(),
            rope: rope_table(&c),
            config: c,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ChameleonConfig {
        &self.config
    }

    /// A cache for `batch` rows holding `capacity` elements.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> HostKvCache {
        let c = &self.config;
        HostKvCache::new(
            c.num_hidden_layers,
            batch,
            c.num_key_value_heads,
            c.head_dim(),
            capacity.div_ceil(8) * 8,
        )
    }

    /// Runs elements after the cache's committed and pending ones: `features: [rows, n, d]`
    /// paired with `tokens` (the same `n` in every row), `fc(cat(embed(token), feature))`, then
    /// the pre-norm layers. Returns the predicted features `[rows, n, d]`; the elements become
    /// pending.
    pub fn extend(
        &self,
        features: &[f32],
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
        cache: &mut HostKvCache,
    ) -> Vec<f32> {
        let d = self.config.hidden_size;
        let (rows, n) = (cache.batch(), tokens.len());
        assert_eq!(n, positions.len(), "one rotary position per element");
        assert_eq!(
            features.len(),
            rows * n * d,
            "features are not [{rows}, {n}, {d}]"
        );
        let m = rows * n;
        let mut x = eagle_input(&self.embed, &self.fc, features, tokens, rows);
        let plan = Plan::new(positions, vis, cache);
        let mut h = vec![0f32; m * d];
        for (l, layer) in self.layers.iter().enumerate() {
            let (n1, n2) = (&layer.input_norm, &layer.post_norm);
            rms_norm(&x, &n1.0, n1.1, &mut h);
            layer
                .attention
                .forward(&h, &mut x, &plan, &self.rope, cache, l);
            rms_norm(&x, &n2.0, n2.1, &mut h);
            layer.mlp.forward(&h, &mut x, m);
        }
        cache.advance(n);
        x
    }
}
