//! The sweep file: strict TOML parsing and validation.
//!
//! Any scalar under `[sampling]` and the numeric/tree keys of a `[[strategy]]` may be a list;
//! lists expand to a grid in [`crate::plan`]. Unknown keys, wrong types and out-of-range values
//! are refused before any work starts, naming the file, the key, the value and what is allowed.

use std::path::{Path, PathBuf};

use lantern_decoding::spec::StrategySpec;
use lantern_models::backend::EngineKind;
use lantern_models::cpu::WeightDtype;
use serde::Deserialize;

pub mod grid;
mod overrides;
mod validate;

/// A refused sweep file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type (the parser's message names the key and line).
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value outside its allowed range.
    #[error("{file}: {key} = {value}: {allowed}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted key, e.g. `strategy[1].delta`.
        key: String,
        /// The offending value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
}

/// A scalar or a list of scalars.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// One value.
    One(T),
    /// A list (expands to a grid).
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    /// The values as a list.
    pub fn values(&self) -> Vec<T> {
        match self {
            Self::One(v) => vec![v.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// The preset naming the Chameleon-family random-weight fixture (`fixtures/chameleon-tiny`).
pub const FIXTURE_CHAMELEON: &str = "fixture-chameleon";

/// `[model]`: a preset or explicit files.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `tiny` (the embedded default), `tiny-peaked`, `fixture` (the LlamaGen random-weight
    /// fixture) or `fixture-chameleon` (the Chameleon-family one).
    pub preset: Option<String>,
    /// Target checkpoint: a LlamaGen file, or a Chameleon-family folder (`config.json` with
    /// `model_type = "chameleon"`: Lumina-mGPT, Anole), whose config names the family.
    pub gpt: Option<PathBuf>,
    /// Target config: preset name (`GPT-B`, …) or a JSON file (LlamaGen; a Chameleon folder
    /// carries its own).
    pub gpt_config: Option<String>,
    /// Chameleon family: `lumina` or `anole` (default: read from the checkpoint's config).
    pub convention: Option<String>,
    /// Chameleon family: the image's latent grid `[rows, columns]` (default: Lumina-mGPT 768 px
    /// `[48, 48]`, Anole 512 px `[32, 32]`; the fixture's from its `generation.json`).
    pub grid: Option<Vec<i64>>,
    /// Chameleon family: the release's `text_tokenizer.json` (default: the one beside the
    /// checkpoint folder, `text_tokenizer.json` or `../tokenizer/text_tokenizer.json`).
    pub text_tokenizer: Option<PathBuf>,
    /// VQ checkpoint.
    pub vq: Option<PathBuf>,
    /// VQ config: `VQ-16`, `VQ-8` or a JSON file.
    pub vq_config: Option<String>,
    /// Drafter checkpoint (or `random`: an untrained drafter, machinery tests only).
    pub drafter: Option<String>,
    /// Drafter config JSON.
    pub drafter_config: Option<PathBuf>,
    /// Weight storage on the host engine: `f32` (default), `bf16` or `f16`.
    pub dtype: Option<String>,
}

/// `[sampling]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSection {
    /// Temperature(s), ≥ 0 (0 = greedy).
    #[serde(default = "one_f64")]
    pub temperature: OneOrMany<f64>,
    /// Top-k filter(s), ≥ 0 (0 = off).
    #[serde(default = "zero_i64")]
    pub top_k: OneOrMany<i64>,
    /// Top-p filter(s) in (0, 1].
    #[serde(default = "one_f64")]
    pub top_p: OneOrMany<f64>,
    /// CFG scale(s), ≥ 0 (≤ 1 = no guidance).
    #[serde(default = "cfg_default")]
    pub cfg: OneOrMany<f64>,
    /// LlamaGen's cfg_interval (−1 or absent = guide every token).
    #[serde(default)]
    pub cfg_interval: Option<i64>,
    /// Order of top-k and top-p: `top-k-then-top-p` (LlamaGen's, default) or `top-p-then-top-k`
    /// (LANTERN's speculative path); matters only when both filters are on.
    #[serde(default)]
    pub order: Option<String>,
    /// `fixed` (default) and/or `entropy`: entropy-aware temperature with `temperature` as T0.
    #[serde(default)]
    pub temperature_rule: Option<OneOrMany<String>>,
}

fn one_f64() -> OneOrMany<f64> {
    OneOrMany::One(1.0)
}
fn zero_i64() -> OneOrMany<i64> {
    OneOrMany::One(0)
}
fn cfg_default() -> OneOrMany<f64> {
    OneOrMany::One(3.0)
}

impl Default for SamplingSection {
    fn default() -> Self {
        Self {
            temperature: one_f64(),
            top_k: zero_i64(),
            top_p: one_f64(),
            cfg: cfg_default(),
            cfg_interval: None,
            order: None,
            temperature_rule: None,
        }
    }
}

/// `[data]`: what to generate.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Class labels (c2i).
    pub classes: Option<Vec<i64>>,
    /// A prompt-set manifest (t2i): captions and their precomputed text-encoder embeddings (see
    /// `prompts.rs`).
    pub prompts: Option<PathBuf>,
    /// Use only the first this many prompts of the set, ≥ 1.
    pub prompt_limit: Option<i64>,
    /// Images per condition: seeds `0..seeds`.
    pub seeds: i64,
}

/// `[runtime]`: how to run.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// `auto`, `cpu`, `wgpu` or `cuda`.
    #[serde(default = "auto")]
    pub backend: String,
    /// Warm-up images per configuration, excluded from timings.
    #[serde(default = "one_usize")]
    pub warmup: usize,
    /// `auto` (the host engine on the CPU, burn on a GPU), `host` or `burn`.
    #[serde(default = "auto")]
    pub engine: String,
    /// GPU index for `cuda` and `tch-cuda` (`--device N`); 0 by default.
    #[serde(default)]
    pub device: usize,
    /// Pilot images per tree of the `tree = "auto"` cost model (after one warm-up each).
    #[serde(default = "two_usize")]
    pub pilot_images: usize,
}

fn auto() -> String {
    "auto".into()
}
fn one_usize() -> usize {
    1
}
fn two_usize() -> usize {
    2
}

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            backend: auto(),
            warmup: 1,
            engine: auto(),
            device: 0,
            pilot_images: 2,
        }
    }
}

/// `[timing]`: how latencies are taken.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingSection {
    /// Timed generations per image, ≥ 1: the image is generated `repeats` times from the same
    /// random stream (same tokens) and every latency is recorded.
    #[serde(default = "one_usize")]
    pub repeats: usize,
    /// Re-timings of an image the quietness rule finds disturbed, 0–10 (0: flag, never re-time).
    #[serde(default = "three_usize")]
    pub retimes: usize,
}

fn three_usize() -> usize {
    3
}

impl Default for TimingSection {
    fn default() -> Self {
        Self {
            repeats: 1,
            retimes: 3,
        }
    }
}

/// `[quality]`: which quality metrics the sweep computes after generating.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySection {
    /// Compute quality at all (needs a VQ tokenizer to decode images).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Reference set: a JSON file of real images' tokens (`{"grid", "labels", "tokens"}`); the
    /// `tiny` preset ships `checkpoints/tiny/reference.json`.
    pub reference: Option<PathBuf>,
    /// Neighbours of the precision/recall radii, ≥ 1.
    #[serde(default = "three")]
    pub k: i64,
    /// Feature extractor of the Fréchet distance and class score (and of precision/recall unless
    /// `pr_extractor` is given): `efficientnet-lite0` (ImageNet-pretrained, shipped),
    /// `vq-encoder` (the tokenizer's own encoder statistics), `inception-v3-fid` (FID's network;
    /// needs `extractor_weights` = `pt_inception-2015-12-05-6726825d.pth`), `clip` (image
    /// embeddings of a CLIP ViT state dict given by `extractor_weights`) or `vgg16` (fc2 of
    /// torchvision's `vgg16-397923af.pth`).
    #[serde(default = "effnet")]
    pub extractor: String,
    /// Weights of the `inception-v3-fid`, `clip` or `vgg16` extractor (relative to the sweep file
    /// or the working directory).
    pub extractor_weights: Option<PathBuf>,
    /// Feature extractor of precision/recall when it is not `extractor` (LANTERN's protocol:
    /// `vgg16`, with FID from `inception-v3-fid`); the same names.
    pub pr_extractor: Option<String>,
    /// Weights of `pr_extractor`.
    pub pr_extractor_weights: Option<PathBuf>,
    /// MLP activation of the `clip` extractor: `quick-gelu` (OpenAI weights) or `gelu` (most
    /// LAION open_clip weights).
    #[serde(default = "quick_gelu")]
    pub clip_activation: String,
    /// CLIP ViT state dict for the CLIP score of text-conditional sweeps (each image against
    /// "A photo depicts " + its caption).
    pub clip_weights: Option<PathBuf>,
    /// HPSv2 weights (`HPS_v2.1_compressed.pt`) for the HPSv2 score of text-conditional sweeps
    /// (each image against its caption).
    pub hps_weights: Option<PathBuf>,
    /// How `inception-v3-fid` brings images to 299: `clean` (clean-fid's: 8-bit pixels, Pillow
    /// bicubic with antialiasing; the LANTERN paper's FIDs) or `pytorch-fid` (bilinear).
    #[serde(default = "clean")]
    pub inception_resize: String,
}

/// Extractors `[quality] extractor` and `pr_extractor` accept.
pub const EXTRACTORS: [&str; 5] = [
    "efficientnet-lite0",
    "vq-encoder",
    "inception-v3-fid",
    "clip",
    "vgg16",
];

/// Extractors that load from a user's weights file.
pub const NEEDS_WEIGHTS: [&str; 3] = ["inception-v3-fid", "clip", "vgg16"];

fn quick_gelu() -> String {
    "quick-gelu".into()
}

fn clean() -> String {
    "clean".into()
}

fn effnet() -> String {
    "efficientnet-lite0".into()
}

fn yes() -> bool {
    true
}
fn three() -> i64 {
    3
}

impl Default for QualitySection {
    fn default() -> Self {
        Self {
            enabled: true,
            reference: None,
            k: 3,
            extractor: effnet(),
            extractor_weights: None,
            pr_extractor: None,
            pr_extractor_weights: None,
            clip_activation: quick_gelu(),
            clip_weights: None,
            hps_weights: None,
            inception_resize: clean(),
        }
    }
}

/// A parsed, validated sweep file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Sweep name (results go to `results/<name>/`); defaults to the file stem.
    pub name: Option<String>,
    /// The models.
    pub model: ModelSection,
    /// Sampling settings.
    #[serde(default)]
    pub sampling: SamplingSection,
    /// What to generate.
    pub data: DataSection,
    /// The strategies: each table is read by [`StrategySpec::parse`] after [`grid`] expands its
    /// lists.
    #[serde(default)]
    pub strategy: Vec<toml::Table>,
    /// How to run.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Quality metrics.
    #[serde(default)]
    pub quality: QualitySection,
    /// Timing protocol.
    #[serde(default)]
    pub timing: TimingSection,
    /// Where the file was read from (set by [`SweepConfig::load`]).
    #[serde(skip)]
    pub file: PathBuf,
    /// The `--set key=value` overrides applied over the file, in order.
    #[serde(skip)]
    pub overrides: Vec<String>,
}

impl SweepConfig {
    /// The engine and weight storage the sweep runs with (validated values).
    pub fn run_options(&self) -> lantern_models::RunOptions {
        lantern_models::RunOptions {
            engine: EngineKind::parse(&self.runtime.engine).expect("validated"),
            dtype: self.model.dtype.as_deref().map_or(WeightDtype::F32, |d| {
                WeightDtype::parse(d).expect("validated")
            }),
        }
    }

    /// Reads, parses and validates a sweep file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &[])
    }

    /// Reads a sweep file, applies `--set key=value` overrides over it and validates the result
    /// like the file itself.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        if overrides.is_empty() {
            return Self::parse(&text, path);
        }
        let parse_error = |message: String| ConfigError::Parse {
            file: path.to_path_buf(),
            message,
        };
        let mut doc: toml::Table =
            toml::from_str(&text).map_err(|e| parse_error(e.to_string().trim_end().into()))?;
        for o in overrides {
            overrides::apply(&mut doc, o)
                .map_err(|message| parse_error(format!("--set {o}: {message}")))?;
        }
        let mut cfg: Self = doc.try_into().map_err(|e: toml::de::Error| {
            parse_error(format!(
                "after --set {}: {}",
                overrides.join(" --set "),
                e.to_string().trim_end()
            ))
        })?;
        cfg.file = path.to_path_buf();
        cfg.overrides = overrides.to_vec();
        cfg.validate()?;
        Ok(cfg)
    }

    /// The same sweep on another backend (`--backend`), validated like the file's own key.
    pub fn with_backend(mut self, backend: &str) -> Result<Self, ConfigError> {
        self.runtime.backend = backend.to_string();
        self.validate()?;
        Ok(self)
    }

    /// Parses and validates TOML text that came from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.file = file.to_path_buf();
        cfg.validate()?;
        Ok(cfg)
    }

    /// The grid of strategy table `i` (`[[strategy]]` number i), each spec checked and resolved;
    /// errors name `strategy[i].key`.
    pub fn strategy_grid(&self, i: usize) -> Result<Vec<StrategySpec>, ConfigError> {
        grid::expand(&self.strategy[i]).map_err(|e| {
            let whole = e.key == "strategy";
            ConfigError::Invalid {
                file: self.file.clone(),
                key: if whole {
                    format!("strategy[{i}]")
                } else {
                    format!("strategy[{i}].{}", e.key)
                },
                value: if whole {
                    toml::Value::Table(self.strategy[i].clone()).to_string()
                } else {
                    e.value
                },
                allowed: e.allowed,
            }
        })
    }

    /// The sweep's name: `name`, else the file stem.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.file
                .file_stem()
                .map_or("sweep".into(), |s| s.to_string_lossy().into_owned())
        })
    }

    /// Resolves model file paths relative to the config file's folder, for explicit files.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() || p.exists() {
            p.to_path_buf()
        } else {
            self.file.parent().map_or(p.to_path_buf(), |d| d.join(p))
        }
    }
}
