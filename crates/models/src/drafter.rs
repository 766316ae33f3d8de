//! The one-layer EAGLE drafter as LANTERN builds it for LlamaGen (`cnets_llamagen.py::Model`).
//!
//! `x = fc([embed(token); feature])` (embedding first), then decoder layers in Hugging Face
//! Llama naming where layer 0 has no `input_layernorm`, no final norm; logits come from the
//! target's frozen output head. Element `j` pairs the target's post-norm feature at sequence
//! position `j` with the token at position `j + 1`, and takes rotary row `j` of a table with
//! `cls_token_num = target cls − 1` zero rows (0 for c2i), so it gets the grid cell of the
//! token it carries.

use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::attention::{rotary_attention, StepPlan, Visibility};
use crate::cache::KvCache;
use crate::config::DrafterConfig;
use crate::error::ModelError;
use crate::linear::linear;
use crate::rope::Rope2d;

/// Zero rotary rows after the grid (LANTERN appends 10; deeper draft trees need more).
pub const DRAFTER_EXTRA_ROPE_ROWS: usize = 64;

/// Separate q/k/v/o projections (Hugging Face Llama naming).
#[derive(Module, Debug)]
pub struct DrafterAttention {
    pub(crate) q_proj: Linear,
    pub(crate) k_proj: Linear,
    pub(crate) v_proj: Linear,
    pub(crate) o_proj: Linear,
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) head_dim: usize,
}

/// `down(silu(gate(x)) · up(x))`.
#[derive(Module, Debug)]
pub struct DrafterMlp {
    pub(crate) gate_proj: Linear,
    pub(crate) up_proj: Linear,
    pub(crate) down_proj: Linear,
}

/// One decoder layer; layer 0 has no `input_layernorm` (EAGLE convention).
#[derive(Module, Debug)]
pub struct DrafterLayer {
    pub(crate) input_layernorm: Option<RmsNorm>,
    pub(crate) self_attn: DrafterAttention,
    pub(crate) mlp: DrafterMlp,
    pub(crate) post_attention_layernorm: RmsNorm,
}

/// The EAGLE drafter (without a head: it predicts target features).
#[derive(Module, Debug)]
pub struct Drafter {
    pub(crate) embed_tokens: Embedding,
    pub(crate) fc: Linear,
    pub(crate) layers: Vec<DrafterLayer>,
    #[module(skip)]
    pub(crate) config: DrafterConfig,
    #[module(skip)]
    pub(crate) rope: Rope2d,
}

fn new_linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
}

impl DrafterLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        plan: &StepPlan,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let a = &self.self_attn;
        let [b, n, _] = x.dims();
        let hn = match &self.input_layernorm {
            Some(norm) => norm.forward(x.clone()),
            None => x.clone(),
        };
        let q = linear(&a.q_proj, hn.clone()).reshape([b, n, a.n_head, a.head_dim]);
        let k = linear(&a.k_proj, hn.clone()).reshape([b, n, a.n_kv_head, a.head_dim]);
        let v = linear(&a.v_proj, hn).reshape([b, n, a.n_kv_head, a.head_dim]);
        let h = x + linear(&a.o_proj, rotary_attention(q, k, v, plan, cache));
        let m = &self.mlp;
        let hn = self.post_attention_layernorm.forward(h.clone());
        h + linear(
            &m.down_proj,
            silu(linear(&m.gate_proj, hn.clone())) * linear(&m.up_proj, hn),
        )
    }
}

impl Drafter {
    /// A randomly initialised drafter.
    pub fn new(config: &DrafterConfig, device: &Device) -> Result<Self, ModelError> {
        config.validate("drafter config")?;
        let c = config;
        let (hs, hd) = (c.hidden_size, c.head_dim());
        let layers = (0..c.num_hidden_layers)
            .map(|i| DrafterLayer {
                input_layernorm: (i != 0).then(|| {
                    RmsNormConfig::new(hs)
                        .with_epsilon(c.rms_norm_eps)
                        .init(device)
                }),
                self_attn: DrafterAttention {
                    q_proj: new_linear(hs, c.num_attention_heads * hd, c.qkv_bias, device),
                    k_proj: new_linear(hs, c.kv_heads() * hd, c.qkv_bias, device),
                    v_proj: new_linear(hs, c.kv_heads() * hd, c.qkv_bias, device),
                    o_proj: new_linear(c.num_attention_heads * hd, hs, false, device),
                    n_head: c.num_attention_heads,
                    n_kv_head: c.kv_heads(),
                    head_dim: hd,
                },
                mlp: DrafterMlp {
                    gate_proj: new_linear(hs, c.intermediate_size, false, device),
                    up_proj: new_linear(hs, c.intermediate_size, false, device),
                    down_proj: new_linear(c.intermediate_size, hs, false, device),
                },
                post_attention_layernorm: RmsNormConfig::new(hs)
                    .with_epsilon(c.rms_norm_eps)
                    .init(device),
            })
            .collect();
        let grid = (c.block_size() as f64).sqrt().round() as usize;
        Ok(Self {
            embed_tokens: EmbeddingConfig::new(c.vocab_size, hs).init(device),
            fc: new_linear(2 * hs, hs, c.bias, device),
            layers,
            rope: Rope2d::new(
                grid,
                hd,
                c.rope_base(),
                c.cls_token_num(),
                DRAFTER_EXTRA_ROPE_ROWS,
                device,
            ),
            config: c.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DrafterConfig {
        &self.config
    }

    /// The device holding the weights.
    pub fn device(&self) -> Device {
        self.fc.weight.val().device()
    }

    /// Replaces the token embedding, e.g. with the target's `tok_embeddings`, and freezes it
    /// (EAGLE trains the drafter with a frozen embedding).
    pub fn with_embedding(mut self, embedding: Embedding) -> Self {
        self.embed_tokens = embedding.no_grad();
        self
    }

    /// A KV cache for `batch` rows holding `capacity` drafter elements.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> KvCache {
        let c = &self.config;
        KvCache::new(
            c.num_hidden_layers,
            batch,
            c.kv_heads(),
            c.head_dim(),
            capacity,
            &self.device(),
        )
    }

    fn run(
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
        let plan = StepPlan::new(
            &self.rope,
            positions,
            vis,
            None,
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

    /// Causal forward over whole sequences (training): `features: [B, S, hidden]` paired with
    /// `tokens: [B, S]` (token `j + 1` beside feature `j`), rotary rows `0..S`. Returns the
    /// predicted next features `[B, S, hidden]`.
    pub fn forward_full(&self, features: Tensor<3>, tokens: Tensor<2, Int>) -> Tensor<3> {
        let s = tokens.dims()[1];
        let positions: Vec<usize> = (0..s).collect();
        self.run(features, tokens, &positions, &Visibility::causal(s), None)
    }

    /// Runs new elements after the cache's committed and pending ones (see [`crate::Gpt::extend`]
    /// for `positions` and `vis`). Returns predicted features `[B, N, hidden]`; logits are the
    /// target head applied to them. The new elements become pending.
    pub fn extend(
        &self,
        features: Tensor<3>,
        tokens: Tensor<2, Int>,
        positions: &[usize],
        vis: &Visibility,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let n = tokens.dims()[1];
        assert_eq!(n, positions.len(), "one rotary position per element");
        assert_eq!(
            (vis.rows(), vis.cols()),
            (n, cache.pending() + n),
            "visibility must be new × (pending + new)"
        );
        self.run(features, tokens, positions, vis, Some(cache))
    }
}
