//! The recipe that rebuilds `checkpoints/tiny`: shapes, step counts and seeds of each stage.

use std::path::Path;

use lantern_models::{DrafterConfig, Gpt, GptConfig, VqConfig, VqModel};
use serde::Serialize;

use lantern_metrics::ReferenceTokens;

use crate::data::ImageSet;
use crate::drafter::{DrafterReport, DrafterTrainConfig};
use crate::gpt::{GptReport, GptTrainConfig};
use crate::vq::{VqReport, VqTrainConfig};

/// Photos are resized so their short side has this many pixels before cropping.
pub const SHORT_SIDE: u32 = 256;
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

/// The tiny target: LlamaGen c2i GPT, `layers` × 256 wide, 4 heads, one class per photo.
pub fn gpt_config(classes: usize, layers: usize) -> GptConfig {
    let mut c = GptConfig::with_shape(layers, 4, 256);
    c.vocab_size = vq_config().codebook_size;
    c.block_size = ((CROP as usize) / vq_config().downsample()).pow(2);
    c.num_classes = classes;
    c.class_dropout_prob = 0.1;
    c
}

/// Step counts and seeds of the three stages (scaled by `scale` for quick trial runs).
pub struct Recipe {
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
    /// The shipped recipe with steps multiplied by `scale` (1.0 = the shipped weights).
    pub fn new(scale: f64) -> Self {
        let steps = |n: usize| ((n as f64 * scale).round() as usize).max(2);
        Self {
            // The tokenizer is fully convolutional: 32-px crops train it at a quarter of the cost.
            vq: VqTrainConfig {
                steps: steps(1200),
                batch: 16,
                crop: CROP / 2,
                eval_crop: CROP,
                lr: 1e-3,
                beta: 0.25,
                seed: 1,
                checkpoint_every: 100,
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
            "{count} random {crop}×{crop} crops (seed {seed}) of the {} training photos",
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
    /// Classes (source photos).
    pub classes: Vec<String>,
    /// Tokenizer quality.
    pub vq: VqReport,
    /// Target statistics.
    pub gpt: GptReport,
    /// Drafter agreement.
    pub drafter: DrafterReport,
    /// Wall-clock seconds per stage.
    pub seconds: [f64; 3],
}

/// Runs all three stages into `out` (resuming any that were interrupted).
pub fn build(
    data: &Path,
    out: &Path,
    recipe: &Recipe,
    progress: bool,
) -> Result<TinyReport, String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let set = ImageSet::load(data, SHORT_SIDE)?;
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
    let vq_report = crate::vq::train(&set, &vq_cfg, &recipe.vq, out, progress)?;
    let s_vq = t.elapsed().as_secs_f64();
    let vq = VqModel::load(
        &vq_cfg,
        &out.join("vq.safetensors"),
        &lantern_models::backend::default_device(),
    )
    .map_err(|e| e.to_string())?;
    let reference = out.join("reference.json");
    if !reference.is_file() {
        reference_tokens(&set, &vq, REFERENCE_CROPS, CROP, 0x5EF)?
            .save(&reference)
            .map_err(|e| e.to_string())?;
    }

    let t = std::time::Instant::now();
    let gpt_report = crate::gpt::train(&set, &vq, &gpt_cfg, &recipe.gpt, out, progress)?;
    let s_gpt = t.elapsed().as_secs_f64();
    let gpt = Gpt::load(
        &gpt_cfg,
        &out.join("gpt.safetensors"),
        &lantern_models::backend::default_device(),
    )
    .map_err(|e| e.to_string())?;

    let t = std::time::Instant::now();
    let d_report = crate::drafter::train(&set, &vq, &gpt, &dcfg, &recipe.drafter, out, progress)?;
    let s_d = t.elapsed().as_secs_f64();

    let report = TinyReport {
        classes: set.classes,
        vq: vq_report,
        gpt: gpt_report,
        drafter: d_report,
        seconds: [s_vq, s_gpt, s_d],
    };
    write("report.json", serde_json::to_value(&report).expect("json"))?;
    Ok(report)
}
