//! `lantern train`: rebuild the embedded default, or train an EAGLE drafter for any LlamaGen target.

use std::path::PathBuf;

use lantern_models::bundle::{gpt_config, vq_config};
use lantern_models::{DrafterConfig, Gpt, VqModel};
use lantern_train::data::{ImageSet, Split};
use lantern_train::drafter::DrafterTrainConfig;
use lantern_train::tiny::{build, Preset, Recipe};

/// Arguments of `lantern train`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Train the embedded default (VQ, GPT, drafter) from package-shipped photos; resumable.
    Tiny(TinyArgs),
    /// Train an EAGLE drafter for a LlamaGen target on an image folder; resumable.
    Drafter(DrafterArgs),
}

/// Arguments of `lantern train tiny`.
#[derive(clap::Args)]
struct TinyArgs {
    /// Which embedded model: `tiny` (the default) or `tiny-peaked` (the earlier one).
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Photos (`just fetch-data` fills them): for `tiny`, a folder with `train/<class>/` and
    /// `heldout/<class>/` (default data/themes); for `tiny-peaked`, one class per file (data/photos).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder (default checkpoints/<preset>; its `*.state` sub-folders make an interrupted
    /// run resumable).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Multiplies every stage's step count (1 = the shipped recipe; small values for trial runs).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Hide the progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Arguments of `lantern train drafter`.
#[derive(clap::Args)]
struct DrafterArgs {
    /// Target checkpoint (`.pt` or `.safetensors`).
    #[arg(long)]
    target: PathBuf,
    /// Target config: a preset (GPT-B, …) or a JSON file.
    #[arg(long)]
    target_config: String,
    /// VQ checkpoint that tokenises the images.
    #[arg(long)]
    vq: PathBuf,
    /// VQ config: VQ-16, VQ-8 or a JSON file.
    #[arg(long, default_value = "VQ-16")]
    vq_config: String,
    /// Class folders in the target's label order (e.g. ImageNet train folders, sorted), or photos.
    #[arg(long)]
    data: PathBuf,
    /// Output folder: drafter.safetensors, drafter.json, drafter_loss.csv, drafter_report.json.
    #[arg(long)]
    out: PathBuf,
    /// Optimiser steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed.
    #[arg(long, default_value_t = 3)]
    seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Loss-curve plots of every stage log found in `dir`.
fn loss_curves(dir: &std::path::Path) -> std::io::Result<()> {
    use lantern_harness::plots::training_curve;
    training_curve(
        &dir.join("vq_loss.csv"),
        &["recon", "codebook", "commit"],
        "VQ tokenizer: training losses",
        "vq_loss",
    )?;
    training_curve(
        &dir.join("gpt_loss.csv"),
        &["loss"],
        "GPT: next-token cross-entropy (nats)",
        "gpt_loss",
    )?;
    training_curve(
        &dir.join("drafter_loss.csv"),
        &["feature", "soft_ce"],
        "Drafter: SmoothL1 feature loss and soft CE",
        "drafter_loss",
    )?;
    Ok(())
}

/// Runs `lantern train`.
pub fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    match a.what {
        What::Tiny(t) => {
            if !t.scale.is_finite() || t.scale <= 0.0 {
                return Err(format!("--scale {} must be > 0", t.scale).into());
            }
            let preset = Preset::named(&t.preset)?;
            let data = t.data.unwrap_or_else(|| match preset {
                Preset::Tiny => PathBuf::from("data/themes"),
                Preset::TinyPeaked => PathBuf::from("data/photos"),
            });
            let out = t
                .out
                .unwrap_or_else(|| PathBuf::from("checkpoints").join(preset.name()));
            let report = build(&data, &out, &Recipe::new(preset, t.scale), !t.quiet)?;
            loss_curves(&out)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        What::Drafter(d) => {
            let device = lantern_models::backend::default_device();
            let gcfg = gpt_config(&d.target_config)?;
            let vcfg = vq_config(&d.vq_config)?;
            let target = Gpt::load(&gcfg, &d.target, &device)?;
            let vq = VqModel::load(&vcfg, &d.vq, &device)?;
            let crop = (gcfg.grid_size() * vcfg.downsample()) as u32;
            let set = ImageSet::load(&d.data, crop)?;
            if set.classes.len() > gcfg.num_classes {
                return Err(format!(
                    "{} holds {} classes but the target knows {} (--data must hold the target's classes, in label order)",
                    d.data.display(),
                    set.classes.len(),
                    gcfg.num_classes
                )
                .into());
            }
            std::fs::create_dir_all(&d.out)?;
            let dcfg = DrafterConfig::for_target(&gcfg);
            std::fs::write(
                d.out.join("drafter.json"),
                serde_json::to_string_pretty(&dcfg)?,
            )?;
            let tc = DrafterTrainConfig {
                steps: d.steps,
                batch: d.batch,
                crop,
                lr: d.lr,
                p_weight: 0.1,
                noise: 0.2,
                uncond_rate: 0.1,
                seed: d.seed,
                checkpoint_every: 100,
            };
            let report = lantern_train::drafter::train(
                Split {
                    train: &set,
                    heldout: &set,
                },
                &vq,
                &target,
                &dcfg,
                &tc,
                &d.out,
                !d.quiet,
            )?;
            let json = serde_json::to_string_pretty(&report)?;
            std::fs::write(d.out.join("drafter_report.json"), &json)?;
            loss_curves(&d.out)?;
            println!("{json}");
        }
    }
    Ok(())
}
