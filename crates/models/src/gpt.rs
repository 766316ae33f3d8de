//! LlamaGen GPT (`autoregressive/models/gpt.py::Transformer`), class- and text-conditional.
//!
//! Module and field names equal the official state-dict keys, so checkpoints load unchanged:
//! `cls_embedding.{embedding_table | cap_proj.fc1, cap_proj.fc2, uncond_embedding}`,
//! `tok_embeddings`, `layers.N.{attention.{wqkv, wo}, feed_forward.{w1, w2, w3}, attention_norm,
//! ffn_norm}`, `norm`, `output`.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu_approximate, silu};
use burn::tensor::TensorData;

use crate::attention::{rotary_attention, StepPlan, Visibility};
use crate::cache::KvCache;
use crate::config::{GptConfig, ModelType};
use crate::error::ModelError;
use crate::linear::linear;
use crate::rope::Rope2d;

/// Zero rotary rows kept after the grid so that draft-tree positions past the last cell stay
/// in range (LANTERN keeps 10; deeper trees need more).
pub const EXTRA_ROPE_ROWS: usize = 64;

/// `cap_proj`: Linear → GELU(tanh) → Linear, both without bias.
#[derive(Module, Debug)]
pub struct CaptionMlp {
    pub(crate) fc1: Linear,
    pub(crate) fc2: Linear,
}

/// The conditioning embedder: a class table (c2i) or a caption projection plus the stored null
/// caption (t2i). Exactly one of the two layouts is present.
#[derive(Module, Debug)]
pub struct ClsEmbedding {
    pub(crate) embedding_table: Option<Embedding>,
    pub(crate) cap_proj: Option<CaptionMlp>,
    pub(crate) uncond_embedding: Option<Param<Tensor<2>>>,
}

/// Fused-QKV attention: `wqkv` output splits as `[q | k | v]`.
#[derive(Module, Debug)]
pub struct Attention {
    pub(crate) wqkv: Linear,
    pub(crate) wo: Linear,
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) head_dim: usize,
}

/// SwiGLU feed-forward: `w2(silu(w1 x) · w3 x)`.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub(crate) w1: Linear,
    pub(crate) w2: Linear,
    pub(crate) w3: Linear,
}

/// Pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub(crate) attention: Attention,
    pub(crate) feed_forward: FeedForward,
    pub(crate) attention_norm: RmsNorm,
    pub(crate) ffn_norm: RmsNorm,
}

/// LlamaGen GPT.
#[derive(Module, Debug)]
pub struct Gpt {
    pub(crate) cls_embedding: ClsEmbedding,
    pub(crate) tok_embeddings: Embedding,
    pub(crate) layers: Vec<Block>,
    pub(crate) norm: RmsNorm,
    pub(crate) output: Linear,
    #[module(skip)]
    pub(crate) config: GptConfig,
    #[module(skip)]
    pub(crate) rope: Rope2d,
}

/// What a generation is conditioned on, one entry per batch row.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per image; boxing buys nothing
pub enum Condition {
    /// Class labels (c2i); `num_classes` is the null class.
    Classes(Vec<usize>),
    /// Caption embeddings `[B, cls_token_num, caption_dim]` (t2i) and, optionally, which caption
    /// slots are real tokens (false = padding), per row.
    Captions {
        /// `[B, T, caption_dim]`.
        embeddings: Tensor<3>,
        /// `[B][T]`, true = real token.
        valid: Option<Vec<Vec<bool>>>,
    },
}

impl Condition {
    /// Number of batch rows.
    pub fn batch(&self) -> usize {
        match self {
            Self::Classes(c) => c.len(),
            Self::Captions { embeddings, .. } => embeddings.dims()[0],
        }
    }
}

/// Output of a forward: post-norm features (the drafter's input) and logits.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// Final hidden states after the last RMSNorm: `[B, N, dim]`.
    pub hidden: Tensor<3>,
    /// Logits `[B, N', vocab]` (every new position, or only the last one after a prefill).
    pub logits: Tensor<3>,
}

fn new_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_bias(false).init(device)
}

impl FeedForward {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(
            &self.w2,
            silu(linear(&self.w1, x.clone())) * linear(&self.w3, x),
        )
    }
}

impl Attention {
    fn forward(
        &self,
        x: Tensor<3>,
        plan: &StepPlan,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let (h, hk, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let qkv = linear(&self.wqkv, x);
        let q = qkv
            .clone()
            .slice([0..b, 0..n, 0..h * hd])
            .reshape([b, n, h, hd]);
        let k = qkv
            .clone()
            .slice([0..b, 0..n, h * hd..(h + hk) * hd])
            .reshape([b, n, hk, hd]);
        let v = qkv
            .slice([0..b, 0..n, (h + hk) * hd..(h + 2 * hk) * hd])
            .reshape([b, n, hk, hd]);
        linear(&self.wo, rotary_attention(q, k, v, plan, cache))
    }
}

impl Block {
    fn forward(
        &self,
        x: Tensor<3>,
        plan: &StepPlan,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let h = x.clone()
            + self
                .attention
                .forward(self.attention_norm.forward(x), plan, cache);
        h.clone() + self.feed_forward.forward(self.ffn_norm.forward(h))
    }
}

impl Gpt {
    /// A randomly initialised model of the given shape (burn's default initialisers).
    pub fn new(config: &GptConfig, device: &Device) -> Result<Self, ModelError> {
        config.validate("gpt config")?;
        let c = config;
        let (dim, hd) = (c.dim, c.head_dim());
        let cls_embedding = match c.model_type {
            ModelType::C2i => ClsEmbedding {
                embedding_table: Some(EmbeddingConfig::new(c.class_rows(), dim).init(device)),
                cap_proj: None,
                uncond_embedding: None,
            },
            ModelType::T2i => ClsEmbedding {
                embedding_table: None,
                cap_proj: Some(CaptionMlp {
                    fc1: new_linear(c.caption_dim, dim, device),
                    fc2: new_linear(dim, dim, device),
                }),
                uncond_embedding: Some(Param::from_tensor(Tensor::random(
                    [c.cls_token_num, c.caption_dim],
                    burn::tensor::Distribution::Normal(0.0, 1.0 / (c.caption_dim as f64).sqrt()),
                    device,
                ))),
            },
        };
        let layers = (0..c.n_layer)
            .map(|_| Block {
                attention: Attention {
                    wqkv: new_linear(dim, (c.n_head + 2 * c.kv_heads()) * hd, device),
                    wo: new_linear(dim, dim, device),
                    n_head: c.n_head,
                    n_kv_head: c.kv_heads(),
                    head_dim: hd,
                },
                feed_forward: FeedForward {
                    w1: new_linear(dim, c.ffn_hidden(), device),
                    w2: new_linear(c.ffn_hidden(), dim, device),
                    w3: new_linear(dim, c.ffn_hidden(), device),
                },
                attention_norm: RmsNormConfig::new(dim)
                    .with_epsilon(c.norm_eps)
                    .init(device),
                ffn_norm: RmsNormConfig::new(dim)
                    .with_epsilon(c.norm_eps)
                    .init(device),
            })
            .collect();
        Ok(Self {
            cls_embedding,
            tok_embeddings: EmbeddingConfig::new(c.vocab_size, dim).init(device),
            layers,
            norm: RmsNormConfig::new(dim)
                .with_epsilon(c.norm_eps)
                .init(device),
            output: new_linear(dim, c.vocab_size, device),
            rope: Rope2d::new(
                c.grid_size(),
                hd,
                c.rope_base,
                c.cls_token_num,
                EXTRA_ROPE_ROWS,
                device,
            ),
            config: c.clone(),
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// The device holding the weights.
    pub fn device(&self) -> Device {
        self.output.weight.val().device()
    }

    /// A KV cache for `batch` rows with room for the condition, every image token and `extra`
    /// slots of draft tokens.
    pub fn new_cache(&self, batch: usize, extra: usize) -> KvCache {
        let c = &self.config;
        KvCache::new(
            c.n_layer,
            batch,
            c.kv_heads(),
            c.head_dim(),
            c.cls_token_num + c.block_size + extra,
            &self.device(),
        )
    }

    /// The output head's weight `[dim, vocab]` (burn layout); the drafter shares it.
    pub fn head(&self) -> &Linear {
        &self.output
    }

    /// The token embedding table; the drafter's embedding is initialised from it.
    pub fn token_embeddings(&self) -> &Embedding {
        &self.tok_embeddings
    }

    /// The condition for the unconditional CFG half: the null class, or the stored null caption
    /// (with the same padding rows as the conditional half, as LlamaGen does).
    pub fn null_condition(&self, cond: &Condition) -> Result<Condition, ModelError> {
        let b = cond.batch();
        match cond {
            Condition::Classes(_) => Ok(Condition::Classes(vec![self.config.null_class(); b])),
            Condition::Captions { valid, .. } => {
                let uncond = self
                    .cls_embedding
                    .uncond_embedding
                    .as_ref()
                    .ok_or_else(|| ModelError::Input("this GPT is not text-conditional".into()))?
                    .val();
                let [t, d] = uncond.dims();
                Ok(Condition::Captions {
                    embeddings: uncond.unsqueeze_dim::<3>(0).expand([b, t, d]),
                    valid: valid.clone(),
                })
            }
        }
    }

    /// `[cond; uncond]` batch for classifier-free guidance (cond rows first).
    pub fn cfg_condition(&self, cond: &Condition) -> Result<Condition, ModelError> {
        let null = self.null_condition(cond)?;
        Ok(match (cond, null) {
            (Condition::Classes(a), Condition::Classes(b)) => {
                Condition::Classes(a.iter().chain(b.iter()).copied().collect())
            }
            (
                Condition::Captions { embeddings, valid },
                Condition::Captions {
                    embeddings: null_emb,
                    ..
                },
            ) => Condition::Captions {
                embeddings: Tensor::cat(vec![embeddings.clone(), null_emb], 0),
                valid: valid
                    .as_ref()
                    .map(|v| v.iter().chain(v.iter()).cloned().collect()),
            },
            _ => unreachable!("null condition has the same kind"),
        })
    }

    /// Embeds the condition: `[B, cls_token_num, dim]`.
    fn embed_condition(&self, cond: &Condition) -> Result<Tensor<3>, ModelError> {
        let c = &self.config;
        let device = self.device();
        match (cond, &self.cls_embedding) {
            (
                Condition::Classes(labels),
                ClsEmbedding {
                    embedding_table: Some(table),
                    ..
                },
            ) => {
                check_classes(labels, c)?;
                let ids: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
                let ids =
                    Tensor::<2, Int>::from_data(TensorData::new(ids, [labels.len(), 1]), &device);
                Ok(table.forward(ids))
            }
            (
                Condition::Captions { embeddings, .. },
                ClsEmbedding {
                    cap_proj: Some(mlp),
                    ..
                },
            ) => {
                let [_, t, d] = embeddings.dims();
                if t < c.cls_token_num || d != c.caption_dim {
                    return Err(ModelError::Input(format!(
                        "caption embeddings have shape [_, {t}, {d}]; this model needs [_, ≥{}, {}]",
                        c.cls_token_num, c.caption_dim
                    )));
                }
                let b = embeddings.dims()[0];
                let x = embeddings.clone().slice([0..b, 0..c.cls_token_num, 0..d]);
                Ok(linear(&mlp.fc2, gelu_approximate(linear(&mlp.fc1, x))))
            }
            _ => Err(ModelError::Input(format!(
                "condition kind does not match this {:?} model",
                c.model_type
            ))),
        }
    }

    fn run(
        &self,
        x: Tensor<3>,
        positions: &[usize],
        vis: &Visibility,
        key_valid: Option<&[Vec<bool>]>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let plan = StepPlan::new(
            &self.rope,
            positions,
            vis,
            key_valid,
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

    /// One causal forward over `[condition; tokens]` without a cache (training / reference path).
    /// `tokens: [B, S]`; returns hidden and logits for all `cls_token_num + S` positions.
    pub fn forward_full(
        &self,
        cond: &Condition,
        tokens: Tensor<2, Int>,
    ) -> Result<StepOutput, ModelError> {
        let x = Tensor::cat(
            vec![
                self.embed_condition(cond)?,
                self.tok_embeddings.forward(tokens),
            ],
            1,
        );
        let s = x.dims()[1];
        let valid = match cond {
            Condition::Captions { valid, .. } => valid.as_deref(),
            _ => None,
        };
        let positions: Vec<usize> = (0..s).collect();
        let hidden = self.run(x, &positions, &Visibility::causal(s), valid, None);
        let logits = linear(&self.output, hidden.clone());
        Ok(StepOutput { hidden, logits })
    }

    /// Runs the condition through an empty cache (prefill). Returns hidden states of every
    /// condition position and the logits at the last one (`[B, 1, vocab]`); the cache keeps the
    /// caption padding for every later step. Everything written is committed.
    pub fn prefill(&self, cond: &Condition, cache: &mut KvCache) -> Result<StepOutput, ModelError> {
        if !cache.is_empty() || cache.pending() > 0 {
            return Err(ModelError::Input("prefill needs an empty cache".into()));
        }
        if cond.batch() != cache.batch() {
            return Err(ModelError::Input(format!(
                "condition has {} rows, the cache {}",
                cond.batch(),
                cache.batch()
            )));
        }
        let x = self.embed_condition(cond)?;
        let t = x.dims()[1];
        let valid = match cond {
            Condition::Captions { valid, .. } => valid.clone(),
            _ => None,
        };
        cache.set_key_valid(valid);
        let positions: Vec<usize> = (0..t).collect();
        let key_valid = cache.key_valid().map(|k| k.to_vec());
        let hidden = self.run(
            x,
            &positions,
            &Visibility::causal(t),
            key_valid.as_deref(),
            Some(cache),
        );
        cache.commit_all();
        let [b, _, d] = hidden.dims();
        let last = hidden.clone().slice([0..b, t - 1..t, 0..d]);
        Ok(StepOutput {
            logits: linear(&self.output, last),
            hidden,
        })
    }

    /// Runs `tokens: [B, N]` after the committed prefix and any pending tokens, with rotary
    /// `positions` (sequence positions, `cls_token_num + k` for image token k) and `vis` saying
    /// which pending/new tokens each new token sees. The new tokens become pending.
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
        assert_eq!(
            (vis.rows(), vis.cols()),
            (n, cache.pending() + n),
            "visibility must be new × (pending + new)"
        );
        let x = self.tok_embeddings.forward(tokens);
        let key_valid = cache.key_valid().map(|k| k.to_vec());
        let hidden = self.run(x, positions, vis, key_valid.as_deref(), Some(cache));
        StepOutput {
            logits: linear(&self.output, hidden.clone()),
            hidden,
        }
    }

    /// Sequence position (rotary table row) of image token `k`.
    pub fn position_of_token(&self, k: usize) -> usize {
        self.config.cls_token_num + k
    }
}

/// Refuses class labels the model has no row for.
pub(crate) fn check_classes(labels: &[usize], c: &GptConfig) -> Result<(), ModelError> {
    match labels.iter().find(|&&l| l >= c.class_rows()) {
        Some(&bad) => Err(ModelError::Input(format!(
            "class {bad} is out of range: this model has classes 0..{} (and {} = null)",
            c.num_classes,
            c.null_class()
        ))),
        None => Ok(()),
    }
}

/// Builds a `[rows, n]` token tensor with every row equal to `tokens` (CFG rows share tokens).
pub fn repeated_tokens(tokens: &[u32], rows: usize, device: &Device) -> Tensor<2, Int> {
    let n = tokens.len();
    let data: Vec<i64> = (0..rows)
        .flat_map(|_| tokens.iter().map(|&t| t as i64))
        .collect();
    Tensor::from_data(TensorData::new(data, [rows, n]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_query_model_decodes_like_its_full_forward() {
        let mut cfg = GptConfig::with_shape(2, 4, 32);
        cfg.n_kv_head = Some(2);
        cfg.vocab_size = 50;
        cfg.block_size = 16;
        cfg.num_classes = 5;
        cfg.multiple_of = 32;
        let dev = crate::backend::test_device();
        let gpt = Gpt::new(&cfg, &dev).unwrap();
        let tokens: Vec<u32> = vec![3, 1, 4, 1, 5];
        let full = gpt
            .forward_full(
                &Condition::Classes(vec![2]),
                repeated_tokens(&tokens, 1, &dev),
            )
            .unwrap();
        let full: Vec<f32> = full.logits.into_data().try_into_vec_as().unwrap();
        let mut cache = gpt.new_cache(1, 0);
        gpt.prefill(&Condition::Classes(vec![2]), &mut cache)
            .unwrap();
        for (k, &t) in tokens.iter().enumerate() {
            let out = gpt.extend(
                repeated_tokens(&[t], 1, &dev),
                &[gpt.position_of_token(k)],
                &Visibility::causal(1),
                &mut cache,
            );
            cache.commit_all();
            let got: Vec<f32> = out.logits.into_data().try_into_vec_as().unwrap();
            let want = &full[(1 + k) * 50..(2 + k) * 50];
            assert!(
                got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-4),
                "token {k}"
            );
        }
    }

    #[test]
    fn out_of_range_class_is_an_input_error() {
        let mut cfg = GptConfig::with_shape(1, 4, 32);
        cfg.vocab_size = 10;
        cfg.block_size = 4;
        cfg.num_classes = 3;
        cfg.multiple_of = 32;
        let gpt = Gpt::new(&cfg, &crate::backend::test_device()).unwrap();
        let mut cache = gpt.new_cache(1, 0);
        let err = gpt
            .prefill(&Condition::Classes(vec![7]), &mut cache)
            .unwrap_err();
        assert!(err.to_string().contains("class 7 is out of range"), "{err}");
    }
}
