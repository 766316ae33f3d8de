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
    /// When non-zero, each training crop keeps only a random square of this side: the pixel
    /// statistics of crops of the GPT's size at a fraction of the cost. The tokenizer is not
    /// resolution-free (its attention blocks see every latent position), so a tokenizer trained on
    /// windows reconstructs whole crops worse than the windows (`checkpoints/tiny/README.md`).
    #[serde(default)]
    pub window: u32,
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
    /// Dead-code restarts: every this many steps, each code no batch chose in that window is moved
    /// onto a random encoder output of the current batch (0 = never; restarts stop at 3/4 of the
    /// steps so the codebook settles).
    #[serde(default)]
    pub restart_every: usize,
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
    let mut restarts = Restarts::new(cfg.codebook_size, tc, start);
    let t0 = Instant::now();
    for step in start..tc.steps {
        let mut rng = Rng::new(tc.seed).fork(step as u64);
        let x = if tc.window > 0 {
            set.batch_windows(tc.batch, (tc.crop, tc.window), &mut rng, &device)
        } else {
            set.batch(tc.batch, tc.crop, &mut rng, &device).0
        };
        let z = model.encode_latent(x.clone());
        let q = model.quantize_train(z.clone());
        let chosen: Vec<i64> = q
            .codes
            .clone()
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("{e:?}"))?;
        restarts.observe(&chosen, step);
        let recon = model.decode(q.quant);
        let rec = (recon - x).square().mean();
        let loss = rec.clone() + q.codebook_loss.clone() + q.commit_loss.clone() * tc.beta;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(
            learning_rate(step, tc.steps, tc.steps / 20, tc.lr),
            model,
            grads,
        );
        if restarts.due(step) {
            let dead = restarts.dead(step);
            if !dead.is_empty() {
                let rows = restarts.rows(&dead, latents(z)?, &mut rng.fork(0x5EED));
                model = model.restart_codes(&rows);
                restarts.revived(&dead, step);
            }
        }
        if step % 20 == 0 || step + 1 == tc.steps {
            let usage =
                chosen.iter().collect::<HashSet<_>>().len() as f64 / cfg.codebook_size as f64;
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

/// Dead-code restart bookkeeping: the last step each code was chosen.
struct Restarts {
    last_used: Vec<usize>,
    every: usize,
    until: usize,
}

impl Restarts {
    /// A fresh window at `start` (a resumed run treats every code as just used).
    fn new(codebook_size: usize, tc: &VqTrainConfig, start: usize) -> Self {
        Self {
            last_used: vec![start; codebook_size],
            every: tc.restart_every,
            until: tc.steps * 3 / 4,
        }
    }

    /// Records the codes a batch chose at `step`.
    fn observe(&mut self, codes: &[i64], step: usize) {
        for &c in codes {
            self.last_used[c as usize] = step;
        }
    }

    /// Whether restarts run after `step`.
    fn due(&self, step: usize) -> bool {
        self.every > 0 && step > 0 && step.is_multiple_of(self.every) && step < self.until
    }

    /// Codes no batch chose in the last `every` steps.
    fn dead(&self, step: usize) -> Vec<usize> {
        (0..self.last_used.len())
            .filter(|&c| self.last_used[c] + self.every <= step)
            .collect()
    }

    /// New rows for `dead`: random L2-normalised encoder outputs from `latents`, jittered so codes
    /// placed on the same output separate.
    fn rows(
        &self,
        dead: &[usize],
        latents: Vec<Vec<f32>>,
        rng: &mut Rng,
    ) -> Vec<(usize, Vec<f32>)> {
        dead.iter()
            .map(|&code| {
                let pick = (rng.next_u64() % latents.len() as u64) as usize;
                let mut row: Vec<f32> = latents[pick]
                    .iter()
                    .map(|v| v + 0.02 * (2.0 * rng.uniform() as f32 - 1.0))
                    .collect();
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v /= norm);
                (code, row)
            })
            .collect()
    }

    /// Marks restarted codes as fresh, so they get a full window to be chosen.
    fn revived(&mut self, dead: &[usize], step: usize) {
        for &c in dead {
            self.last_used[c] = step;
        }
    }
}

/// The L2-normalised encoder outputs of a latent `[B, D, h, w]`, one row per position.
fn latents(z: Tensor<4>) -> Result<Vec<Vec<f32>>, String> {
    let [b, d, h, w] = z.dims();
    let flat: Vec<f32> = z
        .detach()
        .permute([0, 2, 3, 1])
        .reshape([b * h * w, d])
        .into_data()
        .try_into_vec_as()
        .map_err(|e| format!("{e:?}"))?;
    Ok(flat
        .chunks(d)
        .map(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(|v| v / norm).collect()
        })
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(steps: usize, restart_every: usize) -> VqTrainConfig {
        VqTrainConfig {
            steps,
            batch: 1,
            crop: 8,
            window: 0,
            eval_crop: 8,
            lr: 1e-3,
            beta: 0.25,
            seed: 1,
            checkpoint_every: 1,
            restart_every,
        }
    }

    #[test]
    fn codes_unchosen_for_a_window_are_dead_and_revived_codes_get_a_new_window() {
        let mut r = Restarts::new(4, &config(100, 10), 0);
        r.observe(&[0, 1], 5);
        r.observe(&[1], 12);
        assert!(!r.due(5) && r.due(20) && !r.due(80));
        assert_eq!(r.dead(14), vec![2, 3]);
        assert_eq!(r.dead(20), vec![0, 2, 3]);
        r.revived(&[0, 2, 3], 20);
        assert_eq!(r.dead(29), vec![1]);
        assert_eq!(r.dead(30), vec![0, 1, 2, 3]);
        assert!(!Restarts::new(4, &config(100, 0), 0).due(10));
    }

    #[test]
    fn restarted_rows_are_unit_vectors_near_a_batch_output() {
        let r = Restarts::new(2, &config(10, 1), 0);
        let rows = r.rows(&[1], vec![vec![0.6, 0.8]], &mut Rng::new(3));
        assert_eq!(rows[0].0, 1);
        let v = &rows[0].1;
        assert!(((v[0] * v[0] + v[1] * v[1]).sqrt() - 1.0).abs() < 1e-5);
        assert!((v[0] - 0.6).abs() < 0.03 && (v[1] - 0.8).abs() < 0.03);
    }
}
