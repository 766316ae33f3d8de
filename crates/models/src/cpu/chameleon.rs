//! The Chameleon decoder on the host engine: the weights of a burn [`Chameleon`] packed once
//! (q and k already in adjacent-pair RoPE order), qk-norm before RoPE, pre-norm or Swin-norm
//! blocks, and the extend protocol over a [`HostKvCache`].

use std::path::Path;
use std::sync::Arc;

use super::cache::HostKvCache;
use super::gpt::HostStep;
use super::layers::{host, norm, pack_side_by_side, side_by_side, Attention, Mlp, Plan, QkNorm};
use super::matmul::{matmul, PackedMatrix, WeightDtype};
use super::simd::rms_norm;
use crate::attention::Visibility;
use crate::chameleon::load::{key, qk_orders, weight_files, KeyLayout, QkOrders, Weights};
use crate::chameleon::{
    rope_table, Chameleon, ChameleonConfig, ChameleonLayer, ChameleonVocab, QK_NORM_EPS,
};
use crate::error::ModelError;
use crate::rope::RopeTable;

/// One packed Chameleon layer (the target's and the drafter's).
#[derive(Debug, Clone)]
pub(crate) struct HostLayer {
    pub attention: Attention,
    pub mlp: Mlp,
    pub input_norm: (Vec<f32>, f32),
    pub post_norm: (Vec<f32>, f32),
}

/// Packs one burn layer: q, k, v side by side with the qk-norm, gate and up side by side.
pub(crate) fn pack_layer(l: &ChameleonLayer, dtype: WeightDtype) -> HostLayer {
    let a = &l.self_attn;
    HostLayer {
        attention: Attention {
            qkv: pack_side_by_side(&[&a.q_proj, &a.k_proj, &a.v_proj], dtype),
            o: pack_side_by_side(&[&a.o_proj], dtype),
            heads: a.heads,
            kv_heads: a.kv_heads,
            head_dim: a.head_dim,
            qk_norm: Some(QkNorm {
                q_weight: host(a.q_norm.weight.val()),
                q_bias: host(a.q_norm.bias.val()),
                k_weight: host(a.k_norm.weight.val()),
                k_bias: host(a.k_norm.bias.val()),
                eps: QK_NORM_EPS,
            }),
        },
        mlp: Mlp {
            gate_up: pack_side_by_side(&[&l.mlp.gate_proj, &l.mlp.up_proj], dtype),
            down: pack_side_by_side(&[&l.mlp.down_proj], dtype),
        },
        input_norm: norm(&l.input_layernorm),
        post_norm: norm(&l.post_attention_layernorm),
    }
}

/// Packs layer `l` of an HF-layout checkpoint straight from its tensors (each dropped once packed).
fn load_layer(
    cfg: &ChameleonConfig,
    w: &mut Weights,
    l: usize,
    (perm, q_rows, k_rows): &QkOrders,
    dtype: WeightDtype,
) -> HostLayer {
    let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
    let (h, hk, hd) = (
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim(),
    );
    let k = |role: &str| key(KeyLayout::Hf, role, Some(l));
    let eps = cfg.rms_norm_eps as f32;
    let q = w.matrix(&k("q"), h * hd, d, q_rows.as_deref());
    let kk = w.matrix(&k("k"), hk * hd, d, k_rows.as_deref());
    let v = w.matrix(&k("v"), hk * hd, d, None);
    let qkv = side_by_side(&[(&q, h * hd), (&kk, hk * hd), (&v, hk * hd)], d);
    let (gate, up) = (
        w.matrix(&k("gate"), f, d, None),
        w.matrix(&k("up"), f, d, None),
    );
    let mut norm_part = |role: &str, part: &str, heads: usize| {
        w.head_norm_part(&format!("{}.{part}", k(role)), heads, hd, perm)
    };
    let qk_norm = QkNorm {
        q_weight: norm_part("q_norm", "weight", h),
        q_bias: norm_part("q_norm", "bias", h),
        k_weight: norm_part("k_norm", "weight", hk),
        k_bias: norm_part("k_norm", "bias", hk),
        eps: QK_NORM_EPS,
    };
    HostLayer {
        attention: Attention {
            qkv: PackedMatrix::pack(&qkv, d, (h + 2 * hk) * hd, None, dtype),
            o: PackedMatrix::pack(&w.matrix(&k("o"), d, h * hd, None), h * hd, d, None, dtype),
            heads: h,
            kv_heads: hk,
            head_dim: hd,
            qk_norm: Some(qk_norm),
        },
        mlp: Mlp {
            gate_up: PackedMatrix::pack(
                &side_by_side(&[(&gate, f), (&up, f)], d),
                d,
                2 * f,
                None,
                dtype,
            ),
            down: PackedMatrix::pack(&w.matrix(&k("down"), d, f, None), f, d, None, dtype),
        },
        input_norm: (w.norm_weight(&k("input_norm"), d), eps),
        post_norm: (w.norm_weight(&k("post_norm"), d), eps),
    }
}

/// A Chameleon decoder packed for the host engine.
#[derive(Debug, Clone)]
pub struct HostChameleon {
    config: ChameleonConfig,
    vocab: ChameleonVocab,
    dtype: WeightDtype,
    embed_tokens: Vec<f32>,
    layers: Vec<HostLayer>,
    norm: (Vec<f32>, f32),
    head: Arc<PackedMatrix>,
    rope: RopeTable,
}

impl HostChameleon {
    /// Packs the weights of `model` (matrices in `dtype`; embeddings and norms stay f32).
    pub fn from_burn(model: &Chameleon, dtype: WeightDtype) -> Self {
        let c = model.config().clone();
        let layers = model.layers.iter().map(|l| pack_layer(l, dtype)).collect();
        Self {
            embed_tokens: host(model.embed_tokens.weight.val()),
            layers,
            norm: norm(&model.norm),
            head: Arc::new(pack_side_by_side(&[model.head()], dtype)),
            rope: rope_table(&c),
            vocab: model.vocab().clone(),
            dtype,
            config: c,
        }
    }

    /// Loads the checkpoint folder `dir` (HF or Lumina-mGPT layout, as
    /// [`crate::chameleon::load::load`] reads it) straight into the host engine: each tensor is
    /// converted, packed into `dtype` and dropped, with no f32 model in between, so a 7B release
    /// in bf16 needs about its files' size in memory, not the 27 GB of an f32 copy on top. The
    /// same values as [`HostChameleon::from_burn`] over `load(dir)`; refused by key name the same way.
    pub fn load(dir: &Path, dtype: WeightDtype) -> Result<Self, ModelError> {
        let (cfg, vocab) = ChameleonConfig::from_json_file(&dir.join("config.json"))?;
        let files = weight_files(dir)?;
        let mut w = Weights::read(&files, &Default::default())?;
        let orders = qk_orders(&cfg, KeyLayout::Hf);
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| load_layer(&cfg, &mut w, l, &orders, dtype))
            .collect();
        let (d, v) = (cfg.hidden_size, cfg.vocab_size);
        let head = w.matrix(&key(KeyLayout::Hf, "head", None), v, d, None);
        let head = Arc::new(PackedMatrix::pack(&head, d, v, None, dtype));
        let embed_key = format!("{}.weight", key(KeyLayout::Hf, "embed", None));
        let model = Self {
            embed_tokens: w.take(&embed_key, &[v, d]),
            layers,
            norm: (
                w.norm_weight(&key(KeyLayout::Hf, "norm", None), d),
                cfg.rms_norm_eps as f32,
            ),
            head,
            rope: rope_table(&cfg),
            vocab,
            dtype,
            config: cfg,
        };
        w.finish(&files[0])?;
        Ok(model)
    }

    /// The configuration.
    pub fn config(&self) -> &ChameleonConfig {
        &self.config
    }

    /// The special and image token ids.
    pub fn vocab(&self) -> &ChameleonVocab {
        &self.vocab
    }

    /// The input embeddings of the image tokens, row-major `[codes, d]` in VQ-code order (GSD's
    /// distance space on these targets: strategies see codes, not token ids).
    pub fn image_embeddings(&self) -> (Vec<f32>, usize, usize) {
        let d = self.config.hidden_size;
        let rows = self
            .vocab
            .image_ids
            .iter()
            .flat_map(|&id| self.embed_tokens[id as usize * d..(id as usize + 1) * d].iter())
            .copied()
            .collect();
        (rows, self.vocab.codebook_size(), d)
    }

    /// How the matrices are stored.
    pub fn dtype(&self) -> WeightDtype {
        self.dtype
    }

    /// Random weights of `config`'s shape packed straight into `dtype` (uniform, std 0.02; norms
    /// 1, qk-norm affine 1 and 0), with `vocab`'s ids, seeded: for step timings of shapes whose
    /// f32 copy would not fit in memory (a 7B model in bf16 needs 13.5 GB, in f32 27 GB). Every
    /// matrix passes through f32 one at a time.
    pub fn random(
        config: &ChameleonConfig,
        vocab: ChameleonVocab,
        dtype: WeightDtype,
        seed: u64,
    ) -> Self {
        let c = config;
        let (d, f, hd) = (c.hidden_size, c.intermediate_size, c.head_dim());
        let (h, kv) = (c.num_attention_heads, c.num_key_value_heads);
        let mut rng = SplitMix(seed);
        let mut matrix = |k: usize, n: usize| {
            let w: Vec<f32> = (0..k * n).map(|_| rng.weight()).collect();
            PackedMatrix::pack(&w, k, n, None, dtype)
        };
        let eps = c.rms_norm_eps as f32;
        let layers = (0..c.num_hidden_layers)
            .map(|_| HostLayer {
                attention: Attention {
                    qkv: matrix(d, (h + 2 * kv) * hd),
                    o: matrix(h * hd, d),
                    heads: h,
                    kv_heads: kv,
                    head_dim: hd,
                    qk_norm: Some(QkNorm {
                        q_weight: vec![1.0; h * hd],
                        q_bias: vec![0.0; h * hd],
                        k_weight: vec![1.0; kv * hd],
                        k_bias: vec![0.0; kv * hd],
                        eps: QK_NORM_EPS,
                    }),
                },
                mlp: Mlp {
                    gate_up: matrix(d, 2 * f),
                    down: matrix(f, d),
                },
                input_norm: (vec![1.0; d], eps),
                post_norm: (vec![1.0; d], eps),
            })
            .collect();
        let head = Arc::new(matrix(d, c.vocab_size));
        let embed_tokens = (0..c.vocab_size * d).map(|_| rng.weight()).collect();
        Self {
            embed_tokens,
            layers,
            norm: (vec![1.0; d], eps),
            head,
            rope: rope_table(c),
            vocab,
            dtype,
            config: c.clone(),
        }
    }

    /// The matrices one forward runs: every layer's, then the head.
    fn matrices(&self) -> impl Iterator<Item = &PackedMatrix> {
        self.layers
            .iter()
            .flat_map(|l| {
                [
                    &l.attention.qkv,
                    &l.attention.o,
                    &l.mlp.gate_up,
                    &l.mlp.down,
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

    /// The output head `[d, vocab]`.
    pub fn head(&self) -> &Arc<PackedMatrix> {
        &self.head
    }

    /// A cache for `batch` rows with room for `capacity` tokens.
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

    /// Runs `x: [rows · n, d]` through every layer after the cache's committed and pending
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
        let mut sub = vec![0f32; x.len()];
        for (l, layer) in self.layers.iter().enumerate() {
            let (n1, n2) = (&layer.input_norm, &layer.post_norm);
            if self.config.swin_norm {
                // h = x + norm1(attn(x)); out = h + norm2(mlp(h)).
                sub.fill(0.0);
                layer
                    .attention
                    .forward(&x, &mut sub, &plan, &self.rope, cache, l);
                add_normed(&mut x, &sub, n1, &mut h);
                sub.fill(0.0);
                layer.mlp.forward(&x, &mut sub, m);
                add_normed(&mut x, &sub, n2, &mut h);
            } else {
                rms_norm(&x, &n1.0, n1.1, &mut h);
                layer
                    .attention
                    .forward(&h, &mut x, &plan, &self.rope, cache, l);
                rms_norm(&x, &n2.0, n2.1, &mut h);
                layer.mlp.forward(&h, &mut x, m);
            }
        }
        cache.advance(plan.n);
        rms_norm(&x, &self.norm.0, self.norm.1, &mut h);
        h
    }

    /// Raw logits `[m, vocab]` of post-norm features `[m, d]` (no image-token mask).
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        let m = hidden.len() / self.config.hidden_size;
        let mut out = vec![0f32; m * self.config.vocab_size];
        matmul(hidden, m, &self.head, &mut out, false);
        out
    }

    /// Runs `tokens` (the same `n` tokens in every batch row) after the committed prefix and
    /// pending tokens at rotary `positions` (`[n]`, or `[rows · n]` when the rows' prefixes
    /// differ in length: CFG's two sequences in one forward); returns the features and raw
    /// logits of every new position, `[rows · n, ·]`. The tokens become pending.
    pub fn extend(
        &self,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
        cache: &mut HostKvCache,
    ) -> HostStep {
        assert!(
            positions.len() == tokens.len() || positions.len() == cache.batch() * tokens.len(),
            "one rotary position per token, or per row and token"
        );
        let d = self.config.hidden_size;
        let rows = cache.batch();
        let mut x = Vec::with_capacity(rows * tokens.len() * d);
        for _ in 0..rows {
            for &t in tokens {
                x.extend_from_slice(&self.embed_tokens[t as usize * d..(t as usize + 1) * d]);
            }
        }
        let hidden = self.run(x, positions, vis, cache);
        HostStep {
            logits: self.logits(&hidden),
            hidden,
        }
    }
}

/// `x += rms_norm(sub)` (Swin-norm residual), `scratch` the norm's output.
fn add_normed(x: &mut [f32], sub: &[f32], n: &(Vec<f32>, f32), scratch: &mut [f32]) {
    rms_norm(sub, &n.0, n.1, scratch);
    x.iter_mut().zip(scratch.iter()).for_each(|(a, b)| *a += b);
}

/// SplitMix64: the random weights of [`HostChameleon::random`] (fast, seeded, no allocation).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in ±0.02·√3 (standard deviation 0.02, the usual initialiser's).
    fn weight(&mut self) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * 0.034_641
    }
}
