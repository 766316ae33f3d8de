//! Training an EAGLE drafter for a target (LANTERN's recipe, `lantern.md` §3): target features by
//! teacher forcing on tokenised images, element j = (feature at position j, token at j + 1)
//! predicting the feature at j + 1; loss SmoothL1(feature) + 0.1 × soft cross-entropy through the
//! target's frozen head; uniform feature noise; 10 % of rows unconditional; frozen embedding.

use std::path::Path;
use std::time::Instant;

use lantern_decoding::rng::Rng;
use lantern_models::burn::optim::GradientsParams;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::{log_softmax, softmax};
use lantern_models::burn::tensor::{Distribution, TensorData};
use lantern_models::{Condition, Drafter, DrafterConfig, Gpt, VqModel};
use serde::{Deserialize, Serialize};

use crate::common::{adamw, learning_rate, LossLog, Resume};
use crate::data::{ImageSet, Split};
use crate::gpt::{drop_labels, int_rows, token_batch};
use crate::vq::bar;

/// Hyper-parameters of drafter training.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DrafterTrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Crop side in pixels.
    pub crop: u32,
    /// Peak learning rate.
    pub lr: f64,
    /// Weight of the soft cross-entropy (EAGLE: 0.1).
    pub p_weight: f32,
    /// Width of the uniform feature noise (EAGLE: 0.2, i.e. U(−0.1, 0.1)).
    pub noise: f32,
    /// Share of unconditional rows.
    pub uncond_rate: f64,
    /// Seed.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
}

/// Held-out agreement of drafter and target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DrafterReport {
    /// Share of positions where the drafter's argmax equals the target's (conditional).
    pub top1_agreement: f64,
    /// Mean total-variation distance between drafter and target next-token distributions.
    pub mean_tvd: f64,
    /// Positions evaluated.
    pub positions: usize,
}

/// Target features of a batch (post-norm hidden states of every position), host copy.
fn features(
    target: &Gpt,
    tokens: &[Vec<u32>],
    labels: Vec<usize>,
) -> Result<(Vec<f32>, [usize; 3]), String> {
    let n = target.config().block_size;
    let out = target
        .forward_full(
            &Condition::Classes(labels),
            int_rows(tokens, n, &target.device()),
        )
        .map_err(|e| e.to_string())?;
    let dims = out.hidden.dims();
    Ok((
        out.hidden
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("{e:?}"))?,
        dims,
    ))
}

/// SmoothL1 (β = 1), averaged.
fn smooth_l1(a: Tensor<3>, b: Tensor<3>) -> Tensor<1> {
    let d = (a - b).abs();
    let small = d.clone().lower_elem(1.0);
    let quad = d.clone().square() * 0.5;
    let lin = d - 0.5;
    lin.mask_where(small, quad).mean()
}

/// Trains (or resumes) a drafter for `target` and writes `out/drafter.safetensors`.
pub fn train(
    data: Split<'_>,
    vq: &VqModel,
    target: &Gpt,
    cfg: &DrafterConfig,
    tc: &DrafterTrainConfig,
    out: &Path,
    progress: bool,
) -> Result<DrafterReport, String> {
    let Split {
        train: set,
        heldout,
    } = data;
    let device = lantern_models::backend::default_device().autodiff();
    device.seed(tc.seed);
    let resume = Resume::new(out, "drafter");
    let start = resume.step();
    let embedding = target.token_embeddings().clone().fork(&device);
    let mut model = if start > 0 {
        Drafter::load(cfg, &resume.model_path(), &device).map_err(|e| e.to_string())?
    } else {
        Drafter::new(cfg, &device).map_err(|e| e.to_string())?
    }
    .with_embedding(embedding);
    let head = Tensor::<2>::from_data(target.head().weight.val().into_data(), &device).detach();
    let mut optim = adamw(0.0);
    let mut log = LossLog::open(
        &out.join("drafter_loss.csv"),
        "step,loss,feature,soft_ce,seconds",
    )
    .map_err(|e| e.to_string())?;
    let n = target.config().block_size;
    let bar = bar(progress, tc.steps, start, "drafter");
    let t0 = Instant::now();
    for step in start..tc.steps {
        let mut rng = Rng::new(tc.seed).fork(step as u64);
        let batch = token_batch(set, vq, tc.batch, tc.crop, &mut rng)?;
        let labels = drop_labels(
            &batch.labels,
            target.config().null_class(),
            tc.uncond_rate,
            &mut rng,
        );
        let (h, [b, s, d]) = features(target, &batch.tokens, labels)?;
        let h = Tensor::<3>::from_data(TensorData::new(h, [b, s, d]), &device);
        let inputs = h.clone().slice([0..b, 0..n, 0..d]);
        let goal = h.slice([0..b, 1..n + 1, 0..d]);
        let noise =
            Tensor::<3>::random([b, n, d], Distribution::Uniform(-0.5, 0.5), &device) * tc.noise;
        let pred = model.forward_full(inputs + noise, int_rows(&batch.tokens, n, &device));
        let feature = smooth_l1(pred.clone(), goal.clone());
        let p_goal = softmax(goal.matmul(head.clone().unsqueeze::<3>()), 2);
        let log_pred = log_softmax(pred.matmul(head.clone().unsqueeze::<3>()), 2);
        let soft_ce = (p_goal * log_pred).sum_dim(2).mean().neg();
        let loss = feature.clone() + soft_ce.clone() * tc.p_weight;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        if step % 10 == 0 || step + 1 == tc.steps {
            let scalar = |t: Tensor<1>| t.into_scalar::<f32>() as f64;
            let (l, f, c) = (scalar(loss), scalar(feature), scalar(soft_ce));
            log.row(&[
                step.to_string(),
                format!("{l:.5}"),
                format!("{f:.5}"),
                format!("{c:.5}"),
                format!("{:.1}", t0.elapsed().as_secs_f64()),
            ])
            .map_err(|e| e.to_string())?;
            bar.set_message(format!("loss {l:.4} (feature {f:.4}, CE {c:.3})"));
        }
        model = optim.step(
            learning_rate(step, tc.steps, tc.steps / 20, tc.lr),
            model,
            grads,
        );
        resume.checkpoint(step, tc.steps, tc.checkpoint_every, |p| model.save(p))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let full = Drafter::load(
        cfg,
        &resume.model_path(),
        &lantern_models::backend::default_device(),
    )
    .map_err(|e| e.to_string())?;
    let shipped = out.join("drafter.safetensors");
    full.save_f16(&shipped).map_err(|e| e.to_string())?;
    let half = Drafter::load(cfg, &shipped, &lantern_models::backend::default_device())
        .map_err(|e| e.to_string())?;
    evaluate(&half, target, heldout, vq, tc.crop, tc.seed ^ 0xE7A1)
}

/// Held-out top-1 agreement and TVD between drafter and target next-token distributions.
pub fn evaluate(
    drafter: &Drafter,
    target: &Gpt,
    set: &ImageSet,
    vq: &VqModel,
    crop: u32,
    seed: u64,
) -> Result<DrafterReport, String> {
    let mut rng = Rng::new(seed);
    let n = target.config().block_size;
    let v = target.config().vocab_size;
    let device = target.device();
    let (mut agree, mut tvd, mut count) = (0usize, 0.0f64, 0usize);
    for _ in 0..4 {
        let batch = token_batch(set, vq, 8, crop, &mut rng)?;
        let (h, [b, s, d]) = features(target, &batch.tokens, batch.labels.clone())?;
        let h = Tensor::<3>::from_data(TensorData::new(h, [b, s, d]), &device);
        let pred = drafter.forward_full(
            h.clone().slice([0..b, 0..n, 0..d]),
            int_rows(&batch.tokens, n, &device),
        );
        let head = |x: Tensor<3>| -> Result<Vec<f32>, String> {
            softmax(target.head().forward(x), 2)
                .into_data()
                .try_into_vec_as()
                .map_err(|e| format!("{e:?}"))
        };
        let (p, q) = (head(h.slice([0..b, 1..n + 1, 0..d]))?, head(pred)?);
        for r in 0..b * n {
            let (pr, qr) = (&p[r * v..(r + 1) * v], &q[r * v..(r + 1) * v]);
            let am = |x: &[f32]| (0..v).fold(0, |best, i| if x[i] > x[best] { i } else { best });
            agree += usize::from(am(pr) == am(qr));
            tvd += 0.5
                * pr.iter()
                    .zip(qr)
                    .map(|(a, b)| (a - b).abs() as f64)
                    .sum::<f64>();
            count += 1;
        }
    }
    Ok(DrafterReport {
        top1_agreement: agree as f64 / count as f64,
        mean_tvd: tvd / count as f64,
        positions: count,
    })
}
