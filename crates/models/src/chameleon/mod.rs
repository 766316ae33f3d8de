//! The Chameleon decoder (HF `ChameleonModel` + `lm_head`), the target of Anole and Lumina-mGPT.
//!
//! Per layer: q, k, v projections; qk-norm (LayerNorm over each head's `head_dim`, eps 1e-5, then
//! a per-head affine); RoPE on the normed q and k; GQA attention; SwiGLU MLP. Pre-norm blocks, or
//! Swin-norm blocks whose norms wrap the sublayer outputs. See `docs/reference/chameleon.md`.
//!
//! The HF weights rotate halves (`x[i]` with `x[i + hd/2]`); this module stores q and k rows (and
//! the qk-norm vectors) permuted per head into adjacent pairs (`x[2i]` with `x[2i + 1]`), Meta's
//! order, so that the rotary code LlamaGen uses serves both. Scores `q·k` are unchanged by a
//! permutation applied to both, and v is not permuted, so outputs equal the HF model's.

pub mod config;
pub mod drafter;
pub mod layout;
pub mod load;
pub mod set;

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::activation::silu;

pub use config::{ChameleonConfig, ChameleonVocab, QK_NORM_EPS};
pub use drafter::ChameleonDrafter;
pub use set::ChameleonSet;

use crate::attention::{rotary_attention, StepPlan, Visibility};
use crate::cache::KvCache;
use crate::gpt::StepOutput;
use crate::linear::linear;
use crate::rope::{Rope2d, RopeTable};

/// Per-head LayerNorm affine of q or k (`ChameleonLayerNorm`): `[heads, head_dim]` each.
#[derive(Module, Debug)]
pub struct HeadNorm {
    pub(crate) weight: Param<Tensor<2>>,
    pub(crate) bias: Param<Tensor<2>>,
}

impl HeadNorm {
    /// `x: [B, N, heads, hd]` normalised over `hd` (no affine in the statistics), then scaled
    /// and shifted per head.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [h, hd] = self.weight.dims();
        let mean = x.clone().mean_dim(3);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(3);
        let normed = centred / (var + QK_NORM_EPS as f64).sqrt();
        normed * self.weight.val().reshape([1, 1, h, hd]) + self.bias.val().reshape([1, 1, h, hd])
    }
}

/// Attention with separate projections and qk-norm.
#[derive(Module, Debug)]
pub struct ChameleonAttention {
    pub(crate) q_proj: Linear,
    pub(crate) k_proj: Linear,
    pub(crate) v_proj: Linear,
    pub(crate) o_proj: Linear,
    pub(crate) q_norm: HeadNorm,
    pub(crate) k_norm: HeadNorm,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
}

impl ChameleonAttention {
    fn forward(
        &self,
        x: Tensor<3>,
        plan: &StepPlan,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let (h, hk, hd) = (self.heads, self.kv_heads, self.head_dim);
        let q = linear(&self.q_proj, x.clone()).reshape([b, n, h, hd]);
        let k = linear(&self.k_proj, x.clone()).reshape([b, n, hk, hd]);
        let v = linear(&self.v_proj, x).reshape([b, n, hk, hd]);
        let (q, k) = (self.q_norm.forward(q), self.k_norm.forward(k));
        linear(&self.o_proj, rotary_attention(q, k, v, plan, cache))
    }
}

/// SwiGLU: `down(silu(gate x) · up x)`.
#[derive(Module, Debug)]
pub struct ChameleonMlp {
    pub(crate) gate_proj: Linear,
    pub(crate) up_proj: Linear,
    pub(crate) down_proj: Linear,
}

impl ChameleonMlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(
            &self.down_proj,
            silu(linear(&self.gate_proj, x.clone())) * linear(&self.up_proj, x),
        )
    }
}

/// One decoder layer, pre-norm or Swin-norm.
#[derive(Module, Debug)]
pub struct ChameleonLayer {
    pub(crate) self_attn: ChameleonAttention,
    pub(crate) mlp: ChameleonMlp,
    pub(crate) input_layernorm: RmsNorm,
    pub(crate) post_attention_layernorm: RmsNorm,
    pub(crate) swin_norm: bool,
}

impl ChameleonLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        plan: &StepPlan,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        if self.swin_norm {
            let h = x.clone()
                + self
                    .input_layernorm
                    .forward(self.self_attn.forward(x, plan, cache));
            h.clone() + self.post_attention_layernorm.forward(self.mlp.forward(h))
        } else {
            let h = x.clone()
                + self
                    .self_attn
                    .forward(self.input_layernorm.forward(x), plan, cache);
            h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
        }
    }
}

/// A Chameleon-family decoder with its vocabulary.
#[derive(Module, Debug)]
pub struct Chameleon {
    pub(crate) embed_tokens: Embedding,
    pub(crate) layers: Vec<ChameleonLayer>,
    pub(crate) norm: RmsNorm,
    pub(crate) lm_head: Linear,
    #[module(skip)]
    pub(crate) config: ChameleonConfig,
    #[module(skip)]
    pub(crate) vocab: ChameleonVocab,
    #[module(skip)]
    pub(crate) rope: Rope2d,
}

/// The 1D rotary table of a Chameleon model in adjacent-pair order: row p rotates pair i by
/// `p · θ^(−2i/hd)` (HF `ChameleonRotaryEmbedding`, inverse frequencies in f32).
pub fn rope_table(config: &ChameleonConfig) -> RopeTable {
    let hd = config.head_dim();
    let inv_freq: Vec<f32> = (0..hd / 2)
        .map(|i| (1.0 / config.rope_theta.powf((2 * i) as f64 / hd as f64)) as f32)
        .collect();
    RopeTable::from_angles(config.max_position_embeddings, hd, |p| {
        Some(inv_freq.iter().map(|&f| p as f32 * f).collect())
    })
}

impl Chameleon {
    /// The configuration.
    pub fn config(&self) -> &ChameleonConfig {
        &self.config
    }

    /// The special and image token ids.
    pub fn vocab(&self) -> &ChameleonVocab {
        &self.vocab
    }

    /// The device holding the weights.
    pub fn device(&self) -> Device {
        self.embed_tokens.weight.device()
    }

    /// A cache for `batch` rows with room for `capacity` tokens.
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

    /// The output head `[d, vocab]`.
    pub fn head(&self) -> &Linear {
        &self.lm_head
    }

    fn run(
        &self,
        x: Tensor<3>,
        positions: &[usize],
        vis: &Visibility,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
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
        self.norm.forward(h)
    }

    /// One causal forward over `tokens: [B, S]` at positions 0..S without a cache; hidden states
    /// and raw logits (no image-token mask) of every position.
    pub fn forward_full(&self, tokens: Tensor<2, Int>) -> StepOutput {
        let s = tokens.dims()[1];
        let x = self.embed_tokens.forward(tokens);
        let positions: Vec<usize> = (0..s).collect();
        let hidden = self.run(x, &positions, &Visibility::causal(s), None);
        StepOutput {
            logits: linear(&self.lm_head, hidden.clone()),
            hidden,
        }
    }

    /// Runs `tokens: [B, N]` after the cache's committed and pending slots at rotary
    /// `positions`, `vis` saying which pending/new tokens each new token sees; returns hidden
    /// states and raw logits of every new position. The new tokens become pending.
    pub fn extend(
        &self,
        tokens: Tensor<2, Int>,
        positions: &[usize],
        vis: &Visibility,
        cache: &mut KvCache,
    ) -> StepOutput {
        let [b, n] = tokens.dims();
        assert_eq!(b, cache.batch(), "token rows must match the cache's batch");
        assert_eq!(n, positions.len(), "one rotary position per token");
        let x = self.embed_tokens.forward(tokens);
        let hidden = self.run(x, positions, vis, Some(cache));
        StepOutput {
            logits: linear(&self.lm_head, hidden.clone()),
            hidden,
        }
    }
}
