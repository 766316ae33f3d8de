//! The recipes that rebuild the embedded models: `checkpoints/tiny` (the default, ambiguous like
//! LlamaGen) and `checkpoints/tiny-peaked` (the earlier, near-memorising one): data layout, shapes,
//! step counts and seeds of each stage.

use std::path::Path;

use lantern_models::{DrafterConfig, Gpt, GptConfig, VqConfig, VqModel};
use serde::Serialize;

use lantern_metrics::ReferenceTokens;

use crate::data::{ImageSet, Split};
use crate::drafter::{DrafterReport, DrafterTrainConfig};
use crate::gpt::{GptReport, GptTrainConfig};
use crate::vq::{VqReport, VqTrainConfig};

/// `tiny-peaked`: photos are resized so their short side has this many pixels before cropping.
pub const SHORT_SIDE: u32 = 256;
/// `tiny`: photos are kept at native resolution, longer side capped at this many pixels.
pub const MAX_SIDE: u32 = 2560;
/// Crop side: 64 px through 4× downsampling gives 16×16 tokens, like LlamaGen at 256 px.
pub const CROP: u32 = 64;

/// The tiny tokenizer: LlamaGen VQ architecture, 4× downsampling, 4096 codes of width 8.
pub fn vq_config() -> VqConfig {
    serde_json::from_value(serde_json::json!({
        "codebook_size": 4096, "codebook_embed_dim": 8, "codebook_l2_norm": true,
        "encoder_ch_mult": [1, 2, 2], "decoder_ch_mult": [1, 2, 2],
        "z_channels": 64, "ch": 32, "num_res_blocks": 1, "norm": "group32"
    }))
    .expect("valid VQ config")
}

/// The tiny target: LlamaGen c2i GPT, `layers` × 256 wide, 4 heads.
pub fn gpt_config(classes: usize, layers: usize) -> GptConfig {
    let mut c = GptConfig::with_shape(layers, 4, 256);
    c.vocab_size = vq_config().codebook_size;
    c.block_size = ((CROP as usize) / vq_config().downsample()).pow(2);
    c.num_classes = classes;
    c.class_dropout_prob = 0.1;
    c
}

/// Which embedded model a recipe builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The default: themed classes of several photos, crops at every zoom, photos held out.
    Tiny,
    /// The earlier default: one class per photo, 256-px downsizes, nearly memorised.
    TinyPeaked,
}

impl Preset {
    /// The preset called `name` (`tiny`, `tiny-peaked`).
    pub fn named(name: &str) -> Result<Self, String> {
        match name {
            "tiny" => Ok(Self::Tiny),
            "tiny-peaked" => Ok(Self::TinyPeaked),
            other => Err(format!(
                "unknown preset '{other}'; allowed: tiny, tiny-peaked"
            )),
        }
    }

    /// Its folder under `checkpoints/`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::TinyPeaked => "tiny-peaked",
        }
    }
}

/// How a recipe reads its photos.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataLayout {
    /// A flat folder, one class per photo, resized to [`SHORT_SIDE`]; held-out metrics use other
    /// crops of the same photos.
    PhotoPerClass,
    /// `train/<class>/` and `heldout/<class>/` folders at native resolution, crops at every zoom;
    /// held-out metrics and the reference set use only the held-out photos.
    HeldOutPhotos,
}

/// Step counts and seeds of the three stages (scaled by `scale` for quick trial runs).
pub struct Recipe {
    /// How the photos are read.
    pub data: DataLayout,
    /// Tokenizer stage.
    pub vq: VqTrainConfig,
    /// Target stage.
    pub gpt: GptTrainConfig,
    /// Drafter stage.
    pub drafter: DrafterTrainConfig,
    /// Target depth.
    pub layers: usize,
}

impl Recipe {
    /// The shipped recipe of `preset` with steps multiplied by `scale` (1.0 = the shipped weights).
    pub fn new(preset: Preset, scale: f64) -> Self {
        match preset {
            Preset::Tiny => Self::tiny(scale),
            Preset::TinyPeaked => Self::peaked(scale),
        }
    }

    /// `tiny`: a 16-layer target on zoomed crops of themed classes (see its README).
    fn tiny(scale: f64) -> Self {
        let steps = |n: usize| ((n as f64 * scale).round() as usize).max(2);
        let peaked = Self::peaked(scale);
        Self {
            data: DataLayout::HeldOutPhotos,
            vq: VqTrainConfig {
                steps: steps(TINY_VQ_STEPS),
                seed: 11,
                restart_every: 25,
                // Zoomed crops: a 32-px crop is a stronger downsizing than a 64-px one, so the
                // tokenizer trains on 32-px windows of the GPT's 64-px crops (same pixel
                // statistics; whole 64-px crops would also match its attention's extent).
                crop: CROP,
                window: CROP / 2,
                ..peaked.vq
            },
            gpt: GptTrainConfig {
                steps: steps(TINY_GPT_STEPS),
                seed: 12,
                ..peaked.gpt
            },
            drafter: DrafterTrainConfig {
                steps: steps(300),
                seed: 13,
                ..peaked.drafter
            },
            layers: TINY_LAYERS,
        }
    }

    /// `tiny-peaked`: the earlier default's recipe, unchanged.
    fn peaked(scale: f64) -> Self {
        let steps = |n: usize| ((n as f64 * scale).round() as usize).max(2);
        Self {
            data: DataLayout::PhotoPerClass,
            // The tokenizer is fully convolutional: 32-px crops train it at a quarter of the cost.
            vq: VqTrainConfig {
                steps: steps(1200),
                batch: 16,
                crop: CROP / 2,
                window: 0,
                eval_crop: CROP,
                lr: 1e-3,
                beta: 0.25,
                seed: 1,
                checkpoint_every: 100,
                restart_every: 0,
            },
            gpt: GptTrainConfig {
                steps: steps(1200),
                batch: 8,
                crop: CROP,
                lr: 1e-3,
                weight_decay: 0.05,
                seed: 2,
                checkpoint_every: 100,
            },
            drafter: DrafterTrainConfig {
                steps: steps(600),
                batch: 8,
                crop: CROP,
                lr: 1e-3,
                p_weight: 0.1,
                noise: 0.2,
                uncond_rate: 0.1,
                seed: 3,
                checkpoint_every: 100,
            },
            layers: 8,
        }
    }
}

/// Optimiser steps of the `tiny` tokenizer.
pub const TINY_VQ_STEPS: usize = 1000;
/// Depth of the `tiny` target.
pub const TINY_LAYERS: usize = 16;
/// Optimiser steps of the `tiny` target.
pub const TINY_GPT_STEPS: usize = 600;

/// Crops in the shipped quality reference set.
pub const REFERENCE_CROPS: usize = 1024;

/// Tokens of `count` random crops (a seed no training step uses): the reference set of the
/// quality metrics, decoded by the same tokenizer as generated images.
pub fn reference_tokens(
    set: &ImageSet,
    vq: &VqModel,
    count: usize,
    crop: u32,
    seed: u64,
) -> Result<ReferenceTokens, String> {
    let mut rng = lantern_decoding::rng::Rng::new(seed);
    let (mut tokens, mut labels) = (Vec::new(), Vec::new());
    while tokens.len() < count {
        let b = crate::gpt::token_batch(set, vq, (count - tokens.len()).min(32), crop, &mut rng)?;
        tokens.extend(b.tokens);
        labels.extend(b.labels);
    }
    Ok(ReferenceTokens {
        source: format!(
            "{count} random {crop}×{crop} crops (seed {seed}, {:?} scale) of {} photos in {} classes",
            set.scale,
            set.images.len(),
            set.classes.len()
        ),
        grid: crop as usize / vq.config().downsample(),
        labels,
        tokens,
    })
}

/// Everything the recipe measured, written to `report.json`.
#[derive(Serialize)]
pub struct TinyReport {
    /// Classes (source photos or themes).
    pub classes: Vec<String>,
    /// Training photos.
    pub train_photos: usize,
    /// Held-out photos (the training photos themselves for `tiny-peaked`).
    pub heldout_photos: usize,
    /// Tokenizer quality.
    pub vq: VqReport,
    /// Target statistics.
    pub gpt: GptReport,
    /// Drafter agreement.
    pub drafter: DrafterReport,
    /// Wall-clock seconds per stage.
    pub seconds: [f64; 3],
}

/// The training and held-out photos of `layout` under `data`.
pub fn load_data(data: &Path, layout: DataLayout) -> Result<(ImageSet, ImageSet), String> {
    match layout {
        DataLayout::PhotoPerClass => Ok((
            ImageSet::load(data, SHORT_SIDE)?,
            ImageSet::load(data, SHORT_SIDE)?,
        )),
        DataLayout::HeldOutPhotos => {
            let train = ImageSet::load_zoomed(&data.join("train"), MAX_SIDE, None)?;
            let heldout =
                ImageSet::load_zoomed(&data.join("heldout"), MAX_SIDE, Some(&train.classes))?;
            Ok((train, heldout))
        }
    }
}

/// Runs all three stages into `out` (resuming any that were interrupted).
pub fn build(
    data: &Path,
    out: &Path,
    recipe: &Recipe,
    progress: bool,
) -> Result<TinyReport, String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let (set, heldout) = load_data(data, recipe.data)?;
    let split = Split {
        train: &set,
        heldout: &heldout,
    };
    let vq_cfg = vq_config();
    let gpt_cfg = gpt_config(set.classes.len(), recipe.layers);
    let dcfg = DrafterConfig::for_target(&gpt_cfg);
    let write = |name: &str, v: serde_json::Value| {
        std::fs::write(
            out.join(name),
            serde_json::to_string_pretty(&v).expect("json"),
        )
        .map_err(|e| e.to_string())
    };
    write("vq.json", serde_json::to_value(&vq_cfg).expect("json"))?;
    write("gpt.json", serde_json::to_value(&gpt_cfg).expect("json"))?;
    write("drafter.json", serde_json::to_value(&dcfg).expect("json"))?;
    write(
        "classes.json",
        serde_json::to_value(&set.classes).expect("json"),
    )?;

    let t = std::time::Instant::now();
    let vq_report = crate::vq::train(split, &vq_cfg, &recipe.vq, out, progress)?;
    let s_vq = t.elapsed().as_secs_f64();
    // The tokenizer's held-out figures as soon as its stage ends (the GPT stage takes an hour).
    write(
        "vq_report.json",
        serde_json::json!({ "vq": &vq_report, "seconds": s_vq }),
    )?;
    let vq = VqModel::load(
        &vq_cfg,
        &out.join("vq.safetensors"),
        &lantern_models::backend::default_device(),
    )
    .map_err(|e| e.to_string())?;
    let reference = out.join("reference.json");
    if !reference.is_file() {
        reference_tokens(&heldout, &vq, REFERENCE_CROPS, CROP, 0x5EF)?
            .save(&reference)
            .map_err(|e| e.to_string())?;
    }

    let t = std::time::Instant::now();
    let gpt_report = crate::gpt::train(split, &vq, &gpt_cfg, &recipe.gpt, out, progress)?;
    let s_gpt = t.elapsed().as_secs_f64();
    let gpt = Gpt::load(
        &gpt_cfg,
        &out.join("gpt.safetensors"),
        &lantern_models::backend::default_device(),
    )
    .map_err(|e| e.to_string())?;

    let t = std::time::Instant::now();
    let d_report = crate::drafter::train(split, &vq, &gpt, &dcfg, &recipe.drafter, out, progress)?;
    let s_d = t.elapsed().as_secs_f64();

    let report = TinyReport {
        train_photos: set.images.len(),
        heldout_photos: heldout.images.len(),
        classes: set.classes,
        vq: vq_report,
        gpt: gpt_report,
        drafter: d_report,
        seconds: [s_vq, s_gpt, s_d],
    };
    write("report.json", serde_json::to_value(&report).expect("json"))?;
    Ok(report)
}
