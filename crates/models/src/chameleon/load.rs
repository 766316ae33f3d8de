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
    rope_table, Chameleon, ChameleonAttention, ChameleonConfig, ChameleonLayer, ChameleonMlp,
    ChameleonVocab, HeadNorm,
};
use crate::checkpoint::read_tensor_data;
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
    let mut tensors = BTreeMap::new();
    for f in files {
        tensors.extend(read_tensor_data(f)?);
    }
    let source = files
        .first()
        .cloned()
        .unwrap_or_else(|| config.to_path_buf());
    let mut w = Weights {
        tensors,
        problems: Vec::new(),
        device: device.clone(),
    };
    let model = build(&cfg, vocab, &mut w);
    w.finish(&source)?;
    Ok(model)
}

/// The file's tensors, taken one by one; what goes wrong is collected, not returned at once.
struct Weights {
    tensors: BTreeMap<String, TensorData>,
    problems: Vec<KeyProblem>,
    device: Device,
}

impl Weights {
    /// The f32 values of `key` if its shape is `shape` (else a zero tensor and a problem).
    fn take(&mut self, key: &str, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        match self.tensors.remove(key) {
            None => {
                self.problems.push(KeyProblem::Missing {
                    key: key.into(),
                    expected: shape.to_vec(),
                });
                vec![0.0; n]
            }
            Some(t) if t.shape().to_vec() != shape => {
                self.problems.push(KeyProblem::ShapeMismatch {
                    key: key.into(),
                    expected: shape.to_vec(),
                    found: t.shape().to_vec(),
                });
                vec![0.0; n]
            }
            Some(t) => t
                .convert::<f32>()
                .try_into_vec_as()
                .expect("f32 after convert"),
        }
    }

    /// A `Linear` from a PyTorch `[out, in]` weight, rows reordered by `rows` when given.
    fn linear(&mut self, key: &str, out: usize, inp: usize, rows: Option<&[usize]>) -> Linear {
        let w = self.take(&format!("{key}.weight"), &[out, inp]);
        let mut t = vec![0f32; out * inp];
        for o in 0..out {
            let src = rows.map_or(o, |r| r[o]);
            for i in 0..inp {
                t[i * out + o] = w[src * inp + i];
            }
        }
        Linear {
            weight: Param::from_tensor(self.tensor([inp, out], t)),
            bias: None,
        }
    }

    fn rms_norm(&mut self, key: &str, d: usize, eps: f64) -> RmsNorm {
        let g = self.take(&format!("{key}.weight"), &[d]);
        RmsNorm {
            gamma: Param::from_tensor(Tensor::from_data(TensorData::new(g, [d]), &self.device)),
            epsilon: eps,
        }
    }

    /// A qk-norm of `heads` heads: `[heads, hd]` (HF) or `[groups, hd]` with `groups | heads`
    /// (Lumina-mGPT, repeated per head), columns reordered by `perm` within each head.
    fn head_norm(&mut self, key: &str, heads: usize, hd: usize, perm: &[usize]) -> HeadNorm {
        let mut part = |name: &str| {
            let key = format!("{key}.{name}");
            let groups = match self.tensors.get(&key).map(|t| t.shape().to_vec()) {
                Some(s) if s.len() == 2 && s[1] == hd && s[0] > 0 && heads.is_multiple_of(s[0]) => {
                    s[0]
                }
                _ => heads,
            };
            let v = self.take(&key, &[groups, hd]);
            let per_group = heads / groups;
            let t: Vec<f32> = (0..heads)
                .flat_map(|h| {
                    let g = h / per_group;
                    perm.iter().map(move |&j| (g, j))
                })
                .map(|(g, j)| v[g * hd + j])
                .collect();
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
    fn finish(self, source: &Path) -> Result<(), ModelError> {
        let mut problems = self.problems;
        for (key, t) in &self.tensors {
            if !IGNORED_PREFIXES.iter().any(|p| key.starts_with(p)) {
                problems.push(KeyProblem::Unexpected {
                    key: key.clone(),
                    found: t.shape().to_vec(),
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

fn build(cfg: &ChameleonConfig, vocab: ChameleonVocab, w: &mut Weights) -> Chameleon {
    let (d, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let (h, hk, hd) = (
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim(),
    );
    let eps = cfg.rms_norm_eps;
    let perm = half_to_pairs(hd);
    let (q_rows, k_rows) = (permuted_rows(h, hd), permuted_rows(hk, hd));
    let layers = (0..cfg.num_hidden_layers)
        .map(|l| {
            let p = format!("model.layers.{l}");
            let a = format!("{p}.self_attn");
            let m = format!("{p}.mlp");
            ChameleonLayer {
                self_attn: ChameleonAttention {
                    q_proj: w.linear(&format!("{a}.q_proj"), h * hd, d, Some(&q_rows)),
                    k_proj: w.linear(&format!("{a}.k_proj"), hk * hd, d, Some(&k_rows)),
                    v_proj: w.linear(&format!("{a}.v_proj"), hk * hd, d, None),
                    o_proj: w.linear(&format!("{a}.o_proj"), d, h * hd, None),
                    q_norm: w.head_norm(&format!("{a}.q_norm"), h, hd, &perm),
                    k_norm: w.head_norm(&format!("{a}.k_norm"), hk, hd, &perm),
                    heads: h,
                    kv_heads: hk,
                    head_dim: hd,
                },
                mlp: ChameleonMlp {
                    gate_proj: w.linear(&format!("{m}.gate_proj"), f, d, None),
                    up_proj: w.linear(&format!("{m}.up_proj"), f, d, None),
                    down_proj: w.linear(&format!("{m}.down_proj"), d, f, None),
                },
                input_layernorm: w.rms_norm(&format!("{p}.input_layernorm"), d, eps),
                post_attention_layernorm: w.rms_norm(
                    &format!("{p}.post_attention_layernorm"),
                    d,
                    eps,
                ),
                swin_norm: cfg.swin_norm,
            }
        })
        .collect();
    let embed = w.take("model.embed_tokens.weight", &[v, d]);
    Chameleon {
        embed_tokens: Embedding {
            weight: Param::from_tensor(w.tensor([v, d], embed)),
        },
        layers,
        norm: w.rms_norm("model.norm", d, eps),
        lm_head: w.linear("lm_head", v, d, None),
        rope: Rope2d::from_table(rope_table(cfg), &w.device),
        config: cfg.clone(),
        vocab,
    }
}
