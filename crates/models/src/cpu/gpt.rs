//! The LlamaGen GPT on the host engine: the weights of a burn [`Gpt`], packed once, and the same
//! prefill / extend protocol over a [`HostKvCache`].

use std::sync::Arc;

use super::cache::HostKvCache;
use super::layers::{host, norm, pack_side_by_side, Attention, Mlp, Plan};
use super::matmul::{matmul, PackedMatrix, WeightDtype};
use super::simd::rms_norm;
use crate::attention::Visibility;
use crate::config::{GptConfig, ModelType};
use crate::error::ModelError;
use crate::gpt::{check_classes, Gpt, EXTRA_ROPE_ROWS};
use crate::rope::RopeTable;

/// What a host forward is conditioned on, one entry per batch row.
#[derive(Debug, Clone, PartialEq)]
pub enum HostCondition {
    /// Class labels (c2i); `num_classes` is the null class.
    Classes(Vec<usize>),
    /// Caption embeddings (t2i).
    Captions {
        /// Row-major `[rows, tokens, dim]`.
        embeddings: Vec<f32>,
        /// Caption positions per row.
        tokens: usize,
        /// Embedding width.
        dim: usize,
        /// Per row and caption slot: real token (true) or padding; `None` = all real.
        valid: Option<Vec<Vec<bool>>>,
    },
}

impl HostCondition {
    /// Batch rows.
    pub fn batch(&self) -> usize {
        match self {
            Self::Classes(c) => c.len(),
            Self::Captions {
                embeddings,
                tokens,
                dim,
                ..
            } => embeddings.len() / (tokens * dim).max(1),
        }
    }
}

/// How far reduced-precision weights move the logits from the f32 model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogitChange {
    /// Largest absolute logit difference.
    pub max: f32,
    /// Mean absolute logit difference.
    pub mean: f32,
}

/// One forward's host outputs.
#[derive(Debug, Clone)]
pub struct HostStep {
    /// Post-norm features `[rows, n, dim]` (the drafter's input).
    pub hidden: Vec<f32>,
    /// Logits `[rows, n', vocab]` (every new position, or only the last one after a prefill).
    pub logits: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Block {
    attention_norm: (Vec<f32>, f32),
    attention: Attention,
    ffn_norm: (Vec<f32>, f32),
    mlp: Mlp,
}

/// The caption projection (`cap_proj`: fc1 → GELU(tanh) → fc2) and the stored null caption.
#[derive(Debug, Clone)]
struct CaptionEmbed {
    fc1: PackedMatrix,
    fc2: PackedMatrix,
    /// `[cls_token_num, caption_dim]`.
    uncond: Vec<f32>,
}

/// A LlamaGen GPT packed for the host engine.
#[derive(Debug, Clone)]
pub struct HostGpt {
    config: GptConfig,
    dtype: WeightDtype,
    tok_embeddings: Vec<f32>,
    classes: Option<Vec<f32>>,
    caption: Option<CaptionEmbed>,
    layers: Vec<Block>,
    norm: (Vec<f32>, f32),
    head: Arc<PackedMatrix>,
    rope: RopeTable,
}

/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, burn's `gelu_approximate`.
fn gelu_tanh(x: f32) -> f32 {
    let c = (2.0f32 / std::f32::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

impl HostGpt {
    /// Packs the weights of `gpt` (matrices in `dtype`; embeddings and norms stay f32).
    pub fn from_burn(gpt: &Gpt, dtype: WeightDtype) -> Self {
        let c = gpt.config().clone();
        let layers = gpt
            .layers
            .iter()
            .map(|b| Block {
                attention_norm: norm(&b.attention_norm),
                attention: Attention {
                    qkv: pack_side_by_side(&[&b.attention.wqkv], dtype),
                    o: pack_side_by_side(&[&b.attention.wo], dtype),
                    heads: c.n_head,
                    kv_heads: c.kv_heads(),
                    head_dim: c.head_dim(),
                    qk_norm: None,
                },
                ffn_norm: norm(&b.ffn_norm),
                mlp: Mlp {
                    gate_up: pack_side_by_side(&[&b.feed_forward.w1, &b.feed_forward.w3], dtype),
                    down: pack_side_by_side(&[&b.feed_forward.w2], dtype),
                },
            })
            .collect();
        let cls = &gpt.cls_embedding;
        let caption = cls.cap_proj.as_ref().map(|mlp| CaptionEmbed {
            fc1: pack_side_by_side(&[&mlp.fc1], dtype),
            fc2: pack_side_by_side(&[&mlp.fc2], dtype),
            uncond: cls
                .uncond_embedding
                .as_ref()
                .map_or_else(Vec::new, |u| host(u.val())),
        });
        Self {
            tok_embeddings: host(gpt.tok_embeddings.weight.val()),
            classes: cls.embedding_table.as_ref().map(|t| host(t.weight.val())),
            caption,
            layers,
            norm: norm(&gpt.norm),
            head: Arc::new(pack_side_by_side(&[gpt.head()], dtype)),
            rope: RopeTable::new(
                c.grid_size(),
                c.head_dim(),
                c.rope_base,
                c.cls_token_num,
                EXTRA_ROPE_ROWS,
            ),
            dtype,
            config: c,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// How the matrices are stored.
    pub fn dtype(&self) -> WeightDtype {
        self.dtype
    }

    /// The output head `[dim, vocab]` (the drafter's logits use it too).
    pub fn head(&self) -> &Arc<PackedMatrix> {
        &self.head
    }

    /// The matrices one forward runs: every layer's, then the head.
    fn matrices(&self) -> impl Iterator<Item = &PackedMatrix> {
        self.layers
            .iter()
            .flat_map(|b| {
                [
                    &b.attention.qkv,
                    &b.attention.o,
                    &b.mlp.gate_up,
                    &b.mlp.down,
                ]
            })
            .chain(std::iter::once(&*self.head))
    }

    /// Bytes of packed matrices a decode step streams (every layer and the head).
    pub fn step_bytes(&self) -> usize {
        self.matrices().map(PackedMatrix::bytes).sum()
    }

    /// Matrix multiply-adds per token row of a forward (attention scores not included).
    pub fn step_macs(&self) -> usize {
        self.matrices().map(PackedMatrix::macs).sum()
    }

    /// A cache for `batch` rows with room for the condition, every image token and `extra` slots.
    pub fn new_cache(&self, batch: usize, extra: usize) -> HostKvCache {
        let c = &self.config;
        HostKvCache::new(
            c.n_layer,
            batch,
            c.kv_heads(),
            c.head_dim(),
            (c.cls_token_num + c.block_size + extra).div_ceil(8) * 8,
        )
    }

    /// `[cond; uncond]` rows for classifier-free guidance (cond rows first), as
    /// [`Gpt::cfg_condition`].
    pub fn cfg_condition(&self, cond: &HostCondition) -> Result<HostCondition, ModelError> {
        Ok(match cond {
            HostCondition::Classes(c) => HostCondition::Classes(
                c.iter()
                    .copied()
                    .chain(std::iter::repeat_n(self.config.null_class(), c.len()))
                    .collect(),
            ),
            HostCondition::Captions {
                embeddings,
                tokens,
                dim,
                valid,
            } => {
                let cap = self
                    .caption
                    .as_ref()
                    .ok_or_else(|| ModelError::Input("this GPT is not text-conditional".into()))?;
                let t = self.config.cls_token_num;
                if *tokens != t || *dim != self.config.caption_dim {
                    return Err(ModelError::Input(format!(
                        "caption embeddings have shape [_, {tokens}, {dim}]; CFG needs [_, {t}, {}]",
                        self.config.caption_dim
                    )));
                }
                let b = cond.batch();
                let mut e = embeddings.clone();
                for _ in 0..b {
                    e.extend_from_slice(&cap.uncond);
                }
                HostCondition::Captions {
                    embeddings: e,
                    tokens: t,
                    dim: *dim,
                    valid: valid
                        .as_ref()
                        .map(|v| v.iter().chain(v.iter()).cloned().collect()),
                }
            }
        })
    }

    /// The condition's embeddings `[rows · cls_token_num, dim]`.
    fn embed_condition(&self, cond: &HostCondition) -> Result<Vec<f32>, ModelError> {
        let c = &self.config;
        let d = c.dim;
        match (cond, &self.classes, &self.caption) {
            (HostCondition::Classes(labels), Some(table), _) => {
                check_classes(labels, c)?;
                Ok(labels
                    .iter()
                    .flat_map(|&l| table[l * d..(l + 1) * d].iter().copied())
                    .collect())
            }
            (
                HostCondition::Captions {
                    embeddings,
                    tokens,
                    dim,
                    ..
                },
                _,
                Some(cap),
            ) => {
                let t = c.cls_token_num;
                if *tokens < t || *dim != c.caption_dim {
                    return Err(ModelError::Input(format!(
                        "caption embeddings have shape [_, {tokens}, {dim}]; this model needs [_, ≥{t}, {}]",
                        c.caption_dim
                    )));
                }
                let rows = cond.batch();
                let x: Vec<f32> = (0..rows)
                    .flat_map(|r| {
                        embeddings[r * tokens * dim..(r * tokens + t) * dim]
                            .iter()
                            .copied()
                    })
                    .collect();
                let mut h = vec![0f32; rows * t * d];
                matmul(&x, rows * t, &cap.fc1, &mut h, false);
                h.iter_mut().for_each(|v| *v = gelu_tanh(*v));
                let mut out = vec![0f32; rows * t * d];
                matmul(&h, rows * t, &cap.fc2, &mut out, false);
                Ok(out)
            }
            _ => Err(ModelError::Input(format!(
                "condition kind does not match this {:?} model",
                c.model_type
            ))),
        }
    }

    /// Runs `x: [rows · n, dim]` through every layer after the cache's committed and pending
    /// slots; returns the post-norm features. The new tokens become pending.
    fn run(
        &self,
        mut x: Vec<f32>,
        positions: &[usize],
        vis: &Visibility,
        cache: &mut HostKvCache,
    ) -> Vec<f32> {
        let plan = Plan::new(positions, vis, cache);
        let m = plan.rows * plan.n;
        let mut h = vec![0f32; x.len()];
        for (l, b) in self.layers.iter().enumerate() {
            rms_norm(&x, &b.attention_norm.0, b.attention_norm.1, &mut h);
            b.attention.forward(&h, &mut x, &plan, &self.rope, cache, l);
            rms_norm(&x, &b.ffn_norm.0, b.ffn_norm.1, &mut h);
            b.mlp.forward(&h, &mut x, m);
        }
        cache.advance(positions.len());
        rms_norm(&x, &self.norm.0, self.norm.1, &mut h);
        h
    }

    /// Logits `[m, vocab]` of post-norm features `[m, dim]`.
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        let m = hidden.len() / self.config.dim;
        let mut out = vec![0f32; m * self.config.vocab_size];
        matmul(hidden, m, &self.head, &mut out, false);
        out
    }

    /// Runs the condition through an empty cache (as [`Gpt::prefill`]): features of every
    /// condition position and the logits at the last one (`[rows, 1, vocab]`).
    pub fn prefill(
        &self,
        cond: &HostCondition,
        cache: &mut HostKvCache,
    ) -> Result<HostStep, ModelError> {
        if !cache.is_empty() || cache.pending() > 0 {
            return Err(ModelError::Input("prefill needs an empty cache".into()));
        }
        let rows = cond.batch();
        if rows != cache.batch() {
            return Err(ModelError::Input(format!(
                "condition has {rows} rows, the cache {}",
                cache.batch()
            )));
        }
        let x = self.embed_condition(cond)?;
        let t = self.config.cls_token_num;
        cache.set_key_valid(match cond {
            HostCondition::Captions { valid, .. } => valid.clone(),
            HostCondition::Classes(_) => None,
        });
        let positions: Vec<usize> = (0..t).collect();
        let hidden = self.run(x, &positions, &Visibility::causal(t), cache);
        cache.commit_all();
        let d = self.config.dim;
        let last: Vec<f32> = (0..rows)
            .flat_map(|r| {
                hidden[((r + 1) * t - 1) * d..(r + 1) * t * d]
                    .iter()
                    .copied()
            })
            .collect();
        Ok(HostStep {
            logits: self.logits(&last),
            hidden,
        })
    }

    /// Runs `tokens` (the same `n` tokens in every batch row) after the committed prefix and
    /// pending tokens, as [`Gpt::extend`]; returns features only. The tokens become pending.
    pub fn extend_hidden(
        &self,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
        cache: &mut HostKvCache,
    ) -> Vec<f32> {
        assert_eq!(
            tokens.len(),
            positions.len(),
            "one rotary position per token"
        );
        let d = self.config.dim;
        let rows = cache.batch();
        let mut x = Vec::with_capacity(rows * tokens.len() * d);
        for _ in 0..rows {
            for &t in tokens {
                x.extend_from_slice(&self.tok_embeddings[t as usize * d..(t as usize + 1) * d]);
            }
        }
        self.run(x, positions, vis, cache)
    }

    /// [`HostGpt::extend_hidden`] with the logits of every new position.
    pub fn extend(
        &self,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
        cache: &mut HostKvCache,
    ) -> HostStep {
        let hidden = self.extend_hidden(tokens, positions, vis, cache);
        HostStep {
            logits: self.logits(&hidden),
            hidden,
        }
    }

    /// Sequence position (rotary table row) of image token `k`.
    pub fn position_of_token(&self, k: usize) -> usize {
        self.config.cls_token_num + k
    }

    /// Measures this model's logits against the f32 burn model it was packed from, over the
    /// condition (class 0, or the null caption) and `tokens` fixed image tokens.
    pub fn logit_change(&self, gpt: &Gpt, tokens: usize) -> Result<LogitChange, ModelError> {
        use burn::prelude::*;
        let c = &self.config;
        let tokens = tokens.min(c.block_size - 1);
        let ids: Vec<u32> = (0..tokens)
            .map(|i| ((i * 7919 + 13) % c.vocab_size) as u32)
            .collect();
        let (host_cond, burn_cond) = match (&self.caption, c.model_type) {
            (Some(cap), ModelType::T2i) => (
                HostCondition::Captions {
                    embeddings: cap.uncond.clone(),
                    tokens: c.cls_token_num,
                    dim: c.caption_dim,
                    valid: None,
                },
                crate::gpt::Condition::Captions {
                    embeddings: Tensor::<2>::from_data(
                        burn::tensor::TensorData::new(
                            cap.uncond.clone(),
                            [c.cls_token_num, c.caption_dim],
                        ),
                        &gpt.device(),
                    )
                    .unsqueeze_dim::<3>(0),
                    valid: None,
                },
            ),
            _ => (
                HostCondition::Classes(vec![0]),
                crate::gpt::Condition::Classes(vec![0]),
            ),
        };
        let reference = host(
            gpt.forward_full(
                &burn_cond,
                crate::gpt::repeated_tokens(&ids, 1, &gpt.device()),
            )?
            .logits,
        );
        let mut cache = self.new_cache(1, 0);
        let first = self.prefill(&host_cond, &mut cache)?.logits;
        let positions: Vec<usize> = (0..tokens).map(|k| self.position_of_token(k)).collect();
        let rest = self
            .extend(&ids, &positions, &Visibility::causal(tokens), &mut cache)
            .logits;
        let got = [first, rest].concat();
        let want = &reference[(c.cls_token_num - 1) * c.vocab_size..];
        let diffs: Vec<f32> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
        Ok(LogitChange {
            max: diffs.iter().copied().fold(0.0, f32::max),
            mean: diffs.iter().sum::<f32>() / diffs.len().max(1) as f32,
        })
    }

    /// Whether the model is class-conditional.
    pub fn is_c2i(&self) -> bool {
        self.config.model_type == ModelType::C2i
    }
}
