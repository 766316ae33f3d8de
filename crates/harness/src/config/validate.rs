//! Validation of a parsed sweep: every range and cross-key rule of the sections the harness owns
//! (strategy tables are checked by `StrategySpec`, through [`super::grid`]).

use std::path::PathBuf;

use lantern_models::backend::EngineKind;
use lantern_models::chameleon::set::is_chameleon;
use lantern_models::cpu::WeightDtype;

use super::{ConfigError, SweepConfig, EXTRACTORS, FIXTURE_CHAMELEON, NEEDS_WEIGHTS};

/// Most re-timings `[timing] retimes` allows (each costs one more generation of the image).
const MAX_RETIMES: usize = 10;

impl SweepConfig {
    /// The error refusing `key = value`, naming this file and what is allowed.
    pub(crate) fn invalid(
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

    /// Checks every key of the sections the harness owns (the error names the file, key, value and
    /// what is allowed).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_name()?;
        self.validate_model()?;
        self.validate_sampling()?;
        self.validate_data()?;
        self.validate_runs()?;
        self.validate_quality()
    }

    /// `name`: a folder name.
    fn validate_name(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.name {
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(self.invalid(
                    "name",
                    format!("{name:?}"),
                    "a non-empty folder name without '/'",
                ));
            }
        }
        Ok(())
    }

    /// `[sampling]`: warp order, temperature rule and every grid value's range.
    fn validate_sampling(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// `[data]`: seeds, classes or prompts, prompt limit.
    fn validate_data(&self) -> Result<(), ConfigError> {
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
                        "an existing prompt set: a JSON manifest with \"captions\" and \"embeddings\" (LlamaGen t2i), or captions alone (a .txt file, one per line, or {\"captions\": [..]}) for a Chameleon-family target",
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
        Ok(())
    }

    /// `[[strategy]]` tables (through their grids), `[timing]`, `[runtime]` and `model.dtype`.
    fn validate_runs(&self) -> Result<(), ConfigError> {
        if self.strategy.is_empty() {
            return Err(self.invalid("strategy", "(none)", "at least one [[strategy]] table"));
        }
        for i in 0..self.strategy.len() {
            self.strategy_grid(i)?;
        }
        if self.timing.repeats < 1 {
            return Err(self.invalid(
                "timing.repeats",
                self.timing.repeats,
                "an integer ≥ 1 (timed generations per image)",
            ));
        }
        if self.timing.retimes > MAX_RETIMES {
            return Err(self.invalid(
                "timing.retimes",
                self.timing.retimes,
                &format!("an integer 0–{MAX_RETIMES} (re-timings of a disturbed image)"),
            ));
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
        Ok(())
    }

    /// `[quality]`: extractors and their weights, CLIP activation, resize, k, reference set.
    fn validate_quality(&self) -> Result<(), ConfigError> {
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
                let fixture = p == "fixture" || p == FIXTURE_CHAMELEON;
                if !fixture && !lantern_models::bundle::EMBEDDED.contains(&p.as_str()) {
                    return Err(self.invalid(
                        "model.preset",
                        p,
                        "tiny, tiny-peaked, fixture or fixture-chameleon (or give gpt = \"…\")",
                    ));
                }
            }
            (None, Some(gpt)) => {
                let chameleon = is_chameleon(&self.resolve_path(gpt));
                if m.gpt_config.is_none() && !chameleon {
                    return Err(self.invalid(
                        "model.gpt_config",
                        "(missing)",
                        "a preset (GPT-B, …) or a JSON file, required with model.gpt (a Chameleon-family folder carries its config.json)",
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
        self.validate_chameleon_keys()
    }

    /// `model.convention`, `model.grid` and `model.text_tokenizer`: well-formed, and only for a
    /// Chameleon-family target.
    fn validate_chameleon_keys(&self) -> Result<(), ConfigError> {
        let m = &self.model;
        let chameleon = m.preset.as_deref() == Some(FIXTURE_CHAMELEON)
            || m.gpt
                .as_ref()
                .is_some_and(|g| is_chameleon(&self.resolve_path(g)));
        let set: Vec<&str> = [
            ("model.convention", m.convention.is_some()),
            ("model.grid", m.grid.is_some()),
            ("model.text_tokenizer", m.text_tokenizer.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        if let (false, Some(&key)) = (chameleon, set.first()) {
            return Err(self.invalid(
                key,
                "(set)",
                "nothing for a LlamaGen target: it is read only for a Chameleon-family checkpoint folder or preset = \"fixture-chameleon\"",
            ));
        }
        if let Some(c) = &m.convention {
            if let Err(e) = lantern_models::chameleon::layout::Convention::parse(c) {
                return Err(self.invalid("model.convention", c, &e));
            }
        }
        if let Some(g) = &m.grid {
            if g.len() != 2 || g.iter().any(|&x| x < 1) {
                return Err(self.invalid(
                    "model.grid",
                    format!("{g:?}"),
                    "[rows, columns] of latent tokens, each ≥ 1 (Lumina-mGPT 768 px: [48, 48]; Anole: [32, 32])",
                ));
            }
        }
        if let Some(t) = &m.text_tokenizer {
            if !self.resolve_path(t).is_file() {
                return Err(self.invalid(
                    "model.text_tokenizer",
                    t.display(),
                    "an existing text_tokenizer.json (HF tokenizers format)",
                ));
            }
        }
        Ok(())
    }
}
