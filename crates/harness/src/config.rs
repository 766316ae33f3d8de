//! The sweep file: strict TOML parsing and validation.
//!
//! Any scalar under `[sampling]` and the numeric/tree keys of a `[[strategy]]` may be a list;
//! lists expand to a grid in [`crate::plan`]. Unknown keys, wrong types and out-of-range values
//! are refused before any work starts, naming the file, the key, the value and what is allowed.

use std::path::{Path, PathBuf};

use lantern_models::backend::EngineKind;
use lantern_models::cpu::WeightDtype;
use serde::Deserialize;

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

/// `[model]`: a preset or explicit files.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `tiny` (the embedded default) or `fixture` (the shared random-weight fixtures).
    pub preset: Option<String>,
    /// Target checkpoint.
    pub gpt: Option<PathBuf>,
    /// Target config: preset name (`GPT-B`, …) or a JSON file.
    pub gpt_config: Option<String>,
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

/// One `[[strategy]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySection {
    /// `ar`, `sd`, `lantern`, `lantern++`, `sjd`, `scd`, `gsd` or `zipar`.
    pub kind: String,
    /// Tree shape(s) (speculative kinds).
    pub tree: Option<OneOrMany<String>>,
    /// Neighbours per token (lantern, lantern++), ≥ 1.
    pub k: Option<OneOrMany<i64>>,
    /// TVD budget(s) δ in [0, 1] (lantern).
    pub delta: Option<OneOrMany<f64>>,
    /// Ratio bound(s) λ ≥ 1 (lantern++).
    pub lambda: Option<OneOrMany<f64>>,
    /// Window(s) (sjd, scd, gsd: drafts per round; zipar: columns before the next row opens), ≥ 1.
    pub window: Option<OneOrMany<i64>>,
    /// Jacobi initialisation(s) (sjd, scd, gsd): `horizontal` (default), `vertical`, `random`.
    pub init: Option<OneOrMany<String>>,
    /// SCD's coupling(s): `maximal` (default), `gumbel`.
    pub coupling: Option<OneOrMany<String>>,
    /// GSD's rank half-window G ≥ 0 (default 7).
    pub group: Option<i64>,
    /// GSD's probability-gap threshold in (0, 1] (default 0.15).
    pub p_thr: Option<f64>,
    /// GSD's absolute squared embedding-distance threshold > 0 (overrides `d_quantile`).
    pub d_thr: Option<f64>,
    /// GSD's distance threshold(s) as quantiles of pair distances in [0, 1] (default 0.1; 1 = off).
    pub d_quantile: Option<OneOrMany<f64>>,
    /// Use the official code's residual quirks (speculative kinds).
    pub official_compat: Option<bool>,
    /// LANTERN's acceptance rule: `lantern` (the paper's, default) or `bounded` (emitted TVD ≤ δ).
    pub relax: Option<String>,
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
            pilot_images: 2,
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
    /// The strategies.
    #[serde(default)]
    pub strategy: Vec<StrategySection>,
    /// How to run.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Quality metrics.
    #[serde(default)]
    pub quality: QualitySection,
    /// Where the file was read from (set by [`SweepConfig::load`]).
    #[serde(skip)]
    pub file: PathBuf,
}

/// The keys each strategy kind accepts besides `kind`.
fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "ar" => &[],
        "sd" => &["tree", "official_compat"],
        "lantern" => &["tree", "k", "delta", "official_compat", "relax"],
        "lantern++" => &["tree", "k", "lambda", "official_compat"],
        "sjd" => &["window", "init"],
        "scd" => &["window", "init", "coupling"],
        "gsd" => &["window", "init", "group", "p_thr", "d_thr", "d_quantile"],
        "zipar" => &["window"],
        _ => return None,
    })
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
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
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

    /// The sweep's name: `name`, else the file stem.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.file
                .file_stem()
                .map_or("sweep".into(), |s| s.to_string_lossy().into_owned())
        })
    }

    fn invalid(
        &self,
        key: impl Into<String>,
        value: impl std::fmt::Display,
        allowed: &str,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            key: key.into(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.name {
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(self.invalid(
                    "name",
                    format!("{name:?}"),
                    "a non-empty folder name without '/'",
                ));
            }
        }
        self.validate_model()?;
        let s = &self.sampling;
        if let Some(o) = &self.sampling.order {
            if let Err(allowed) = lantern_decoding::sampling::WarpOrder::parse(o) {
                return Err(self.invalid("sampling.order", format!("{o:?}"), &allowed));
            }
        }
        for r in self
            .sampling
            .temperature_rule
            .iter()
            .flat_map(|v| v.values())
        {
            if let Err(allowed) = lantern_decoding::sampling::TemperatureRule::parse(&r) {
                return Err(self.invalid("sampling.temperature_rule", format!("{r:?}"), &allowed));
            }
        }
        for t in s.temperature.values() {
            if !(t >= 0.0 && t.is_finite()) {
                return Err(self.invalid("sampling.temperature", t, "a number ≥ 0 (0 = greedy)"));
            }
        }
        for k in s.top_k.values() {
            if k < 0 {
                return Err(self.invalid("sampling.top_k", k, "an integer ≥ 0 (0 = off)"));
            }
        }
        for p in s.top_p.values() {
            if !(p > 0.0 && p <= 1.0) {
                return Err(self.invalid("sampling.top_p", p, "a number in (0, 1] (1 = off)"));
            }
        }
        for c in s.cfg.values() {
            if !(c >= 0.0 && c.is_finite()) {
                return Err(self.invalid("sampling.cfg", c, "a number ≥ 0 (≤ 1 = no guidance)"));
            }
        }
        if let Some(i) = s.cfg_interval {
            if i < -1 {
                return Err(self.invalid(
                    "sampling.cfg_interval",
                    i,
                    "-1 (always guide) or an integer ≥ 0",
                ));
            }
        }
        let d = &self.data;
        if d.seeds < 1 {
            return Err(self.invalid(
                "data.seeds",
                d.seeds,
                "an integer ≥ 1 (images per condition)",
            ));
        }
        match (&d.classes, &d.prompts) {
            (None, None) => {
                return Err(self.invalid(
                    "data",
                    "{}",
                    "`classes = [..]` (c2i) or `prompts = \"file\"` (t2i)",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "data",
                    "classes and prompts",
                    "one of `classes` or `prompts`",
                ))
            }
            (Some(c), None) => {
                if c.is_empty() {
                    return Err(self.invalid(
                        "data.classes",
                        "[]",
                        "a non-empty list of class labels",
                    ));
                }
                if let Some(bad) = c.iter().find(|&&c| c < 0) {
                    return Err(self.invalid("data.classes", bad, "class labels ≥ 0"));
                }
            }
            (None, Some(p)) => {
                if !self.resolve_path(p).is_file() {
                    return Err(self.invalid(
                        "data.prompts",
                        p.display(),
                        "an existing prompt-set manifest (JSON with \"captions\" and \"embeddings\")",
                    ));
                }
            }
        }
        match d.prompt_limit {
            Some(_) if d.prompts.is_none() => {
                return Err(self.invalid(
                    "data.prompt_limit",
                    d.prompt_limit.unwrap_or_default(),
                    "nothing without `prompts`",
                ))
            }
            Some(l) if l < 1 => {
                return Err(self.invalid("data.prompt_limit", l, "an integer ≥ 1"));
            }
            _ => {}
        }
        if self.strategy.is_empty() {
            return Err(self.invalid("strategy", "(none)", "at least one [[strategy]] table"));
        }
        for (i, st) in self.strategy.iter().enumerate() {
            self.validate_strategy(i, st)?;
        }
        let backends = ["auto", "cpu", "flex", "wgpu", "cuda", "tch-cpu", "tch-cuda"];
        if !backends.contains(&self.runtime.backend.as_str()) {
            return Err(self.invalid(
                "runtime.backend",
                &self.runtime.backend,
                "auto, cpu, wgpu, cuda, tch-cpu or tch-cuda",
            ));
        }
        if self.runtime.pilot_images == 0 {
            return Err(self.invalid(
                "runtime.pilot_images",
                0,
                "an integer ≥ 1 (pilot images per tree of the auto cost model)",
            ));
        }
        if let Err(allowed) = EngineKind::parse(&self.runtime.engine) {
            return Err(self.invalid("runtime.engine", &self.runtime.engine, &allowed));
        }
        if let Some(d) = &self.model.dtype {
            if let Err(allowed) = WeightDtype::parse(d) {
                return Err(self.invalid("model.dtype", d, &allowed));
            }
        }
        let q = &self.quality;
        self.validate_extractor("quality.extractor", &q.extractor, &q.extractor_weights)?;
        match (&q.pr_extractor, &q.pr_extractor_weights) {
            (Some(x), w) => self.validate_extractor("quality.pr_extractor", x, w)?,
            (None, Some(w)) => {
                return Err(self.invalid(
                    "quality.pr_extractor_weights",
                    w.display(),
                    "nothing without `pr_extractor`",
                ))
            }
            (None, None) => {}
        }
        if !["quick-gelu", "gelu"].contains(&q.clip_activation.as_str()) {
            return Err(self.invalid(
                "quality.clip_activation",
                &q.clip_activation,
                "quick-gelu or gelu",
            ));
        }
        for (key, weights, what) in [
            (
                "quality.clip_weights",
                &q.clip_weights,
                "CLIP ViT state dict",
            ),
            ("quality.hps_weights", &q.hps_weights, "HPSv2 checkpoint"),
        ] {
            let Some(w) = weights else { continue };
            if self.data.prompts.is_none() {
                return Err(self.invalid(
                    key,
                    w.display(),
                    "nothing without `data.prompts`: the score needs captions",
                ));
            }
            if !self.resolve_path(w).is_file() {
                return Err(self.invalid(
                    key,
                    w.display(),
                    &format!(
                        "an existing {what} (relative to the sweep file or the working directory)"
                    ),
                ));
            }
        }
        if !["clean", "pytorch-fid"].contains(&q.inception_resize.as_str()) {
            return Err(self.invalid(
                "quality.inception_resize",
                &q.inception_resize,
                "clean or pytorch-fid",
            ));
        }
        if self.quality.k < 1 {
            return Err(self.invalid("quality.k", self.quality.k.to_string(), "an integer ≥ 1"));
        }
        if let Some(r) = &self.quality.reference {
            if !self.resolve_path(r).is_file() {
                return Err(self.invalid(
                    "quality.reference",
                    r.display().to_string(),
                    "an existing reference-tokens JSON file (relative to the sweep file or the working directory)",
                ));
            }
        }
        Ok(())
    }

    /// `key` names a known extractor, with a weights file exactly when it needs one.
    fn validate_extractor(
        &self,
        key: &str,
        name: &str,
        weights: &Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        if !EXTRACTORS.contains(&name) {
            return Err(self.invalid(key, name, &EXTRACTORS.join(", ")));
        }
        let weights_key = format!("{key}_weights");
        match (weights, NEEDS_WEIGHTS.contains(&name)) {
            (None, true) => Err(self.invalid(
                &weights_key,
                "(none)",
                &format!("the path of the {name} weights (they cannot be downloaded here)"),
            )),
            (Some(w), false) => Err(self.invalid(
                &weights_key,
                w.display().to_string(),
                &format!("nothing: {name} does not take a weights file"),
            )),
            (Some(w), true) if !self.resolve_path(w).is_file() => Err(self.invalid(
                &weights_key,
                w.display().to_string(),
                "an existing file (relative to the sweep file or the working directory)",
            )),
            _ => Ok(()),
        }
    }

    fn validate_model(&self) -> Result<(), ConfigError> {
        let m = &self.model;
        match (&m.preset, &m.gpt) {
            (Some(p), None) => {
                if !["tiny", "fixture"].contains(&p.as_str()) {
                    return Err(self.invalid(
                        "model.preset",
                        p,
                        "tiny or fixture (or give gpt = \"…\")",
                    ));
                }
            }
            (None, Some(_)) => {
                if m.gpt_config.is_none() {
                    return Err(self.invalid(
                        "model.gpt_config",
                        "(missing)",
                        "a preset (GPT-B, …) or a JSON file, required with model.gpt",
                    ));
                }
            }
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "model",
                    "preset and gpt",
                    "either `preset` or explicit files",
                ))
            }
            (None, None) => {
                return Err(self.invalid(
                    "model",
                    "{}",
                    "`preset = \"tiny\"` or `gpt = \"…\"` with `gpt_config`",
                ))
            }
        }
        Ok(())
    }

    fn validate_strategy(&self, i: usize, st: &StrategySection) -> Result<(), ConfigError> {
        let key = |k: &str| format!("strategy[{i}].{k}");
        let allowed = kind_keys(&st.kind).ok_or_else(|| {
            self.invalid(
                key("kind"),
                format!("{:?}", st.kind),
                "ar, sd, lantern, lantern++, sjd, scd, gsd or zipar",
            )
        })?;
        let present = [
            ("tree", st.tree.is_some()),
            ("k", st.k.is_some()),
            ("delta", st.delta.is_some()),
            ("lambda", st.lambda.is_some()),
            ("window", st.window.is_some()),
            ("official_compat", st.official_compat.is_some()),
            ("relax", st.relax.is_some()),
            ("init", st.init.is_some()),
            ("coupling", st.coupling.is_some()),
            ("group", st.group.is_some()),
            ("p_thr", st.p_thr.is_some()),
            ("d_thr", st.d_thr.is_some()),
            ("d_quantile", st.d_quantile.is_some()),
        ];
        for (k, set) in present {
            if set && !allowed.contains(&k) {
                let ok = if allowed.is_empty() {
                    "no other keys".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(self.invalid(
                    key(k),
                    "(given)",
                    &format!(
                        "this key does not apply to kind '{}'; it takes: {ok}",
                        st.kind
                    ),
                ));
            }
        }
        for k in st.k.iter().flat_map(|v| v.values()) {
            if k < 1 {
                return Err(self.invalid(key("k"), k, "an integer ≥ 1"));
            }
        }
        for d in st.delta.iter().flat_map(|v| v.values()) {
            if !(0.0..=1.0).contains(&d) {
                return Err(self.invalid(key("delta"), d, "a number in [0, 1]"));
            }
        }
        for l in st.lambda.iter().flat_map(|v| v.values()) {
            if !(l >= 1.0 && l.is_finite()) {
                return Err(self.invalid(key("lambda"), l, "a number ≥ 1"));
            }
        }
        for w in st.window.iter().flat_map(|v| v.values()) {
            if w < 1 {
                return Err(self.invalid(key("window"), w, "an integer ≥ 1"));
            }
        }
        for i in st.init.iter().flat_map(|v| v.values()) {
            lantern_decoding::strategy::JacobiInit::parse(&i)
                .map_err(|e| self.invalid(key("init"), format!("{i:?}"), &e))?;
        }
        for c in st.coupling.iter().flat_map(|v| v.values()) {
            lantern_decoding::strategy::Coupling::parse(&c)
                .map_err(|e| self.invalid(key("coupling"), format!("{c:?}"), &e))?;
        }
        if let Some(g) = st.group {
            if g < 0 {
                return Err(self.invalid(key("group"), g, "an integer ≥ 0"));
            }
        }
        if let Some(p) = st.p_thr {
            if !(p > 0.0 && p <= 1.0) {
                return Err(self.invalid(key("p_thr"), p, "a number in (0, 1]"));
            }
        }
        if let Some(d) = st.d_thr {
            if d.is_nan() || d <= 0.0 {
                return Err(self.invalid(key("d_thr"), d, "a number > 0 (or +inf: no filter)"));
            }
            if st.d_quantile.is_some() {
                return Err(self.invalid(
                    key("d_thr"),
                    d,
                    "either d_thr (absolute) or d_quantile (calibrated), not both",
                ));
            }
        }
        for q in st.d_quantile.iter().flat_map(|v| v.values()) {
            if !(0.0..=1.0).contains(&q) {
                return Err(self.invalid(
                    key("d_quantile"),
                    q,
                    "a number in [0, 1] (1 = no filter)",
                ));
            }
        }
        match st.relax.as_deref() {
            None | Some("lantern") => {}
            Some("bounded") if st.official_compat == Some(true) => return Err(self.invalid(
                key("official_compat"),
                "true",
                "false with relax = \"bounded\" (the official quirks belong to LANTERN's own rule)",
            )),
            Some("bounded") => {}
            Some(other) => {
                return Err(self.invalid(key("relax"), format!("{other:?}"), "lantern or bounded"))
            }
        }
        for t in st.tree.iter().flat_map(|v| v.values()) {
            if t != "auto" {
                lantern_decoding::strategy::TreeShape::parse(&t)
                    .map_err(|e| self.invalid(key("tree"), format!("{t:?}"), &e))?;
            }
        }
        Ok(())
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
