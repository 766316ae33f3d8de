//! Model configurations: LlamaGen GPT (`ModelArgs`), the VQ tokenizer and the EAGLE drafter.
//!
//! Field names follow the official code so that the JSON files written next to official
//! checkpoints (and the fixture JSONs) parse unchanged.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::ModelError;

/// How the GPT is conditioned: on a class label or on caption embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelType {
    /// Class-conditional: one class token, `num_classes + 1` rows (the last is the null class).
    #[serde(rename = "c2i")]
    C2i,
    /// Text-conditional: `cls_token_num` caption embeddings projected by `cap_proj`.
    #[serde(rename = "t2i")]
    T2i,
}

/// LlamaGen GPT configuration (`autoregressive/models/gpt.py::ModelArgs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptConfig {
    /// Model width.
    pub dim: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Number of query heads.
    pub n_head: usize,
    /// Number of key/value heads (`None` = multi-head attention).
    #[serde(default)]
    pub n_kv_head: Option<usize>,
    /// The FFN width is rounded up to a multiple of this.
    #[serde(default = "default_multiple_of")]
    pub multiple_of: usize,
    /// Optional multiplier on the FFN width.
    #[serde(default)]
    pub ffn_dim_multiplier: Option<f64>,
    /// RoPE base.
    #[serde(default = "default_rope_base")]
    pub rope_base: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// Image-token vocabulary (the VQ codebook size).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Number of image tokens (grid²).
    #[serde(default = "default_block_size")]
    pub block_size: usize,
    /// Number of classes (c2i).
    #[serde(default = "default_num_classes")]
    pub num_classes: usize,
    /// Caption embedding width (t2i).
    #[serde(default = "default_caption_dim")]
    pub caption_dim: usize,
    /// Label/caption dropout used in training; `> 0` adds the null-class row.
    #[serde(default = "default_class_dropout")]
    pub class_dropout_prob: f64,
    /// Conditioning positions before the image tokens (1 for c2i, 120 for t2i).
    #[serde(default = "default_cls_token_num")]
    pub cls_token_num: usize,
    /// Class- or text-conditional.
    #[serde(default = "default_model_type")]
    pub model_type: ModelType,
    /// Training-only options of the official `ModelArgs`, accepted and ignored at inference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_dropout_p: Option<f64>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attn_dropout_p: Option<f64>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resid_dropout_p: Option<f64>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_dropout_p: Option<f64>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_path_rate: Option<f64>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initializer_range: Option<f64>,
}

fn default_multiple_of() -> usize {
    256
}
fn default_rope_base() -> f64 {
    10000.0
}
fn default_norm_eps() -> f64 {
    1e-5
}
fn default_vocab() -> usize {
    16384
}
fn default_block_size() -> usize {
    256
}
fn default_num_classes() -> usize {
    1000
}
fn default_caption_dim() -> usize {
    2048
}
fn default_class_dropout() -> f64 {
    0.1
}
fn default_cls_token_num() -> usize {
    1
}
fn default_model_type() -> ModelType {
    ModelType::C2i
}

/// The published LlamaGen sizes: (name, n_layer, n_head, dim).
pub const GPT_PRESETS: &[(&str, usize, usize, usize)] = &[
    ("GPT-B", 12, 12, 768),
    ("GPT-L", 24, 16, 1024),
    ("GPT-XL", 36, 20, 1280),
    ("GPT-XXL", 48, 24, 1536),
    ("GPT-XXXL", 48, 40, 2560),
    ("GPT-1B", 22, 32, 2048),
    ("GPT-3B", 24, 32, 3200),
    ("GPT-7B", 32, 32, 4096),
];

/// Rounds `n` up to a multiple of `k` (LlamaGen's `find_multiple`).
pub fn find_multiple(n: usize, k: usize) -> usize {
    if n.is_multiple_of(k) {
        n
    } else {
        n + k - n % k
    }
}

impl GptConfig {
    /// A published size (`GPT-B` … `GPT-7B`) with the official defaults (c2i, 256 px, 16384 codes).
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        let (_, n_layer, n_head, dim) = GPT_PRESETS
            .iter()
            .find(|p| p.0.eq_ignore_ascii_case(name))
            .copied()
            .ok_or_else(|| ModelError::Config {
                source_name: "gpt preset".into(),
                message: format!(
                    "unknown GPT preset '{name}'; allowed: {}",
                    GPT_PRESETS
                        .iter()
                        .map(|p| p.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        Ok(Self::with_shape(n_layer, n_head, dim))
    }

    /// Official defaults with the given depth, heads and width.
    pub fn with_shape(n_layer: usize, n_head: usize, dim: usize) -> Self {
        Self {
            dim,
            n_layer,
            n_head,
            n_kv_head: None,
            multiple_of: default_multiple_of(),
            ffn_dim_multiplier: None,
            rope_base: default_rope_base(),
            norm_eps: default_norm_eps(),
            vocab_size: default_vocab(),
            block_size: default_block_size(),
            num_classes: default_num_classes(),
            caption_dim: default_caption_dim(),
            class_dropout_prob: default_class_dropout(),
            cls_token_num: 1,
            model_type: ModelType::C2i,
            token_dropout_p: None,
            attn_dropout_p: None,
            resid_dropout_p: None,
            ffn_dropout_p: None,
            drop_path_rate: None,
            initializer_range: None,
        }
    }

    /// Switches to the text-conditional layout (120 caption positions), as `sample_t2i.py` does.
    pub fn text_conditional(mut self) -> Self {
        self.model_type = ModelType::T2i;
        self.cls_token_num = 120;
        self
    }

    /// Parses a JSON file of `ModelArgs` fields and validates it.
    pub fn from_json_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Checks the shape constraints the architecture relies on.
    pub fn validate(&self, source_name: &str) -> Result<(), ModelError> {
        let fail = |message: String| {
            Err(ModelError::Config {
                source_name: source_name.to_string(),
                message,
            })
        };
        if self.n_head == 0 || !self.dim.is_multiple_of(self.n_head) {
            return fail(format!(
                "dim {} is not divisible by n_head {}",
                self.dim, self.n_head
            ));
        }
        if !self.head_dim().is_multiple_of(4) {
            return fail(format!(
                "head_dim {} must be a multiple of 4 for the 2D rotary embedding",
                self.head_dim()
            ));
        }
        if !self.n_head.is_multiple_of(self.kv_heads()) {
            return fail(format!(
                "n_head {} is not a multiple of n_kv_head {}",
                self.n_head,
                self.kv_heads()
            ));
        }
        let grid = self.grid_size();
        if grid * grid != self.block_size {
            return fail(format!(
                "block_size {} is not a perfect square",
                self.block_size
            ));
        }
        if self.cls_token_num == 0 {
            return fail("cls_token_num must be at least 1".into());
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_head
    }

    /// Number of key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.n_kv_head.unwrap_or(self.n_head)
    }

    /// FFN hidden width: `find_multiple(mult · int(2·4·dim/3), multiple_of)`.
    pub fn ffn_hidden(&self) -> usize {
        let mut hidden = 2 * 4 * self.dim / 3;
        if let Some(m) = self.ffn_dim_multiplier {
            hidden = (m * hidden as f64) as usize;
        }
        find_multiple(hidden, self.multiple_of)
    }

    /// Side of the token grid (16 for 256 px).
    pub fn grid_size(&self) -> usize {
        (self.block_size as f64).sqrt().round() as usize
    }

    /// Rows of the class table: `num_classes + 1` when label dropout was used in training.
    pub fn class_rows(&self) -> usize {
        self.num_classes + usize::from(self.class_dropout_prob > 0.0)
    }

    /// The class index that means "no class" (used for the unconditional CFG half).
    pub fn null_class(&self) -> usize {
        self.num_classes
    }
}

/// LlamaGen VQ tokenizer configuration (`tokenizer/tokenizer_image/vq_model.py::ModelArgs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqConfig {
    /// Number of codes.
    #[serde(default = "default_vocab")]
    pub codebook_size: usize,
    /// Code width.
    #[serde(default = "default_embed_dim")]
    pub codebook_embed_dim: usize,
    /// L2-normalise codes and codebook at lookup (true in every release).
    #[serde(default = "default_true")]
    pub codebook_l2_norm: bool,
    /// Channel multipliers of the encoder levels.
    #[serde(default = "default_ch_mult")]
    pub encoder_ch_mult: Vec<usize>,
    /// Channel multipliers of the decoder levels.
    #[serde(default = "default_ch_mult")]
    pub decoder_ch_mult: Vec<usize>,
    /// Latent channels before `quant_conv`.
    #[serde(default = "default_z_channels")]
    pub z_channels: usize,
    /// Base channels (128 in VQ-16).
    #[serde(default = "default_ch")]
    pub ch: usize,
    /// ResNet blocks per encoder level (the decoder uses one more).
    #[serde(default = "default_res_blocks")]
    pub num_res_blocks: usize,
    /// Normalisation: `groupN` (GroupNorm with N groups, eps 1e-6).
    #[serde(default = "default_norm")]
    pub norm: String,
    /// Taming/Meta VQGAN attention placement: attention blocks at the levels whose side (from
    /// `resolution`, halved per level) is listed; `None` = LlamaGen's (last encoder level, first
    /// decoder level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attn_resolutions: Option<Vec<usize>>,
    /// Image side the attention placement counts from (taming's `resolution`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<usize>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codebook_show_usage: Option<bool>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_loss_beta: Option<f64>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy_loss_ratio: Option<f64>,
    /// Training only (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout_p: Option<f64>,
}

fn default_embed_dim() -> usize {
    8
}
fn default_true() -> bool {
    true
}
fn default_ch_mult() -> Vec<usize> {
    vec![1, 1, 2, 2, 4]
}
fn default_z_channels() -> usize {
    256
}
fn default_ch() -> usize {
    128
}
fn default_res_blocks() -> usize {
    2
}
fn default_norm() -> String {
    "group32".into()
}

impl VqConfig {
    /// VQ-16 (`vq_ds16_c2i.pt`, `vq_ds16_t2i.pt`): 16× downsampling, 16384 codes of width 8.
    pub fn vq16() -> Self {
        serde_json::from_str("{}").expect("defaults are VQ-16")
    }

    /// VQ-8 (`vq_ds8_c2i.pt`): 8× downsampling.
    pub fn vq8() -> Self {
        Self {
            encoder_ch_mult: vec![1, 2, 2, 4],
            decoder_ch_mult: vec![1, 2, 2, 4],
            ..Self::vq16()
        }
    }

    /// Parses a JSON file of VQ `ModelArgs` fields and validates it.
    pub fn from_json_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        cfg.norm_groups(&path.display().to_string())?;
        Ok(cfg)
    }

    /// The GroupNorm group count encoded in `norm` (`group32` → 32).
    pub fn norm_groups(&self, source_name: &str) -> Result<usize, ModelError> {
        self.norm
            .strip_prefix("group")
            .and_then(|n| {
                if n.is_empty() {
                    Some(32)
                } else {
                    n.parse().ok()
                }
            })
            .filter(|&g: &usize| g > 0)
            .ok_or_else(|| ModelError::Config {
                source_name: source_name.to_string(),
                message: format!(
                    "norm '{}' is not supported; allowed: groupN (e.g. group32)",
                    self.norm
                ),
            })
    }

    /// Whether encoder level `level` (0 = finest) has attention blocks; the decoder's level of
    /// the same side does too.
    pub fn level_has_attention(&self, level: usize) -> bool {
        let levels = self.encoder_ch_mult.len();
        match (&self.attn_resolutions, self.resolution) {
            (Some(sides), Some(res)) => sides.contains(&(res >> level)),
            (Some(_), None) => false,
            (None, _) => level + 1 == levels,
        }
    }

    /// Spatial downsampling factor of the encoder (16 for VQ-16).
    pub fn downsample(&self) -> usize {
        1 << (self.encoder_ch_mult.len() - 1)
    }
}

/// EAGLE drafter configuration in LANTERN's layout (`data/configs/llamagen_*_config.json`).
///
/// Unknown keys of the Hugging Face Llama config (architectures, token ids, …) are ignored.
/// `block_size` and `cls_token_num` are explicit here: LANTERN hard-codes them per `input_type`
/// (and fixes c2i to 576 tokens); we derive them from `input_type` only when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrafterConfig {
    /// Width (equals the target's `dim`).
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Decoder layers (1 in EAGLE).
    #[serde(default = "default_one")]
    pub num_hidden_layers: usize,
    /// RMSNorm epsilon (1e-6, the HF default).
    #[serde(default = "default_drafter_eps")]
    pub rms_norm_eps: f64,
    /// Vocabulary (equals the target's).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Whether `fc` has a bias (EAGLE: true).
    #[serde(default = "default_true")]
    pub bias: bool,
    /// Whether q/k/v projections have biases.
    #[serde(default)]
    pub qkv_bias: bool,
    /// `c2i`, `t2i` or `t2i2` (LANTERN's names).
    #[serde(default = "default_input_type")]
    pub input_type: String,
    /// Image tokens (grid²) of the target.
    #[serde(default)]
    pub block_size: Option<usize>,
    /// Zero rotary rows before the grid: target `cls_token_num − 1`.
    #[serde(default)]
    pub cls_token_num: Option<usize>,
    /// RoPE base.
    #[serde(default)]
    pub rope_theta: Option<f64>,
}

fn default_one() -> usize {
    1
}
fn default_drafter_eps() -> f64 {
    1e-6
}
fn default_input_type() -> String {
    "c2i".into()
}

impl DrafterConfig {
    /// The drafter LANTERN's recipe pairs with a target: same width, heads and vocabulary, one layer.
    pub fn for_target(target: &GptConfig) -> Self {
        Self {
            hidden_size: target.dim,
            intermediate_size: target.ffn_hidden(),
            num_attention_heads: target.n_head,
            num_key_value_heads: target.n_kv_head,
            num_hidden_layers: 1,
            rms_norm_eps: 1e-6,
            vocab_size: target.vocab_size,
            bias: true,
            qkv_bias: false,
            input_type: match target.model_type {
                ModelType::C2i => "c2i".into(),
                ModelType::T2i => "t2i".into(),
            },
            block_size: Some(target.block_size),
            cls_token_num: Some(target.cls_token_num - 1),
            rope_theta: Some(target.rope_base),
        }
    }

    /// Parses a drafter JSON config (LANTERN / Hugging Face Llama style).
    pub fn from_json_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Checks head and grid shapes.
    pub fn validate(&self, source_name: &str) -> Result<(), ModelError> {
        let fail = |message: String| {
            Err(ModelError::Config {
                source_name: source_name.to_string(),
                message,
            })
        };
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return fail("hidden_size must be divisible by num_attention_heads".into());
        }
        if !self.head_dim().is_multiple_of(4) {
            return fail("head_dim must be a multiple of 4 for the 2D rotary embedding".into());
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return fail("num_attention_heads must be a multiple of num_key_value_heads".into());
        }
        let grid = (self.block_size() as f64).sqrt().round() as usize;
        if grid * grid != self.block_size() {
            return fail(format!(
                "block_size {} is not a perfect square",
                self.block_size()
            ));
        }
        if !matches!(self.input_type.as_str(), "c2i" | "t2i" | "t2i2") {
            return fail(format!(
                "input_type '{}' is not supported; allowed: c2i, t2i, t2i2",
                self.input_type
            ));
        }
        Ok(())
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Image tokens of the target (explicit, else LANTERN's per-`input_type` value with c2i = 256).
    pub fn block_size(&self) -> usize {
        self.block_size.unwrap_or(match self.input_type.as_str() {
            "t2i2" => 1024,
            _ => 256,
        })
    }

    /// Zero rotary rows before the grid (target `cls_token_num − 1`: 0 for c2i, 119 for t2i).
    pub fn cls_token_num(&self) -> usize {
        self.cls_token_num
            .unwrap_or(match self.input_type.as_str() {
                "c2i" => 0,
                _ => 119,
            })
    }

    /// RoPE base.
    pub fn rope_base(&self) -> f64 {
        self.rope_theta.unwrap_or(10000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_published_ffn_widths() {
        let want = [
            ("GPT-B", 2048),
            ("GPT-L", 2816),
            ("GPT-XL", 3584),
            ("GPT-XXL", 4096),
            ("GPT-XXXL", 6912),
            ("GPT-1B", 5632),
            ("GPT-3B", 8704),
            ("GPT-7B", 11008),
        ];
        for (name, ffn) in want {
            let cfg = GptConfig::preset(name).unwrap();
            assert_eq!(cfg.ffn_hidden(), ffn, "{name}");
            cfg.validate(name).unwrap();
        }
        assert_eq!(GptConfig::preset("GPT-3B").unwrap().head_dim(), 100);
    }

    #[test]
    fn unknown_preset_lists_allowed_names() {
        let err = GptConfig::preset("GPT-Q").unwrap_err().to_string();
        assert!(err.contains("GPT-B") && err.contains("GPT-7B"), "{err}");
    }

    #[test]
    fn unknown_json_key_is_refused() {
        let err =
            serde_json::from_str::<GptConfig>(r#"{"dim":64,"n_layer":1,"n_head":4,"bogus":1}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn vq_norm_groups_parse() {
        assert_eq!(VqConfig::vq16().norm_groups("x").unwrap(), 32);
        let bad = VqConfig {
            norm: "batch".into(),
            ..VqConfig::vq16()
        };
        assert!(bad.norm_groups("x").is_err());
        assert_eq!(VqConfig::vq16().downsample(), 16);
        assert_eq!(VqConfig::vq8().downsample(), 8);
    }
}
