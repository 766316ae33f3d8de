//! LANTERN's EAGLE drafter for Chameleon-family targets (`models/drafters/cnets_anole.py` and
//! `cnets_lumina_mgpt.py`, class `Model`): `fc(cat(embed(token), feature))` with a bias, one
//! pre-norm Chameleon layer (qk-norm, `input_layernorm` kept on layer 0, unlike EAGLE's LlamaGen
//! drafter), no final norm; logits come from the target's `lm_head`. Its own `embed_tokens` is a
//! frozen copy of the target's. Keys: `embed_tokens`, `fc`, `layers.0.self_attn.*`,
//! `layers.0.mlp.*`, `layers.0.{input,post_attention}_layernorm`.

use burn::nn::{Embedding, Linear};
use burn::prelude::*;

use super::{ChameleonConfig, ChameleonLayer};
use crate::attention::{StepPlan, Visibility};
use crate::cache::KvCache;
use crate::linear::linear;
use crate::rope::Rope2d;

/// The drafter.
#[derive(Module, Debug)]
pub struct ChameleonDrafter {
    pub(crate) embed_tokens: Embedding,
    pub(crate) fc: Linear,
    pub(crate) layers: Vec<ChameleonLayer>,
    #[module(skip)]
    pub(crate) config: ChameleonConfig,
    #[module(skip)]
    pub(crate) rope: Rope2d,
}

impl ChameleonDrafter {
    /// The configuration (the target's, with its own layer count).
    pub fn config(&self) -> &ChameleonConfig {
        &self.config
    }

    /// The device holding the weights.
    pub fn device(&self) -> Device {
        self.embed_tokens.weight.device()
    }

    /// A cache for `batch` rows with room for `capacity` elements.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> KvCache {
        let c = &self.config;
        KvCache::new(
            c.num_hidden_layers,
            batch,
            c.num_key_value_heads,
            c.head_dim(),
            capacity,
            &self.device(),
        )
    }

    /// Runs elements `features: [B, N, d]` paired with `tokens: [B, N]` (the token after each
    /// feature) after the cache's committed and pending ones at rotary `positions`; returns the
    /// predicted features `[B, N, d]` (the target head turns them into logits). Without a cache,
    /// a causal pass over the elements alone.
    pub fn extend(
        &self,
        features: Tensor<3>,
        tokens: Tensor<2, Int>,
        positions: &[usize],
        vis: &Visibility,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let x = linear(
            &self.fc,
            Tensor::cat(vec![self.embed_tokens.forward(tokens), features], 2),
        );
        let key_valid = cache
            .as_deref()
            .and_then(|c| c.key_valid().map(|k| k.to_vec()));
        let plan = StepPlan::new(
            &self.rope,
            positions,
            vis,
            key_valid.as_deref(),
            cache.as_deref(),
            &self.device(),
        );
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h, &plan, cache.as_deref_mut().map(|c| (c, i)));
        }
        if let Some(c) = cache {
            c.advance(positions.len());
        }
        h
    }
}

impl ChameleonDrafter {
    /// A drafter of LANTERN's shape derived from `target` without training: the target's layer 0
    /// (pre-norm), its embeddings, and `fc = [I | ½·I]` (token embedding plus half the feature).
    /// For running the drafting machinery on a checkpoint that ships no drafter (fixtures); its
    /// acceptance says nothing about a trained drafter.
    pub fn from_target(target: &super::Chameleon) -> Self {
        let d = target.config.hidden_size;
        let device = target.device();
        let mut config = target.config.clone();
        config.num_hidden_layers = 1;
        config.swin_norm = false;
        let mut layer = target.layers[0].clone();
        layer.swin_norm = false;
        // burn's Linear stores `[in, out]`: input i (embedding) and d + i (feature) feed output i.
        let mut fc = vec![0f32; 2 * d * d];
        for i in 0..d {
            fc[i * d + i] = 1.0;
            fc[(d + i) * d + i] = 0.5;
        }
        let weight: Tensor<2> =
            Tensor::from_data(burn::tensor::TensorData::new(fc, [2 * d, d]), &device);
        Self {
            embed_tokens: target.embed_tokens.clone(),
            fc: Linear {
                weight: burn::module::Param::from_tensor(weight),
                bias: Some(burn::module::Param::from_tensor(Tensor::zeros(
                    [d],
                    &device,
                ))),
            },
            layers: vec![layer],
            rope: Rope2d::from_table(super::rope_table(&config), &device),
            config,
        }
    }
}
