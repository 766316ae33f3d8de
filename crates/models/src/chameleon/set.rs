//! A Chameleon-family model set for one run (Lumina-mGPT, Anole): the target packed for the host
//! engine, LANTERN's drafter, Meta's VQGAN and the image layout, loaded from a checkpoint folder
//! whose `config.json` says `"model_type": "chameleon"`.

use std::path::Path;

use burn::prelude::*;

use super::layout::{Convention, ImageLayout};
use super::load::{load, load_drafter};
use super::ChameleonDrafter;
use crate::bundle::ModelPaths;
use crate::cpu::{HostChameleon, HostChameleonDrafter, WeightDtype};
use crate::error::ModelError;
use crate::vq::VqModel;

/// The `drafter` value that derives a drafter from the target ([`ChameleonDrafter::from_target`]).
pub const FROM_TARGET: &str = "from-target";

/// The `config.json` of a checkpoint folder, parsed, if it is a Chameleon-family checkpoint.
fn chameleon_config(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    (v.get("model_type").and_then(|t| t.as_str()) == Some("chameleon")).then_some(v)
}

/// Whether `path` is a Chameleon-family checkpoint folder (`config.json` with `model_type`
/// `chameleon`: Chameleon, Anole, Lumina-mGPT).
pub fn is_chameleon(path: &Path) -> bool {
    path.is_dir() && chameleon_config(path).is_some()
}

/// The generation convention a checkpoint's config implies: Lumina-mGPT's configs carry
/// `mask_image_logits` (LUMfork adds it; Anole's and Meta's do not), so its presence means
/// Lumina, its absence Anole.
pub fn convention_of(dir: &Path) -> Convention {
    match chameleon_config(dir) {
        Some(v) if v.get("mask_image_logits").is_some() => Convention::Lumina,
        _ => Convention::Anole,
    }
}

/// A loaded Chameleon-family model set.
#[derive(Debug)]
pub struct ChameleonSet {
    /// The target on the host engine.
    pub target: HostChameleon,
    /// LANTERN's drafter, when one is named.
    pub drafter: Option<HostChameleonDrafter>,
    /// Whether the drafter was derived from the target ([`FROM_TARGET`]) rather than trained.
    pub drafter_is_derived: bool,
    /// Meta's VQGAN (to decode images and for LANTERN's neighbours), when named.
    pub vq: Option<VqModel>,
    /// How images are written as tokens, and their size.
    pub layout: ImageLayout,
    /// Weight storage of the matrices.
    pub dtype: WeightDtype,
}

impl ChameleonSet {
    /// Loads the folder `paths.gpt` (HF or Lumina-mGPT layout), the VQGAN (`paths.vq` with the
    /// `vqgan.json` of `paths.vq_config`) and the drafter (`paths.drafter`: LANTERN's drafter
    /// folder or [`FROM_TARGET`]), for images of `h × w` latent tokens under `convention`. The
    /// target is packed straight from its files ([`HostChameleon::load`]); burn copies (the
    /// drafter's, a derived drafter's target) are dropped once packed.
    pub fn load(
        paths: &ModelPaths,
        (convention, h, w): (Convention, usize, usize),
        dtype: WeightDtype,
        device: &Device,
    ) -> Result<Self, ModelError> {
        // The target is packed straight from its files unless the drafter is derived from it
        // (a fixture stand-in that needs the burn model).
        let derived = paths.drafter.as_deref() == Some(FROM_TARGET);
        let (target, derived_drafter) = if derived {
            let burn = load(&paths.gpt, device)?;
            let drafter = ChameleonDrafter::from_target(&burn);
            (HostChameleon::from_burn(&burn, dtype), Some(drafter))
        } else {
            (HostChameleon::load(&paths.gpt, dtype)?, None)
        };
        let layout = ImageLayout {
            convention,
            h,
            w,
            vocab: target.vocab().clone(),
        };
        check_layout(&layout, target.config().max_position_embeddings, &paths.gpt)?;
        let vq = load_vq(paths, device)?;
        if let Some(vq) = &vq {
            let (codes, images) = (vq.config().codebook_size, layout.vocab.codebook_size());
            if codes != images {
                return Err(ModelError::Config {
                    source_name: paths.vq_config.clone().unwrap_or_default(),
                    message: format!(
                        "the VQGAN has {codes} codes but the target's vocabulary names {images} image tokens"
                    ),
                });
            }
        }
        let drafter = match (derived_drafter, paths.drafter.as_deref()) {
            (Some(d), _) => Some(d),
            (None, Some(dir)) => Some(load_drafter(Path::new(dir), device)?),
            (None, None) => None,
        };
        let drafter = drafter.map(|d| HostChameleonDrafter::from_burn(&d, dtype));
        Ok(Self {
            target,
            drafter,
            drafter_is_derived: derived,
            vq,
            layout,
            dtype,
        })
    }
}

/// Meta's VQGAN named by `paths` (`vqgan.json` + `vqgan.ckpt` or safetensors), if any.
fn load_vq(paths: &ModelPaths, device: &Device) -> Result<Option<VqModel>, ModelError> {
    let Some(file) = &paths.vq else {
        return Ok(None);
    };
    let config = paths
        .vq_config
        .as_deref()
        .ok_or_else(|| ModelError::Config {
            source_name: file.display().to_string(),
            message: "a VQGAN needs its config: vq_config = \"vqgan.json\"".into(),
        })?;
    let cfg = crate::vqgan::config_from_json_file(Path::new(config))?;
    crate::vqgan::load(&cfg, file, device).map(Some)
}

/// Refuses a layout the convention or the model's context cannot hold.
fn check_layout(layout: &ImageLayout, max_positions: usize, dir: &Path) -> Result<(), ModelError> {
    let err = |message: String| ModelError::Config {
        source_name: dir.display().to_string(),
        message,
    };
    let (h, w) = (layout.h, layout.w);
    if h == 0 || w == 0 {
        return Err(err(format!(
            "an image grid of {h} × {w} tokens; allowed: h, w ≥ 1"
        )));
    }
    if layout.convention == Convention::Lumina && (h % 2 != 0 || w % 2 != 0) {
        return Err(err(format!(
            "Lumina-mGPT writes one size token per 2 latent rows or columns; the grid {h} × {w} must be even"
        )));
    }
    let body = layout.offset_of(layout.tokens()) + layout.header().len() + 1;
    if body >= max_positions {
        return Err(err(format!(
            "an image of {h} × {w} tokens takes {body} positions with its header; max_position_embeddings is {max_positions}"
        )));
    }
    Ok(())
}
