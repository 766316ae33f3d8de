//! The target family of a sweep, read from its checkpoint's config at plan time (no weights are
//! loaded): LlamaGen (its GPT config) or the Chameleon family (Lumina-mGPT, Anole: the
//! convention and image layout), and the conditions of a Chameleon-family sweep (its captions,
//! tokenised into prompts).

use lantern_decoding::model::ImageCondition;
use lantern_models::chameleon::layout::{Convention, ImageLayout};
use lantern_models::chameleon::set::{convention_of, is_chameleon};
use lantern_models::{ChameleonConfig, GptConfig, ModelPaths};

use super::setup::Cond;
use super::HarnessError;
use crate::captions::{default_tokenizer, prompt_text, read_captions, TextTokenizer};
use crate::config::{SweepConfig, FIXTURE_CHAMELEON};
use crate::plan::SweepPlan;
use crate::prompts::PromptSet;

/// What kind of target a sweep runs.
pub enum Family {
    /// A LlamaGen GPT (c2i or t2i).
    LlamaGen(GptConfig),
    /// A Chameleon-family target and how its images are written.
    Chameleon(ImageLayout),
}

impl Family {
    /// The family of the checkpoint `paths` names: a folder whose `config.json` says
    /// `model_type = "chameleon"` is a Chameleon-family target (its convention from
    /// `model.convention`, else from the config); anything else is LlamaGen.
    pub fn read(cfg: &SweepConfig, paths: &ModelPaths) -> Result<Self, HarnessError> {
        if !is_chameleon(&paths.gpt) {
            let gpt = lantern_models::bundle::gpt_config(&paths.gpt_config)?;
            return Ok(Self::LlamaGen(gpt));
        }
        let (_, vocab) = ChameleonConfig::from_json_file(&paths.gpt.join("config.json"))?;
        let convention = match &cfg.model.convention {
            Some(c) => Convention::parse(c).expect("validated"),
            None => convention_of(&paths.gpt),
        };
        let [h, w] = grid(cfg, paths, convention)?;
        Ok(Self::Chameleon(ImageLayout {
            convention,
            h,
            w,
            vocab,
        }))
    }
}

/// The latent grid: `model.grid`; for the fixture preset, its `generation.json`'s grid of the
/// convention; else the official resolution's (Lumina-mGPT 768 px: 48 × 48, Anole 512 px: 32 × 32).
fn grid(
    cfg: &SweepConfig,
    paths: &ModelPaths,
    convention: Convention,
) -> Result<[usize; 2], HarnessError> {
    if let Some(g) = &cfg.model.grid {
        return Ok([g[0] as usize, g[1] as usize]);
    }
    if cfg.model.preset.as_deref() == Some(FIXTURE_CHAMELEON) {
        let file = paths.gpt.join("generation.json");
        let key = match convention {
            Convention::Lumina => "lumina_latent_hw",
            Convention::Anole => "anole_latent_hw",
        };
        let text = std::fs::read_to_string(&file)?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| HarnessError::Io(format!("{}: {e}", file.display())))?;
        let hw: Option<Vec<usize>> = v[key]
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_u64().map(|x| x as usize)).collect());
        return match hw.as_deref() {
            Some(&[h, w]) => Ok([h, w]),
            _ => Err(HarnessError::Io(format!(
                "{}: no '{key}' [h, w]",
                file.display()
            ))),
        };
    }
    Ok(match convention {
        Convention::Lumina => [48, 48],
        Convention::Anole => [32, 32],
    })
}

/// The conditions of a Chameleon-family sweep: each caption of `[data] prompts` in the
/// convention's prompt text, tokenised, wrapped as the conditional prompt; the caption set (for
/// CLIP scores) and an identity of the prompt ids (run ids change with the tokenizer).
pub(super) fn conditions(
    cfg: &SweepConfig,
    paths: &ModelPaths,
    layout: &ImageLayout,
) -> Result<(Vec<Cond>, PromptSet, String), HarnessError> {
    let invalid = |key: &str, value: String, allowed: String| -> HarnessError {
        cfg.invalid(key, value, &allowed).into()
    };
    let Some(list) = &cfg.data.prompts else {
        return Err(invalid(
            "data.classes",
            format!("{:?}", cfg.data.classes.clone().unwrap_or_default()),
            "prompts = \"captions.txt\": a Chameleon-family target is text-conditional".into(),
        ));
    };
    let list = cfg.resolve_path(list);
    let shown = list.display().to_string();
    let captions = read_captions(&list).map_err(|e| invalid("data.prompts", shown.clone(), e))?;
    let tokenizer = text_tokenizer(cfg, paths)?;
    let n = cfg
        .data
        .prompt_limit
        .map_or(captions.len(), |l| (l as usize).min(captions.len()));
    let mut conds = Vec::with_capacity(n);
    let mut all_ids = Vec::new();
    for (i, caption) in captions.iter().take(n).enumerate() {
        let text = prompt_text(layout.convention, caption, [layout.h, layout.w]);
        let ids = tokenizer
            .encode(&text)
            .map_err(|e| invalid("data.prompts", shown.clone(), e))?;
        if let Some(bad) = ids.iter().find(|&&t| layout.vocab.code_of(t).is_some()) {
            return Err(invalid(
                "model.text_tokenizer",
                tokenizer.source.clone(),
                format!(
                    "a text tokenizer of this checkpoint: caption {i} became image token {bad}"
                ),
            ));
        }
        all_ids.extend_from_slice(&ids);
        all_ids.push(u32::MAX);
        conds.push(Cond {
            cond: ImageCondition::Prompt(layout.prompt(&ids)),
            class: None,
            prompt: Some(i as u32),
        });
    }
    let bytes: Vec<u8> = all_ids.iter().flat_map(|t| t.to_le_bytes()).collect();
    let identity = format!(
        "{:?}:{}x{}:ids:{:016x}",
        layout.convention,
        layout.h,
        layout.w,
        crate::plan::fnv1a(&bytes)
    );
    Ok((conds, PromptSet::captions_only(captions, list), identity))
}

/// The sweep's text tokenizer: `model.text_tokenizer`; for the fixture preset (which ships
/// none) a word-level one over its vocabulary; else the one beside the checkpoint folder.
fn text_tokenizer(cfg: &SweepConfig, paths: &ModelPaths) -> Result<TextTokenizer, HarnessError> {
    let refuse = |value: String, allowed: String| -> HarnessError {
        cfg.invalid("model.text_tokenizer", value, &allowed).into()
    };
    let file = match &cfg.model.text_tokenizer {
        Some(t) => cfg.resolve_path(t),
        None if cfg.model.preset.as_deref() == Some(FIXTURE_CHAMELEON) => {
            return TextTokenizer::word_level(&paths.gpt.join("config.json"))
                .map_err(|e| refuse("(the fixture's vocabulary)".into(), e));
        }
        None => default_tokenizer(&paths.gpt).ok_or_else(|| {
            refuse(
                "(none)".into(),
                format!(
                    "the release's text_tokenizer.json; none is in {} or ../tokenizer/",
                    paths.gpt.display()
                ),
            )
        })?,
    };
    TextTokenizer::from_file(&file).map_err(|e| refuse(file.display().to_string(), e))
}

/// Refuses SJD's official CFG (`official_compat` of `sjd`, `scd`, `gsd`) on targets other than
/// Lumina-mGPT: its official code runs that target only, and the others have no such prompt.
pub(super) fn refuse_jacobi_quirk(
    cfg: &SweepConfig,
    plan: &SweepPlan,
    family: &Family,
) -> Result<(), HarnessError> {
    if matches!(family, Family::Chameleon(l) if l.convention == Convention::Lumina) {
        return Ok(());
    }
    let quirk = plan.runs.iter().find(|r| {
        r.spec.strategy.kind.is_jacobi() && r.spec.strategy.official_compat == Some(true)
    });
    match quirk {
        Some(r) => Err(cfg
            .invalid(
                "strategy.official_compat",
                format!("true ({})", r.label),
                "false on this target: SJD's official CFG (the unconditional branch keeps the prompt's last token) exists on Lumina-mGPT targets only",
            )
            .into()),
        None => Ok(()),
    }
}
