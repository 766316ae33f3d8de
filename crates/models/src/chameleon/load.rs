//! Loading a Chameleon decoder by its own key names: HF safetensors (one file or sharded with
//! `model.safetensors.index.json`), in the HF layout (qk-norm `[heads, head_dim]`) or Lumina-mGPT's
//! (qk-norm `[groups, head_dim]`, expanded by `repeat_interleave(heads / groups)`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::{
    rope_table, Chameleon, ChameleonAttention, ChameleonConfig, ChameleonDrafter, ChameleonLayer,
    ChameleonMlp, ChameleonVocab, HeadNorm,
};
use crate::checkpoint::{read_tensor_snapshots, snapshot_data, PackTensor};
use crate::error::{KeyProblem, ModelError};
use crate::rope::Rope2d;

/// Key prefixes a checkpoint may carry that the decoder does not use (HF releases ship the VQ
/// encoder under `model.vqmodel.`).
const IGNORED_PREFIXES: &[&str] = &["model.vqmodel."];

/// The weight files of a checkpoint folder: the shards named by `model.safetensors.index.json`,
/// else `model.safetensors`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            source_name: index.display().to_string(),
            message: format!("not a safetensors index: {e}"),
        })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Config {
                source_name: index.display().to_string(),
                message: "no 'weight_map' object (key → shard file)".into(),
            })?;
        let shards: BTreeSet<&str> = map.values().filter_map(|f| f.as_str()).collect();
        return Ok(shards.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(ModelError::Config {
        source_name: dir.display().to_string(),
        message: "no weights: expected model.safetensors.index.json (sharded) or model.safetensors"
            .into(),
    })
}

/// Loads the checkpoint folder `dir` (`config.json` and its weight files).
pub fn load(dir: &Path, device: &Device) -> Result<Chameleon, ModelError> {
    let files = weight_files(dir)?;
    load_files(&dir.join("config.json"), &files, device)
}

/// Loads a decoder from an HF `config.json` and the safetensors files holding its weights.
pub fn load_files(
    config: &Path,
    files: &[PathBuf],
    device: &Device,
) -> Result<Chameleon, ModelError> {
    let (cfg, vocab) = ChameleonConfig::from_json_file(config)?;
    let mut w = Weights::read(files, device)?;
    let source = files
        .first()
        .cloned()
        .unwrap_or_else(|| config.to_path_buf());
    let model = build(&cfg, vocab, KeyLayout::Hf, &mut w);
    w.finish(&source)?;
    Ok(model)
}

/// The fields of Meta's `params.json` the forward reads (others, e.g. `multiple_of`, are
/// ignored: the MLP width is read from the weights).
#[derive(serde::Deserialize)]
struct MetaParams {
    dim: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: Option<usize>,
    norm_eps: f64,
    rope_theta: Option<f64>,
    #[serde(default)]
    swin_norm: bool,
    max_seq_len: Option<usize>,
}

/// Positions of the 7B releases (θ ≤ 1e4), used when `params.json` names none.
const META_MAX_POSITIONS: usize = 4096;

/// Loads Meta's original layout: one `consolidated.pth` (or a safetensors file with its keys),
/// its `params.json`, and the vocabulary (`name → id`, e.g. from `text_tokenizer.json`).
pub fn load_meta(
    weights: &Path,
    params: &Path,
    vocabulary: &BTreeMap<String, u32>,
    device: &Device,
) -> Result<Chameleon, ModelError> {
    let text = std::fs::read_to_string(params).map_err(|e| ModelError::io(params, e))?;
    let p: MetaParams = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        source_name: params.display().to_string(),
        message: format!("not a Meta params.json: {e}"),
    })?;
    let tensors = read_tensor_snapshots(weights)?;
    let dim0 = |k: &str| tensors.get(k).map(|t| t.shape.to_vec()[0]);
    let missing = |k: &str| ModelError::KeyMismatch {
        path: weights.to_path_buf(),
        model: "Chameleon decoder".into(),
        problems: vec![KeyProblem::Missing {
            key: k.into(),
            expected: vec![],
        }],
    };
    let cfg = ChameleonConfig {
        hidden_size: p.dim,
        intermediate_size: dim0("layers.0.feed_forward.w1.weight")
            .ok_or_else(|| missing("layers.0.feed_forward.w1.weight"))?,
        num_attention_heads: p.n_heads,
        num_key_value_heads: p.n_kv_heads.unwrap_or(p.n_heads),
        num_hidden_layers: p.n_layers,
        rms_norm_eps: p.norm_eps,
        rope_theta: p.rope_theta.unwrap_or(10000.0),
        swin_norm: p.swin_norm,
        vocab_size: dim0("tok_embeddings.weight")
            .ok_or_else(|| missing("tok_embeddings.weight"))?,
        max_position_embeddings: p.max_seq_len.unwrap_or(META_MAX_POSITIONS),
    };
    cfg.validate(&params.display().to_string())?;
    let vocab =
        ChameleonVocab::from_map(vocabulary, cfg.vocab_size, &params.display().to_string())?;
    let mut w = Weights::of(weights, tensors, device);
    let model = build(&cfg, vocab, KeyLayout::Meta, &mut w);
    w.finish(weights)?;
    Ok(model)
}

/// The files' tensors, listed unread and taken one by one (each read, converted and dropped in
/// turn); what goes wrong is collected, not returned at once.
pub(crate) struct Weights {
    /// Each tensor and the file it is in.
    tensors: BTreeMap<String, (PackTensor, PathBuf)>,
    problems: Vec<KeyProblem>,
    /// The first tensor that could not be read.
    unreadable: Option<ModelError>,
    device: Device,
}

impl Weights {
    /// The tensors of `files`, unread, for modules on `device`.
    pub(crate) fn read(files: &[PathBuf], device: &Device) -> Result<Self, ModelError> {
        let mut w = Self::of(Path::new(""), BTreeMap::new(), device);
        for f in files {
            let listed = read_tensor_snapshots(f)?;
            w.tensors
                .extend(listed.into_iter().map(|(k, t)| (k, (t, f.clone()))));
        }
        Ok(w)
    }

    /// The tensors of one `file`, listed.
    fn of(file: &Path, tensors: BTreeMap<String, PackTensor>, device: &Device) -> Self {
        Self {
            tensors: tensors
                .into_iter()
                .map(|(k, t)| (k, (t, file.to_path_buf())))
                .collect(),
            problems: Vec::new(),
            unreadable: None,
            device: device.clone(),
        }
    }

    /// The f32 values of `key` if its shape is `shape` (else a zero tensor and a problem).
    pub(crate) fn take(&mut self, key: &str, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        match self.tensors.remove(key) {
            None => {
                self.problems.push(KeyProblem::Missing {
                    key: key.into(),
                    expected: shape.to_vec(),
                });
                vec![0.0; n]
            }
            Some((t, _)) if t.shape.to_vec() != shape => {
                self.problems.push(KeyProblem::ShapeMismatch {
                    key: key.into(),
                    expected: shape.to_vec(),
                    found: t.shape.to_vec(),
                });
                vec![0.0; n]
            }
            Some((t, file)) => match snapshot_data(&file, key, t) {
                Ok(data) => data
                    .convert::<f32>()
                    .try_into_vec_as()
                    .expect("f32 after convert"),
                Err(e) => {
                    self.unreadable.get_or_insert(e);
                    vec![0.0; n]
                }
            },
        }
    }

    /// The `[in, out]` values of a PyTorch `[out, in]` weight, rows reordered by `rows` when
    /// given.
    pub(crate) fn matrix(
        &mut self,
        key: &str,
        out: usize,
        inp: usize,
        rows: Option<&[usize]>,
    ) -> Vec<f32> {
        let w = self.take(&format!("{key}.weight"), &[out, inp]);
        let mut t = vec![0f32; out * inp];
        for o in 0..out {
            let src = rows.map_or(o, |r| r[o]);
            for i in 0..inp {
                t[i * out + o] = w[src * inp + i];
            }
        }
        t
    }

    /// A `Linear` from a PyTorch `[out, in]` weight, rows reordered by `rows` when given.
    fn linear(&mut self, key: &str, out: usize, inp: usize, rows: Option<&[usize]>) -> Linear {
        let t = self.matrix(key, out, inp, rows);
        Linear {
            weight: Param::from_tensor(self.tensor([inp, out], t)),
            bias: None,
        }
    }

    fn rms_norm(&mut self, key: &str, d: usize, eps: f64) -> RmsNorm {
        let g = self.norm_weight(key, d);
        RmsNorm {
            gamma: Param::from_tensor(Tensor::from_data(TensorData::new(g, [d]), &self.device)),
            epsilon: eps,
        }
    }

    /// An RMSNorm's `[d]` weight.
    pub(crate) fn norm_weight(&mut self, key: &str, d: usize) -> Vec<f32> {
        self.take(&format!("{key}.weight"), &[d])
    }

    /// One part (`weight` or `bias`) of a qk-norm of `heads` heads as `[heads, hd]` values:
    /// stored `[heads, hd]` (HF), `[groups, hd]` with `groups | heads` (Lumina-mGPT, repeated per
    /// head) or `[hd]` (Meta, one model-parallel rank: every head), columns reordered by `perm`
    /// within each head.
    pub(crate) fn head_norm_part(
        &mut self,
        key: &str,
        heads: usize,
        hd: usize,
        perm: &[usize],
    ) -> Vec<f32> {
        let shape = self.tensors.get(key).map(|(t, _)| t.shape.to_vec());
        let (groups, want) = match shape.as_deref() {
            Some(&[n]) if n == hd => (1, vec![hd]),
            Some(&[g, n]) if n == hd && g > 0 && heads.is_multiple_of(g) => (g, vec![g, hd]),
            _ => (heads, vec![heads, hd]),
        };
        let v = self.take(key, &want);
        let per_group = heads / groups;
        (0..heads)
            .flat_map(|h| {
                let g = h / per_group;
                perm.iter().map(move |&j| (g, j))
            })
            .map(|(g, j)| v[g * hd + j])
            .collect()
    }

    /// A qk-norm of `heads` heads (see [`Weights::head_norm_part`]).
    fn head_norm(&mut self, key: &str, heads: usize, hd: usize, perm: &[usize]) -> HeadNorm {
        let mut part = |name: &str| {
            let t = self.head_norm_part(&format!("{key}.{name}"), heads, hd, perm);
            Param::from_tensor(self.tensor([heads, hd], t))
        };
        HeadNorm {
            weight: part("weight"),
            bias: part("bias"),
        }
    }

    fn tensor(&self, shape: [usize; 2], values: Vec<f32>) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, shape), &self.device)
    }

    /// Refuses the load if anything was missing, mis-shaped or left over.
    pub(crate) fn finish(self, source: &Path) -> Result<(), ModelError> {
        if let Some(e) = self.unreadable {
            return Err(e);
        }
        let mut problems = self.problems;
        for (key, (t, _)) in &self.tensors {
            if !IGNORED_PREFIXES.iter().any(|p| key.starts_with(p)) {
                problems.push(KeyProblem::Unexpected {
                    key: key.clone(),
                    found: t.shape.to_vec(),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ModelError::KeyMismatch {
                path: source.to_path_buf(),
                model: "Chameleon decoder".into(),
                problems,
            })
        }
    }
}

/// Per-head row order that turns HF's rotate-half layout into adjacent pairs: new `2i` is old
/// `i`, new `2i + 1` is old `i + hd/2`.
pub fn half_to_pairs(hd: usize) -> Vec<usize> {
    (0..hd)
        .map(|j| if j % 2 == 0 { j / 2 } else { j / 2 + hd / 2 })
        .collect()
}

/// Row order of a `[heads·hd, d]` projection under [`half_to_pairs`].
fn permuted_rows(heads: usize, hd: usize) -> Vec<usize> {
    let p = half_to_pairs(hd);
    (0..heads)
        .flat_map(|h| p.iter().map(move |&j| h * hd + j))
        .collect()
}

/// How a checkpoint names its tensors and orders q/k rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLayout {
    /// HF / Lumina-mGPT: `model.layers.N.self_attn.q_proj`, …; q/k rows rotate halves.
    Hf,
    /// Meta's `consolidated.pth`: `layers.N.attention.wq`, …; q/k rows (and qk-norm vectors)
    /// already in adjacent-pair order.
    Meta,
    /// LANTERN's drafter: HF names without the `model.` prefix (`layers.0.self_attn.q_proj`).
    Drafter,
}

/// The file key of one role in layer `l` (or of a model-level tensor when `l` is `None`).
pub(crate) fn key(layout: KeyLayout, role: &str, l: Option<usize>) -> String {
    let (hf, meta) = match role {
        "embed" => ("model.embed_tokens", "tok_embeddings"),
        "norm" => ("model.norm", "norm"),
        "head" => ("lm_head", "output"),
        "q" => ("self_attn.q_proj", "attention.wq"),
        "k" => ("self_attn.k_proj", "attention.wk"),
        "v" => ("self_attn.v_proj", "attention.wv"),
        "o" => ("self_attn.o_proj", "attention.wo"),
        "q_norm" => ("self_attn.q_norm", "attention.q_normalization"),
        "k_norm" => ("self_attn.k_norm", "attention.k_normalization"),
        "gate" => ("mlp.gate_proj", "feed_forward.w1"),
        "up" => ("mlp.up_proj", "feed_forward.w3"),
        "down" => ("mlp.down_proj", "feed_forward.w2"),
        "input_norm" => ("input_layernorm", "attention_norm"),
        "post_norm" => ("post_attention_layernorm", "ffn_norm"),
        other => unreachable!("no role {other}"),
    };
    match (layout, l) {
        (KeyLayout::Hf, Some(l)) => format!("model.layers.{l}.{hf}"),
        (KeyLayout::Drafter, Some(l)) => format!("layers.{l}.{hf}"),
        (KeyLayout::Meta, Some(l)) => format!("layers.{l}.{meta}"),
        (KeyLayout::Hf, None) => hf.to_string(),
        (KeyLayout::Drafter, None) => hf.trim_start_matches("model.").to_string(),
        (KeyLayout::Meta, None) => meta.to_string(),
    }
}

/// How `layout` stores q and k: the qk-norm column order within a head and the q and k row
/// orders that turn it into adjacent RoPE pairs (`None`: already in that order).
pub(crate) type QkOrders = (Vec<usize>, Option<Vec<usize>>, Option<Vec<usize>>);

/// The [`QkOrders`] of `layout` for `cfg`'s heads.
pub(crate) fn qk_orders(cfg: &ChameleonConfig, layout: KeyLayout) -> QkOrders {
    let (h, hk, hd) = (
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim(),
    );
    match layout {
        KeyLayout::Hf | KeyLayout::Drafter => (
            half_to_pairs(hd),
            Some(permuted_rows(h, hd)),
            Some(permuted_rows(hk, hd)),
        ),
        KeyLayout::Meta => ((0..hd).collect(), None, None),
    }
}

/// The decoder layers of `cfg` under `layout`'s key names.
fn build_layers(cfg: &ChameleonConfig, layout: KeyLayout, w: &mut Weights) -> Vec<ChameleonLayer> {
    let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
    let (h, hk, hd) = (
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim(),
    );
    let eps = cfg.rms_norm_eps;
    let (perm, q_rows, k_rows) = qk_orders(cfg, layout);
    (0..cfg.num_hidden_layers)
        .map(|l| {
            let k = |role: &str| key(layout, role, Some(l));
            ChameleonLayer {
                self_attn: ChameleonAttention {
                    q_proj: w.linear(&k("q"), h * hd, d, q_rows.as_deref()),
                    k_proj: w.linear(&k("k"), hk * hd, d, k_rows.as_deref()),
                    v_proj: w.linear(&k("v"), hk * hd, d, None),
                    o_proj: w.linear(&k("o"), d, h * hd, None),
                    q_norm: w.head_norm(&k("q_norm"), h, hd, &perm),
                    k_norm: w.head_norm(&k("k_norm"), hk, hd, &perm),
                    heads: h,
                    kv_heads: hk,
                    head_dim: hd,
                },
                mlp: ChameleonMlp {
                    gate_proj: w.linear(&k("gate"), f, d, None),
                    up_proj: w.linear(&k("up"), f, d, None),
                    down_proj: w.linear(&k("down"), d, f, None),
                },
                input_layernorm: w.rms_norm(&k("input_norm"), d, eps),
                post_attention_layernorm: w.rms_norm(&k("post_norm"), d, eps),
                swin_norm: cfg.swin_norm,
            }
        })
        .collect()
}

fn build(
    cfg: &ChameleonConfig,
    vocab: ChameleonVocab,
    layout: KeyLayout,
    w: &mut Weights,
) -> Chameleon {
    let (d, v, eps) = (cfg.hidden_size, cfg.vocab_size, cfg.rms_norm_eps);
    let layers = build_layers(cfg, layout, w);
    let embed = w.take(&format!("{}.weight", key(layout, "embed", None)), &[v, d]);
    Chameleon {
        embed_tokens: Embedding {
            weight: Param::from_tensor(w.tensor([v, d], embed)),
        },
        layers,
        norm: w.rms_norm(&key(layout, "norm", None), d, eps),
        lm_head: w.linear(&key(layout, "head", None), v, d, None),
        rope: Rope2d::from_table(rope_table(cfg), &w.device),
        config: cfg.clone(),
        vocab,
    }
}

/// Loads LANTERN's drafter for a Chameleon-family target from its folder: `config.json` (the
/// target's config with its own `num_hidden_layers`; a `bias` key, default true, sets the fc
/// bias) and `pytorch_model.bin` or `model.safetensors`. Layers are always pre-norm (the official
/// drafters ignore `swin_norm`).
pub fn load_drafter(dir: &Path, device: &Device) -> Result<ChameleonDrafter, ModelError> {
    let config = dir.join("config.json");
    let mut cfg = ChameleonConfig::shape_from_json_file(&config)?;
    cfg.swin_norm = false;
    let text = std::fs::read_to_string(&config).map_err(|e| ModelError::io(&config, e))?;
    let bias = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("bias").and_then(|b| b.as_bool()))
        .unwrap_or(true);
    let file = ["pytorch_model.bin", "model.safetensors"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::Config {
            source_name: dir.display().to_string(),
            message: "no drafter weights: expected pytorch_model.bin or model.safetensors".into(),
        })?;
    let mut w = Weights::of(&file, read_tensor_snapshots(&file)?, device);
    let (d, v) = (cfg.hidden_size, cfg.vocab_size);
    let layers = build_layers(&cfg, KeyLayout::Drafter, &mut w);
    let embed = w.take("embed_tokens.weight", &[v, d]);
    let mut fc = w.linear("fc", d, 2 * d, None);
    if bias {
        let b = w.take("fc.bias", &[d]);
        fc.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d]),
            &w.device,
        )));
    }
    let drafter = ChameleonDrafter {
        embed_tokens: Embedding {
            weight: Param::from_tensor(w.tensor([v, d], embed)),
        },
        fc,
        layers,
        rope: Rope2d::from_table(rope_table(&cfg), &w.device),
        config: cfg,
    };
    w.finish(&file)?;
    Ok(drafter)
}
