//! What a sweep needs before its first image: model files and their identity, the conditions,
//! the quality extractors and reference set, and the code's commit.

use std::path::{Path, PathBuf};

use lantern_decoding::model::ImageCondition;
use lantern_metrics::{FeatureExtractor, ReferenceTokens, VqEncoderExtractor};
use lantern_models::chameleon::set::{is_chameleon, FROM_TARGET};
use lantern_models::config::ModelType;
use lantern_models::{GptConfig, ModelPaths};

use super::HarnessError;
use crate::config::{ConfigError, SweepConfig};
use crate::extractors::{load_pretrained, ExtractorSpec};
use crate::prompts::PromptSet;

/// The model files a sweep names.
pub fn model_paths(cfg: &SweepConfig) -> Result<ModelPaths, ConfigError> {
    let m = &cfg.model;
    let invalid = |key: &str, value: String, allowed: &str| ConfigError::Invalid {
        file: cfg.file.clone(),
        key: key.into(),
        value,
        allowed: allowed.into(),
    };
    let paths = match m.preset.as_deref() {
        Some(crate::config::FIXTURE_CHAMELEON) => {
            let dir = lantern_models::fixtures::chameleon_tiny();
            ModelPaths {
                gpt: dir.clone(),
                gpt_config: dir.join("config.json").display().to_string(),
                vq: Some(dir.join("vqgan.safetensors")),
                vq_config: Some(dir.join("vqgan.json").display().to_string()),
                drafter: Some(m.drafter.clone().unwrap_or_else(|| FROM_TARGET.into())),
                drafter_config: None,
            }
        }
        Some("fixture") => {
            let dir = lantern_models::fixtures::llamagen_tiny();
            let mut p = ModelPaths::fixture(&dir);
            if let Some(d) = &m.drafter {
                p.drafter = Some(d.clone());
            }
            p
        }
        Some(name) if lantern_models::bundle::EMBEDDED.contains(&name) => {
            let dir = lantern_models::bundle::embedded_dir(name);
            if !dir.join("gpt.safetensors").is_file() {
                return Err(invalid(
                    "model.preset",
                    format!("\"{name}\""),
                    &format!(
                        "an embedded model set that is present ({} has no gpt.safetensors; rebuild it with `just train-tiny`); use preset = \"fixture\" or give explicit files",
                        dir.display()
                    ),
                ));
            }
            ModelPaths::tiny(&dir)
        }
        _ => ModelPaths {
            gpt: cfg.resolve_path(m.gpt.as_ref().expect("validated")),
            gpt_config: match m.gpt_config.as_deref() {
                Some(c) => resolve_source(cfg, c),
                // A Chameleon-family folder (validated) carries its config.
                None => cfg
                    .resolve_path(m.gpt.as_ref().expect("validated"))
                    .join("config.json")
                    .display()
                    .to_string(),
            },
            vq: m.vq.as_ref().map(|p| cfg.resolve_path(p)),
            vq_config: m.vq_config.as_deref().map(|s| resolve_source(cfg, s)),
            drafter: m.drafter.as_deref().map(|d| {
                if d == "random" || d == FROM_TARGET {
                    d.to_string()
                } else {
                    cfg.resolve_path(Path::new(d)).display().to_string()
                }
            }),
            drafter_config: m.drafter_config.as_ref().map(|p| cfg.resolve_path(p)),
        },
    };
    check_files(&paths, &invalid)?;
    Ok(paths)
}

/// Refuses model files that are not there, and a drafter of the other family.
fn check_files(
    paths: &ModelPaths,
    invalid: &dyn Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    let chameleon = is_chameleon(&paths.gpt);
    let drafter = paths.drafter.as_deref();
    match drafter {
        Some("random") if chameleon => {
            return Err(invalid(
                "model.drafter",
                "\"random\"".into(),
                "LANTERN's drafter folder for this Chameleon-family target, or \"from-target\" (a stand-in built from its layer 0)",
            ))
        }
        Some(FROM_TARGET) if !chameleon => {
            return Err(invalid(
                "model.drafter",
                format!("\"{FROM_TARGET}\""),
                "a drafter checkpoint, or \"random\" (from-target is for Chameleon-family targets)",
            ))
        }
        _ => {}
    }
    let file = "an existing checkpoint file (.pt or .safetensors)";
    let missing =
        |key: &str, f: &Path, allowed: &str| Err(invalid(key, f.display().to_string(), allowed));
    if let Some(v) = paths.vq.as_deref().filter(|v| !v.is_file()) {
        return missing("model.vq", v, file);
    }
    let trained = drafter
        .filter(|d| *d != "random" && *d != FROM_TARGET)
        .map(PathBuf::from);
    if chameleon {
        if let Some(d) = trained.filter(|d| !d.join("config.json").is_file()) {
            return missing(
                "model.drafter",
                &d,
                "LANTERN's drafter folder (config.json with pytorch_model.bin or model.safetensors)",
            );
        }
        return Ok(());
    }
    if !paths.gpt.is_file() {
        return missing("model.gpt", &paths.gpt, file);
    }
    if let Some(d) = trained.filter(|d| !d.is_file()) {
        return missing("model.drafter", &d, file);
    }
    Ok(())
}

/// A config source that is a JSON path is resolved against the config file; presets pass through.
fn resolve_source(cfg: &SweepConfig, s: &str) -> String {
    if s.ends_with(".json") {
        cfg.resolve_path(Path::new(s)).display().to_string()
    } else {
        s.to_string()
    }
}

/// A short, content-sensitive identity of the model files (name, size, FNV of the first and last
/// 64 KiB), so that replaced weights get new run ids.
pub fn model_identity(paths: &ModelPaths) -> String {
    let mut parts = vec![fingerprint(&paths.gpt), paths.gpt_config.clone()];
    if let Some(v) = &paths.vq {
        parts.push(fingerprint(v));
    }
    match paths.drafter.as_deref() {
        Some(d @ ("random" | FROM_TARGET)) => parts.push(format!("drafter:{d}")),
        Some(d) => parts.push(fingerprint(Path::new(d))),
        None => {}
    }
    parts.join("|")
}

/// The fingerprint of a checkpoint file, or of a checkpoint folder's `config.json` and weights
/// (its safetensors shards, else LANTERN's `pytorch_model.bin`); READMEs and scripts beside them
/// do not enter.
fn fingerprint(path: &Path) -> String {
    let fp = lantern_models::checkpoint::file_fingerprint;
    if !path.is_dir() {
        return fp(path);
    }
    let weights = lantern_models::chameleon::load::weight_files(path)
        .unwrap_or_else(|_| vec![path.join("pytorch_model.bin")]);
    std::iter::once(path.join("config.json"))
        .chain(weights)
        .filter(|f| f.is_file())
        .map(|f| fp(&f))
        .collect::<Vec<_>>()
        .join("+")
}

/// The model half of every run id of a sweep: the files' identity, the weight storage when not
/// f32 (other weights sample other tokens) and the prompt set (records of a changed prompt set
/// are not the same runs).
pub fn sweep_identity(
    cfg: &SweepConfig,
    paths: &ModelPaths,
    prompts: Option<&PromptSet>,
) -> String {
    let mut identity = model_identity(paths);
    let dtype = cfg.run_options().dtype;
    if dtype != lantern_models::cpu::WeightDtype::F32 {
        identity.push_str(&format!("|dtype:{}", dtype.name()));
    }
    if let Some(p) = prompts {
        identity.push_str(&format!("|prompts:{}", p.identity()));
    }
    identity
}

/// The git commit of the working tree (`+dirty` with uncommitted changes outside `results/`), or
/// `unknown`.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            // Regenerated results are not code: only changes outside results/ and the reference
            // results (experiments/results/) make a run dirty.
            let dirty = run(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)results",
                ":(exclude)experiments/results",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}+dirty")
            } else {
                c
            }
        }
        None => "unknown".into(),
    }
}

/// A description of the device (see [`lantern_models::backend::device_description`]).
pub fn device_description(backend: &str) -> String {
    lantern_models::backend::device_description(backend)
}

/// One condition of the sweep: what to generate and how records name it.
pub(crate) struct Cond {
    pub cond: ImageCondition,
    pub class: Option<u32>,
    pub prompt: Option<u32>,
}

/// The sweep's conditions: its classes (c2i), or the prompts of its prompt set (t2i), checked
/// against the target; the prompt set comes back for the CLIP score.
pub(super) fn conditions(
    cfg: &SweepConfig,
    gpt: &GptConfig,
) -> Result<(Vec<Cond>, Option<PromptSet>), HarnessError> {
    let invalid = |key: &str, value: String, allowed: String| -> HarnessError {
        ConfigError::Invalid {
            file: cfg.file.clone(),
            key: key.into(),
            value,
            allowed,
        }
        .into()
    };
    let t2i = gpt.model_type == ModelType::T2i;
    if let Some(classes) = &cfg.data.classes {
        if t2i {
            return Err(invalid(
                "data.classes",
                format!("{classes:?}"),
                "prompts = \"manifest.json\": the target is text-conditional".into(),
            ));
        }
        let num_classes = gpt.num_classes;
        if let Some(&bad) = classes.iter().find(|&&c| c as usize >= num_classes) {
            return Err(invalid(
                "data.classes",
                bad.to_string(),
                format!(
                    "class labels 0..{} (this model has {num_classes} classes)",
                    num_classes - 1
                ),
            ));
        }
        let conds = classes
            .iter()
            .map(|&c| Cond {
                cond: ImageCondition::Class(c as usize),
                class: Some(c as u32),
                prompt: None,
            })
            .collect();
        return Ok((conds, None));
    }
    let manifest = cfg.resolve_path(cfg.data.prompts.as_ref().expect("validated"));
    let shown = manifest.display().to_string();
    if !t2i {
        return Err(invalid(
            "data.prompts",
            shown,
            "classes = [..]: the target is class-conditional".into(),
        ));
    }
    let prompts =
        PromptSet::load(&manifest).map_err(|e| invalid("data.prompts", shown.clone(), e))?;
    if (prompts.tokens, prompts.dim) != (gpt.cls_token_num, gpt.caption_dim) {
        return Err(invalid(
            "data.prompts",
            shown,
            format!(
                "embeddings of {} tokens × {} (the target's cls_token_num × caption_dim); the file has {} × {}",
                gpt.cls_token_num, gpt.caption_dim, prompts.tokens, prompts.dim
            ),
        ));
    }
    let n = cfg
        .data
        .prompt_limit
        .map_or(prompts.len(), |l| (l as usize).min(prompts.len()));
    let conds = (0..n)
        .map(|i| Cond {
            cond: prompts.condition(i),
            class: None,
            prompt: Some(i as u32),
        })
        .collect();
    Ok((conds, Some(prompts)))
}

/// The `[quality] extractor` or `pr_extractor` (`key`) named `name` with its `weights`, loaded (a
/// weights file that does not load is a config error naming `key` or its `_weights`).
pub(super) fn quality_extractor(
    cfg: &SweepConfig,
    paths: &ModelPaths,
    vq: &lantern_models::VqModel,
    device: &lantern_models::burn::prelude::Device,
    (key, name, weights): (&str, &str, &Option<PathBuf>),
) -> Result<Box<dyn FeatureExtractor>, HarnessError> {
    let q = &cfg.quality;
    if name == "vq-encoder" {
        let label = if let Some(name) = embedded_preset(cfg) {
            name.to_string()
        } else {
            paths
                .vq
                .as_ref()
                .and_then(|p| p.file_stem())
                .map_or("vq".into(), |s| s.to_string_lossy().into_owned())
        };
        return Ok(Box::new(VqEncoderExtractor::new(vq.clone(), &label)));
    }
    let weights = weights.as_ref().map(|w| cfg.resolve_path(w));
    let spec = ExtractorSpec {
        name,
        weights: weights.as_deref(),
        clip_activation: &q.clip_activation,
        inception_resize: &q.inception_resize,
    };
    load_pretrained(&spec, device).map_err(|e| {
        let (key, value) = match &weights {
            Some(w) => (format!("quality.{key}_weights"), w.display().to_string()),
            None => (format!("quality.{key}"), name.to_string()),
        };
        ConfigError::Invalid {
            file: cfg.file.clone(),
            key,
            value,
            allowed: format!("weights that load as {name}: {e}"),
        }
        .into()
    })
}

/// The embedded model set the sweep's `model.preset` names, if it names one.
fn embedded_preset(cfg: &SweepConfig) -> Option<&str> {
    cfg.model
        .preset
        .as_deref()
        .filter(|p| lantern_models::bundle::EMBEDDED.contains(p))
}

/// The reference set of a sweep: `[quality] reference`, else the one the `tiny` preset ships.
pub(super) fn quality_reference(
    cfg: &SweepConfig,
    codebook: usize,
) -> Result<Option<ReferenceTokens>, HarnessError> {
    let path = match (&cfg.quality.reference, cfg.model.preset.as_deref()) {
        (Some(p), _) => Some(cfg.resolve_path(p)),
        (None, Some(name)) if lantern_models::bundle::EMBEDDED.contains(&name) => {
            Some(lantern_models::bundle::embedded_dir(name).join("reference.json"))
                .filter(|p| p.is_file())
        }
        _ => None,
    };
    path.map(|p| {
        let invalid = |allowed: String| {
            HarnessError::from(ConfigError::Invalid {
                file: cfg.file.clone(),
                key: "quality.reference".into(),
                value: p.display().to_string(),
                allowed,
            })
        };
        let r = ReferenceTokens::load(&p).map_err(|e| invalid(e.to_string()))?;
        if let Some(t) = r.tokens.iter().flatten().find(|&&t| t as usize >= codebook) {
            return Err(invalid(format!(
                "token {t} is outside the tokenizer's codebook of {codebook}: the reference was made with another tokenizer"
            )));
        }
        Ok(r)
    })
    .transpose()
}

/// What the quality pass measures with: the reference set, the extractor and the
/// precision/recall extractor when it differs.
pub(super) type QualitySetup = (
    Option<ReferenceTokens>,
    Box<dyn FeatureExtractor>,
    Option<Box<dyn FeatureExtractor>>,
);

/// The quality inputs, loaded and checked before anything is generated (`None` when quality is
/// off or there is no tokenizer to decode images).
pub(super) fn quality_setup(
    cfg: &SweepConfig,
    paths: &ModelPaths,
    vq: Option<&lantern_models::VqModel>,
    device: &lantern_models::burn::prelude::Device,
) -> Result<Option<QualitySetup>, HarnessError> {
    let (true, Some(vq)) = (cfg.quality.enabled, vq) else {
        return Ok(None);
    };
    let reference = quality_reference(cfg, vq.config().codebook_size)?;
    let q = &cfg.quality;
    let load = |key: &str, name: &str, weights: &Option<PathBuf>| {
        quality_extractor(cfg, paths, vq, device, (key, name, weights))
    };
    let extractor = load("extractor", &q.extractor, &q.extractor_weights)?;
    let pr_extractor = match &q.pr_extractor {
        Some(x) => Some(load("pr_extractor", x, &q.pr_extractor_weights)?),
        None => None,
    };
    Ok(Some((reference, extractor, pr_extractor)))
}

/// The CLIP (`clip_weights`) or HPSv2 (`hps_weights`, `hps`) scorer of a text-conditional sweep,
/// loaded and checked; `None` when the key is absent.
pub(super) fn text_scorer(
    cfg: &SweepConfig,
    quality: &Option<QualitySetup>,
    device: &lantern_models::burn::prelude::Device,
    key: &str,
    hps: bool,
) -> Result<Option<lantern_metrics::clip::ClipScorer>, ConfigError> {
    let weights = if hps {
        &cfg.quality.hps_weights
    } else {
        &cfg.quality.clip_weights
    };
    let Some(w) = weights else {
        return Ok(None);
    };
    let w = cfg.resolve_path(w);
    let invalid = |allowed: String| ConfigError::Invalid {
        file: cfg.file.clone(),
        key: format!("quality.{key}"),
        value: w.display().to_string(),
        allowed,
    };
    if quality.is_none() {
        return Err(invalid(
            "a sweep whose images are decoded: a VQ tokenizer and `[quality] enabled = true`"
                .into(),
        ));
    }
    let loaded = if hps {
        crate::extractors::load_hps(&w, device)
    } else {
        crate::extractors::load_clip(&w, &cfg.quality.clip_activation, device)
    };
    loaded
        .and_then(|c| c.check_vocabulary().map(|_| c).map_err(|e| e.to_string()))
        .map(Some)
        .map_err(|e| invalid(format!("a checkpoint that loads: {e}")))
}
