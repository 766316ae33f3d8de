//! The Chameleon-family configuration (HF `ChameleonConfig`, as Anole-hf and Lumina-mGPT ship it)
//! and the image-token vocabulary read from its `vocabulary_map`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// qk-norm epsilon: hard-coded in every official implementation, whatever `rms_norm_eps` says.
pub const QK_NORM_EPS: f32 = 1e-5;

/// Shape and options of a Chameleon decoder (the fields of HF `config.json` that the forward reads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChameleonConfig {
    /// Model width d.
    pub hidden_size: usize,
    /// SwiGLU width.
    pub intermediate_size: usize,
    /// Query heads H.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA); equal to H for the 7B releases.
    pub num_key_value_heads: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// RMSNorm epsilon (not the qk-norm's, see [`QK_NORM_EPS`]).
    pub rms_norm_eps: f64,
    /// RoPE base θ (`rope_theta`, or `rope_parameters.rope_theta` as transformers 5 writes it).
    pub rope_theta: f64,
    /// Swin-norm block order (norms wrap the sublayer outputs; Chameleon-30B, Lumina-34B).
    pub swin_norm: bool,
    /// Vocabulary size (text and image tokens).
    pub vocab_size: usize,
    /// Longest sequence the model was trained on.
    pub max_position_embeddings: usize,
}

/// The parts of `config.json` read before validation.
#[derive(Deserialize)]
struct RawConfig {
    hidden_size: usize,
    intermediate_size: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    num_hidden_layers: usize,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    swin_norm: bool,
    vocab_size: usize,
    max_position_embeddings: usize,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    rope_scaling: Option<serde_json::Value>,
    vocabulary_map: Option<BTreeMap<String, u32>>,
}

#[derive(Deserialize)]
struct RopeParameters {
    rope_theta: f64,
    rope_type: Option<String>,
}

impl ChameleonConfig {
    /// Reads and validates an HF `config.json`; returns the config and its vocabulary.
    pub fn from_json_file(path: &Path) -> Result<(Self, ChameleonVocab), ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// [`ChameleonConfig::from_json_file`] on the text of a file named `source_name`.
    pub fn from_json(text: &str, source_name: &str) -> Result<(Self, ChameleonVocab), ModelError> {
        let (c, map) = Self::parse(text, source_name)?;
        let map = map.ok_or_else(|| ModelError::Config {
            source_name: source_name.to_string(),
            message: "vocabulary_map is missing (it names every image token)".into(),
        })?;
        let vocab = ChameleonVocab::from_map(&map, c.vocab_size, source_name)?;
        Ok((c, vocab))
    }

    /// The shape alone (a drafter's `config.json`, which may carry no `vocabulary_map`).
    pub fn shape_from_json_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Ok(Self::parse(&text, &path.display().to_string())?.0)
    }

    /// The validated shape and the vocabulary map, if present.
    fn parse(
        text: &str,
        source_name: &str,
    ) -> Result<(Self, Option<BTreeMap<String, u32>>), ModelError> {
        let err = |message: String| ModelError::Config {
            source_name: source_name.to_string(),
            message,
        };
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| err(format!("not a Chameleon config: {e}")))?;
        if raw.attention_bias || raw.mlp_bias {
            return Err(err(
                "attention_bias / mlp_bias = true is not supported (allowed: false, as in every release)".into(),
            ));
        }
        if let Some(s) = raw.rope_scaling.as_ref().filter(|s| !s.is_null()) {
            return Err(err(format!(
                "rope_scaling = {s} is not supported (allowed: null)"
            )));
        }
        let rope_theta = match (&raw.rope_parameters, raw.rope_theta) {
            (Some(p), _) => {
                if let Some(t) = p.rope_type.as_deref().filter(|t| *t != "default") {
                    return Err(err(format!(
                        "rope_parameters.rope_type = '{t}' is not supported (allowed: default)"
                    )));
                }
                p.rope_theta
            }
            (None, Some(t)) => t,
            (None, None) => return Err(err("rope_theta is missing".into())),
        };
        let c = Self {
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            num_hidden_layers: raw.num_hidden_layers,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            swin_norm: raw.swin_norm,
            vocab_size: raw.vocab_size,
            max_position_embeddings: raw.max_position_embeddings,
        };
        c.validate(source_name)?;
        Ok((c, raw.vocabulary_map))
    }

    /// Refuses shapes the forward cannot run.
    pub fn validate(&self, source_name: &str) -> Result<(), ModelError> {
        let err = |message: String| {
            Err(ModelError::Config {
                source_name: source_name.to_string(),
                message,
            })
        };
        let (d, h, hk) = (
            self.hidden_size,
            self.num_attention_heads,
            self.num_key_value_heads,
        );
        if h == 0 || !d.is_multiple_of(h) || !(d / h).is_multiple_of(2) {
            return err(format!(
                "hidden_size {d} must split into num_attention_heads {h} heads of even width"
            ));
        }
        if hk == 0 || !h.is_multiple_of(hk) {
            return err(format!(
                "num_key_value_heads {hk} must divide num_attention_heads {h}"
            ));
        }
        if self.rope_theta <= 0.0 || !self.rope_theta.is_finite() {
            return err(format!("rope_theta {} must be positive", self.rope_theta));
        }
        Ok(())
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// Token ids the image conventions use, all read from `vocabulary_map` by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChameleonVocab {
    /// Token id of VQ code c at index c (names `IMGIMG<digits as A–J>Z`).
    pub image_ids: Vec<u32>,
    /// `<s>`.
    pub bos: u32,
    /// `<pad>`.
    pub pad: u32,
    /// `<racm3:break>`: start of image.
    pub image_start: u32,
    /// `<eoss>`: end of image.
    pub image_end: u32,
    /// `<reserved08706>`: end of turn (Lumina's separator and eos).
    pub eot: u32,
    /// `<reserved08799>`: Lumina's end of line.
    pub eol: u32,
    /// `<reserved08800>`: Lumina's size token for n = 0 (n grids of 32 px is `size_base + n`).
    pub size_base: u32,
}

impl ChameleonVocab {
    /// Reads the ids from a `vocabulary_map` (name → id) of a `vocab_size` vocabulary.
    pub fn from_map(
        map: &BTreeMap<String, u32>,
        vocab_size: usize,
        source_name: &str,
    ) -> Result<Self, ModelError> {
        let err = |message: String| ModelError::Config {
            source_name: source_name.to_string(),
            message,
        };
        let id = |name: &str| {
            map.get(name)
                .copied()
                .ok_or_else(|| err(format!("vocabulary_map lacks '{name}'")))
        };
        let mut codes: Vec<(usize, u32)> = map
            .iter()
            .filter_map(|(name, &id)| image_code(name).map(|c| (c, id)))
            .collect();
        codes.sort_unstable();
        if codes.is_empty() {
            return Err(err("vocabulary_map names no image token (IMGIMG…)".into()));
        }
        if let Some((i, (c, _))) = codes.iter().enumerate().find(|(i, (c, _))| c != i) {
            return Err(err(format!(
                "image codes must run 0..{} without gaps; code {i} is missing (next is {c})",
                codes.len()
            )));
        }
        if let Some(&(c, bad)) = codes.iter().find(|(_, id)| *id as usize >= vocab_size) {
            return Err(err(format!(
                "image code {c} has id {bad}, outside vocab_size {vocab_size}"
            )));
        }
        Ok(Self {
            image_ids: codes.into_iter().map(|(_, id)| id).collect(),
            bos: id("<s>")?,
            pad: id("<pad>")?,
            image_start: id("<racm3:break>")?,
            image_end: id("<eoss>")?,
            eot: id("<reserved08706>")?,
            eol: id("<reserved08799>")?,
            size_base: id("<reserved08800>")?,
        })
    }

    /// The ids of the released 7B checkpoints (Chameleon, Anole, Lumina-mGPT): 8192 image tokens
    /// at 4..8195, `<eoss>` 8196, `<racm3:break>` 8197, `<reserved08706>` 8710, EOL 8803, size
    /// tokens from 8804 (`docs/reference/chameleon.md` §5, §8). For random-weight timings of a
    /// release's shape (`lantern bench`), which ship no `vocabulary_map`; real checkpoints are
    /// always read through their map.
    pub fn released() -> Self {
        Self {
            image_ids: (4..4 + 8192).collect(),
            bos: 0,
            pad: 1,
            image_start: 8197,
            image_end: 8196,
            eot: 8710,
            eol: 8803,
            size_base: 8804,
        }
    }

    /// Codebook size (image tokens).
    pub fn codebook_size(&self) -> usize {
        self.image_ids.len()
    }

    /// VQ code of token `id`, if it is an image token.
    pub fn code_of(&self, id: u32) -> Option<usize> {
        // Ids are usually contiguous (code c ↔ first + c); fall back to a search otherwise.
        let first = self.image_ids[0];
        let guess = id.checked_sub(first).map(|c| c as usize);
        match guess {
            Some(c) if self.image_ids.get(c) == Some(&id) => Some(c),
            _ => self.image_ids.iter().position(|&x| x == id),
        }
    }

    /// Lumina's size token for `n` grids of 32 px.
    pub fn size_token(&self, n: usize) -> u32 {
        self.size_base + n as u32
    }
}

/// The VQ code an image-token name stands for: `IMGIMG` + the code's decimal digits written as
/// letters A–J + one closing character (HF `ChameleonImageVocabularyMapping.bpe2img`).
pub fn image_code(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("IMGIMG")?;
    let mut chars: Vec<char> = digits.chars().collect();
    chars.pop()?;
    if chars.is_empty() {
        return None;
    }
    chars.iter().try_fold(0usize, |acc, &ch| {
        ('A'..='J')
            .contains(&ch)
            .then(|| acc * 10 + (ch as usize - 'A' as usize))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_spell_their_code_in_letters() {
        assert_eq!(image_code("IMGIMGAZ"), Some(0));
        assert_eq!(image_code("IMGIMGCFFZ"), Some(255));
        assert_eq!(image_code("IMGIMGBAAAZ"), Some(1000));
        assert_eq!(image_code("IMGIMGZ"), None);
        assert_eq!(image_code("IMGIMGKZ"), None);
        assert_eq!(image_code("<eoss>"), None);
    }
}
