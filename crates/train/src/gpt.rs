//! Training the class-conditional GPT on VQ tokens of random crops, with label dropout to the
//! null class (so CFG works), and measuring how ambiguous its next-token distributions are.

use std::path::Path;
use std::time::Instant;

use lantern_decoding::regime::Regime;
use lantern_decoding::rng::Rng;
use lantern_models::burn::nn::loss::CrossEntropyLossConfig;
use lantern_models::burn::optim::GradientsParams;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::softmax;
use lantern_models::burn::tensor::TensorData;
use lantern_models::{Condition, Gpt, GptConfig, VqModel};
use serde::{Deserialize, Serialize};

use crate::common::{adamw, learning_rate, LossLog, Resume};
use crate::data::{ImageSet, Split};
use crate::vq::bar;

/// Hyper-parameters of GPT training.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GptTrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences (images) per step.
    pub batch: usize,
    /// Crop side in pixels (tokens per side = crop / VQ downsampling).
    pub crop: u32,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Seed.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
}

/// A batch of token sequences of random crops with their labels (host data).
pub struct TokenBatch {
    /// `[B][grid²]` codes.
    pub tokens: Vec<Vec<u32>>,
    /// Class per sequence.
    pub labels: Vec<usize>,
}

/// Encodes `b` random crops with the tokenizer.
pub fn token_batch(
    set: &ImageSet,
    vq: &VqModel,
    b: usize,
    crop: u32,
    rng: &mut Rng,
) -> Result<TokenBatch, String> {
    let (x, labels) = set.batch(b, crop, rng, &lantern_models::backend::default_device());
    let codes: Vec<i64> = vq
        .encode(x)
        .into_data()
        .try_into_vec_as()
        .map_err(|e| format!("{e:?}"))?;
    let n = codes.len() / b;
    Ok(TokenBatch {
        tokens: codes
            .chunks(n)
            .map(|c| c.iter().map(|&v| v as u32).collect())
            .collect(),
        labels,
    })
}

/// Replaces each label by the null class with probability `p` (CFG training).
pub fn drop_labels(labels: &[usize], null: usize, p: f64, rng: &mut Rng) -> Vec<usize> {
    labels
        .iter()
        .map(|&l| if rng.uniform() < p { null } else { l })
        .collect()
}

/// `[B, n]` integer tensor from host rows (optionally only the first `n` of each).
pub fn int_rows(rows: &[Vec<u32>], n: usize, device: &Device) -> Tensor<2, Int> {
    let data: Vec<i64> = rows
        .iter()
        .flat_map(|r| r[..n].iter().map(|&t| t as i64))
        .collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), n]), device)
}

/// Held-out statistics of the trained target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GptReport {
    /// Mean cross-entropy per token (nats), conditional.
    pub nll: f64,
    /// Mean of the largest next-token probability (conditional, T = 1).
    pub mean_max_prob: f64,
    /// Histogram of the largest next-token probability over 10 bins of width 0.1.
    pub max_prob_histogram: Vec<u64>,
    /// Mean entropy of the next-token distribution (nats).
    pub mean_entropy: f64,
    /// Mean probability mass of the ten most likely tokens.
    #[serde(default)]
    pub mean_top10_mass: f64,
    /// Positions evaluated.
    pub positions: usize,
    /// Largest |logit| change from storing the weights as f16 (the shipped file is f16).
    pub f16_max_logit_diff: Option<f64>,
}

/// Trains (or resumes) the target on tokens of `vq` and writes `out/gpt.safetensors`.
pub fn train(
    data: Split<'_>,
    vq: &VqModel,
    cfg: &GptConfig,
    tc: &GptTrainConfig,
    out: &Path,
    progress: bool,
) -> Result<GptReport, String> {
    let Split {
        train: set,
        heldout,
    } = data;
    let device = lantern_models::backend::default_device().autodiff();
    device.seed(tc.seed);
    let resume = Resume::new(out, "gpt");
    let start = resume.step();
    let mut model = if start > 0 {
        Gpt::load(cfg, &resume.model_path(), &device).map_err(|e| e.to_string())?
    } else {
        Gpt::new(cfg, &device).map_err(|e| e.to_string())?
    };
    let mut optim = adamw(tc.weight_decay);
    let ce = CrossEntropyLossConfig::new().init(&device);
    let mut log =
        LossLog::open(&out.join("gpt_loss.csv"), "step,loss,seconds").map_err(|e| e.to_string())?;
    let n = cfg.block_size;
    let bar = bar(progress, tc.steps, start, "gpt");
    let t0 = Instant::now();
    for step in start..tc.steps {
        let mut rng = Rng::new(tc.seed).fork(step as u64);
        let batch = token_batch(set, vq, tc.batch, tc.crop, &mut rng)?;
        let labels = drop_labels(
            &batch.labels,
            cfg.null_class(),
            cfg.class_dropout_prob,
            &mut rng,
        );
        let inputs = int_rows(&batch.tokens, n - 1, &device);
        let targets = int_rows(&batch.tokens, n, &device).reshape([tc.batch * n]);
        let out_ = model
            .forward_full(&Condition::Classes(labels), inputs)
            .map_err(|e| e.to_string())?;
        let logits = out_.logits.reshape([tc.batch * n, cfg.vocab_size]);
        let loss = ce.forward(logits, targets);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let value = if step % 10 == 0 || step + 1 == tc.steps {
            Some(loss.into_scalar::<f32>() as f64)
        } else {
            None
        };
        model = optim.step(
            learning_rate(step, tc.steps, tc.steps / 20, tc.lr),
            model,
            grads,
        );
        if let Some(l) = value {
            log.row(&[
                step.to_string(),
                format!("{l:.5}"),
                format!("{:.1}", t0.elapsed().as_secs_f64()),
            ])
            .map_err(|e| e.to_string())?;
            bar.set_message(format!("loss {l:.4}"));
        }
        resume.checkpoint(step, tc.steps, tc.checkpoint_every, |p| model.save(p))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let full = Gpt::load(
        cfg,
        &resume.model_path(),
        &lantern_models::backend::default_device(),
    )
    .map_err(|e| e.to_string())?;
    let shipped = out.join("gpt.safetensors");
    full.save_f16(&shipped).map_err(|e| e.to_string())?;
    let half = Gpt::load(cfg, &shipped, &lantern_models::backend::default_device())
        .map_err(|e| e.to_string())?;
    let mut report = evaluate(&half, heldout, vq, tc.crop, tc.seed ^ 0xE7A1)?;
    report.f16_max_logit_diff = Some(f16_logit_diff(&full, &half, set, vq, tc.crop)?);
    Ok(report)
}

/// Largest |logit| difference between the f32 weights and their f16 copy on one held-out batch.
fn f16_logit_diff(
    full: &Gpt,
    half: &Gpt,
    set: &ImageSet,
    vq: &VqModel,
    crop: u32,
) -> Result<f64, String> {
    let batch = token_batch(set, vq, 4, crop, &mut Rng::new(0xF16))?;
    let n = full.config().block_size;
    let logits = |g: &Gpt| -> Result<Tensor<3>, String> {
        let input = int_rows(&batch.tokens, n - 1, &g.device());
        Ok(
            g.forward_full(&Condition::Classes(batch.labels.clone()), input)
                .map_err(|e| e.to_string())?
                .logits,
        )
    };
    Ok((logits(full)? - logits(half)?)
        .abs()
        .max()
        .into_scalar::<f32>() as f64)
}

/// Held-out NLL and the distribution of the largest next-token probability (conditional).
pub fn evaluate(
    gpt: &Gpt,
    set: &ImageSet,
    vq: &VqModel,
    crop: u32,
    seed: u64,
) -> Result<GptReport, String> {
    let mut rng = Rng::new(seed);
    let cfg = gpt.config();
    let (n, v) = (cfg.block_size, cfg.vocab_size);
    let (mut nll, mut maxp, mut ent, mut top10, mut count) = (0.0, 0.0, 0.0, 0.0, 0usize);
    let mut hist = vec![0u64; 10];
    for _ in 0..4 {
        let batch = token_batch(set, vq, 16, crop, &mut rng)?;
        let out = gpt
            .forward_full(
                &Condition::Classes(batch.labels.clone()),
                int_rows(&batch.tokens, n - 1, &gpt.device()),
            )
            .map_err(|e| e.to_string())?;
        let p: Vec<f32> = softmax(out.logits, 2)
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("{e:?}"))?;
        for (b, row_tokens) in batch.tokens.iter().enumerate() {
            for (k, &t) in row_tokens.iter().enumerate() {
                let row = &p[(b * n + k) * v..(b * n + k + 1) * v];
                nll -= (row[t as usize].max(1e-12) as f64).ln();
                let r = Regime::of(row, None);
                maxp += r.max_p;
                top10 += r.top10;
                hist[((r.max_p * 10.0) as usize).min(9)] += 1;
                ent += r.entropy;
                count += 1;
            }
        }
    }
    Ok(GptReport {
        nll: nll / count as f64,
        mean_max_prob: maxp / count as f64,
        max_prob_histogram: hist,
        mean_entropy: ent / count as f64,
        mean_top10_mass: top10 / count as f64,
        positions: count,
        f16_max_logit_diff: None,
    })
}
