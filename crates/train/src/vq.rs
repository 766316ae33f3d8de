//! Training the VQ tokenizer: L2 reconstruction plus LlamaGen's codebook and commitment losses
//! (β = 0.25) through the straight-through estimator, with an L2-normalised codebook.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lantern_decoding::rng::Rng;
use lantern_models::burn::optim::GradientsParams;
use lantern_models::burn::prelude::*;
use lantern_models::{VqConfig, VqModel};
use serde::{Deserialize, Serialize};

use crate::common::{adamw, learning_rate, LossLog, Resume};
use crate::data::{ImageSet, Split};

/// Hyper-parameters of VQ training.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VqTrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Crops per step.
    pub batch: usize,
    /// Crop side in pixels for training.
    pub crop: u32,
    /// Crop side of the held-out evaluation (the image size the GPT sees).
    pub eval_crop: u32,
    /// Peak learning rate.
    pub lr: f64,
    /// Commitment weight β.
    pub beta: f32,
    /// Seed of crops and initialisation.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
}

/// Held-out quality of a tokenizer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VqReport {
    /// Mean squared error per pixel in [-1, 1] units on held-out crops.
    pub mse: f64,
    /// PSNR in dB for pixels in [0, 255].
    pub psnr_db: f64,
    /// Share of the codebook used on the held-out crops.
    pub codebook_usage: f64,
    /// Held-out crops evaluated.
    pub crops: usize,
}

/// Trains (or resumes) a tokenizer and writes `out/vq.safetensors`; returns its held-out report.
pub fn train(
    data: Split<'_>,
    cfg: &VqConfig,
    tc: &VqTrainConfig,
    out: &Path,
    progress: bool,
) -> Result<VqReport, String> {
    let Split {
        train: set,
        heldout,
    } = data;
    let device = lantern_models::backend::default_device().autodiff();
    device.seed(tc.seed);
    let resume = Resume::new(out, "vq");
    let start = resume.step();
    let mut model = if start > 0 {
        VqModel::load(cfg, &resume.model_path(), &device).map_err(|e| e.to_string())?
    } else {
        VqModel::new(cfg, &device).map_err(|e| e.to_string())?
    };
    let mut optim = adamw(0.0);
    let mut log = LossLog::open(
        &out.join("vq_loss.csv"),
        "step,loss,recon,codebook,commit,usage,seconds",
    )
    .map_err(|e| e.to_string())?;
    let bar = bar(progress, tc.steps, start, "vq");
    let t0 = Instant::now();
    for step in start..tc.steps {
        let mut rng = Rng::new(tc.seed).fork(step as u64);
        let (x, _) = set.batch(tc.batch, tc.crop, &mut rng, &device);
        let q = model.quantize_train(model.encode_latent(x.clone()));
        let recon = model.decode(q.quant);
        let rec = (recon - x).square().mean();
        let loss = rec.clone() + q.codebook_loss.clone() + q.commit_loss.clone() * tc.beta;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(
            learning_rate(step, tc.steps, tc.steps / 20, tc.lr),
            model,
            grads,
        );
        if step % 20 == 0 || step + 1 == tc.steps {
            let codes: Vec<i64> = q
                .codes
                .into_data()
                .try_into_vec_as()
                .map_err(|e| format!("{e:?}"))?;
            let usage =
                codes.iter().collect::<HashSet<_>>().len() as f64 / cfg.codebook_size as f64;
            let scalar = |t: Tensor<1>| t.into_scalar::<f32>() as f64;
            let (l, r) = (scalar(loss), scalar(rec));
            log.row(&[
                step.to_string(),
                format!("{l:.6}"),
                format!("{r:.6}"),
                format!("{:.6}", scalar(q.codebook_loss)),
                format!("{:.6}", scalar(q.commit_loss)),
                format!("{usage:.4}"),
                format!("{:.1}", t0.elapsed().as_secs_f64()),
            ])
            .map_err(|e| e.to_string())?;
            bar.set_message(format!("loss {l:.4} (recon {r:.4})"));
        }
        resume.checkpoint(step, tc.steps, tc.checkpoint_every, |p| model.save(p))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let inference = VqModel::load(
        cfg,
        &resume.model_path(),
        &lantern_models::backend::default_device(),
    )
    .map_err(|e| e.to_string())?;
    inference
        .save(&out.join("vq.safetensors"))
        .map_err(|e| e.to_string())?;
    evaluate(&inference, heldout, tc.eval_crop, tc.seed ^ 0xE7A1)
}

/// Reconstruction error and codebook usage on 256 held-out crops (a seed no training step uses).
pub fn evaluate(vq: &VqModel, set: &ImageSet, crop: u32, seed: u64) -> Result<VqReport, String> {
    let device = lantern_models::backend::default_device();
    let mut rng = Rng::new(seed);
    let (mut se, mut n, mut used) = (0.0f64, 0usize, HashSet::new());
    let grid = crop as usize / vq.config().downsample();
    for _ in 0..8 {
        let (x, _) = set.batch(32, crop, &mut rng, &device);
        let codes = vq.encode(x.clone());
        let recon = vq.decode_code(codes.clone(), grid);
        let err: Vec<f32> = (recon - x)
            .square()
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("{e:?}"))?;
        se += err.iter().map(|&v| v as f64).sum::<f64>();
        n += err.len();
        let c: Vec<i64> = codes
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("{e:?}"))?;
        used.extend(c);
    }
    let mse = se / n as f64;
    // [-1, 1] → [0, 255]: error scales by 127.5.
    let psnr_db = 10.0 * (255.0f64.powi(2) / (mse * 127.5f64.powi(2))).log10();
    Ok(VqReport {
        mse,
        psnr_db,
        codebook_usage: used.len() as f64 / vq.config().codebook_size as f64,
        crops: 256,
    })
}

/// A progress bar for a training stage (hidden when not asked for).
pub fn bar(show: bool, total: usize, start: usize, stage: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(total as u64);
    b.set_position(start as u64);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{stage} {{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} steps, ETA {{eta}} {{msg}}"
        ))
        .expect("template")
        .progress_chars("=> "),
    );
    b
}
