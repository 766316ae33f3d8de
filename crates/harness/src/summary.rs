//! One row per configuration: means and 95% intervals of τ and latency, and the speedup over the
//! AR rows of the same sweep (same sampling, same images).

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::Serialize;

use crate::quality::Quality;
use crate::records::Record;

/// Mean and 95% confidence half-width (Student t) of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Sample mean.
    pub mean: f64,
    /// Half-width of the 95% interval (0 for a single value).
    pub ci95: f64,
}

/// Two-sided 97.5% quantile of Student's t with `dof` degrees of freedom.
pub fn t975(dof: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => f64::INFINITY,
        d if d <= 30 => T[d - 1],
        d if d <= 60 => 2.042 - (d - 30) as f64 * (2.042 - 2.000) / 30.0,
        d if d <= 120 => 2.000 - (d - 60) as f64 * (2.000 - 1.980) / 60.0,
        _ => 1.960,
    }
}

impl Estimate {
    /// Estimate of the mean of `xs`.
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n.max(1) as f64;
        if n < 2 {
            return Self { mean, ci95: 0.0 };
        }
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Self {
            mean,
            ci95: t975(n - 1) * (var / n as f64).sqrt(),
        }
    }
}

/// Summary of one configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// Label.
    pub label: String,
    /// Strategy kind.
    pub strategy: String,
    /// Tree.
    pub tree: Option<String>,
    /// k.
    pub k: Option<u32>,
    /// δ.
    pub delta: Option<f32>,
    /// λ.
    pub lambda: Option<f32>,
    /// LANTERN's rule when not the paper's (`bounded`).
    pub relax: Option<String>,
    /// Official residual quirks (speculative kinds).
    pub official_compat: Option<bool>,
    /// SJD window.
    pub window: Option<u32>,
    /// Jacobi initialisation (sjd, scd, gsd).
    pub init: Option<String>,
    /// SCD's coupling.
    pub coupling: Option<String>,
    /// GSD's group rule.
    pub grouping: Option<String>,
    /// `fixed`, or `entropy` (entropy-aware temperature).
    pub temperature_rule: String,
    /// AR baseline added automatically.
    pub auto_added: bool,
    /// Temperature.
    pub temperature: f32,
    /// Top-k.
    pub top_k: u32,
    /// Top-p.
    pub top_p: f32,
    /// CFG scale.
    pub cfg: f32,
    /// Images.
    pub images: usize,
    /// Mean accepted length.
    pub tau: Estimate,
    /// Mean target forwards per image (prefill included).
    pub forwards: f64,
    /// Latency per image (ms).
    pub latency_ms: Estimate,
    /// Mean drafting ms per image.
    pub draft_ms: f64,
    /// Mean verification ms per image.
    pub verify_ms: f64,
    /// Share of the rounds' time (drafting + verification) spent outside model forwards:
    /// sampling, tree building, acceptance, copies.
    pub host_share: f64,
    /// τ the tree cost model predicted (configurations of an acceptance rule with an `auto` tree).
    pub predicted_tau: Option<f64>,
    /// Speedup over AR the tree cost model predicted.
    pub predicted_speedup: Option<f64>,
    /// Mean and 95% CI over images of the exact emitted-vs-target TVD at the first drafted
    /// position (images where it was computed).
    pub tvd_emitted: Option<Estimate>,
    /// AR latency / this latency over the images both have (`None` without an AR baseline).
    pub speedup: Option<f64>,
    /// Images the speedup is computed over.
    pub speedup_images: usize,
    /// Whether the drafter was untrained.
    pub drafter_is_random: bool,
    /// Extractor of the set-quality metrics (from `quality.json`).
    pub extractor: Option<String>,
    /// Fréchet distance to the reference set in the extractor's feature space.
    pub fd: Option<f64>,
    /// 95% half-width of `fd` (bootstrap over the images, reference fixed).
    pub fd_ci95: Option<f64>,
    /// Extractor of precision/recall (the same as `extractor` unless `[quality] pr_extractor`).
    pub pr_extractor: Option<String>,
    /// Improved precision.
    pub precision: Option<f64>,
    /// Improved recall.
    pub recall: Option<f64>,
    /// Inception-Score formula over the extractor's classes.
    pub class_score: Option<f64>,
    /// Mean raw CLIP score against the captions (t2i sweeps with `[quality] clip_weights`).
    pub clip_score: Option<f64>,
    /// 95% half-width of the CLIP score's mean.
    pub clip_score_ci95: Option<f64>,
    /// Mean HPSv2 score against the captions (t2i sweeps with `[quality] hps_weights`).
    pub hps_score: Option<f64>,
    /// 95% half-width of the HPSv2 score's mean.
    pub hps_score_ci95: Option<f64>,
    /// Mean token agreement with AR at the same seed.
    pub drift_token_agreement: Option<f64>,
    /// PSNR (dB) against AR's image at the same seed.
    pub drift_psnr_db: Option<f64>,
}

/// Sampling settings (as bits) and target model: which rows an AR baseline can stand for.
type SamplingKey = (u32, u32, u32, u32, String, String);

/// One image under one sampling setting.
type ImageKey = (SamplingKey, Option<u32>, Option<u32>, u64);

/// Sampling settings as a hashable key.
fn sampling_key(r: &Record) -> SamplingKey {
    (
        r.temperature.to_bits(),
        r.top_k,
        r.top_p.to_bits(),
        r.cfg.to_bits(),
        r.gpt_model.clone(),
        // Records written before the rule existed used the fixed temperature.
        match r.temperature_rule.as_str() {
            "" => "fixed".into(),
            rule => rule.into(),
        },
    )
}

/// Summarises records by run id, in first-seen order, with quality and the tree cost model's
/// predictions (by run id) where computed.
pub fn summarise(
    records: &[Record],
    quality: Option<&Quality>,
    predictions: &BTreeMap<String, lantern_decoding::cost::Prediction>,
) -> Vec<Summary> {
    let mut groups: BTreeMap<usize, Vec<&Record>> = BTreeMap::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let g = *first.entry(&r.run_id).or_insert(i);
        groups.entry(g).or_default().push(r);
    }
    // AR latency per (sampling, image).
    let mut ar: HashMap<ImageKey, f64> = HashMap::new();
    for r in records.iter().filter(|r| r.strategy == "ar") {
        ar.insert((sampling_key(r), r.class, r.prompt, r.seed), r.latency_ms);
    }
    groups
        .values()
        .map(|rs| {
            let r0 = rs[0];
            let col = |f: fn(&Record) -> f64| rs.iter().map(|r| f(r)).collect::<Vec<_>>();
            let pairs: Vec<(f64, f64)> = rs
                .iter()
                .filter_map(|r| {
                    ar.get(&(sampling_key(r), r.class, r.prompt, r.seed))
                        .map(|&a| (a, r.latency_ms))
                })
                .collect();
            let q = quality.and_then(|q| q.run(&r0.run_id).filter(|x| x.images == rs.len()));
            let speedup = (!pairs.is_empty()).then(|| {
                pairs.iter().map(|p| p.0).sum::<f64>() / pairs.iter().map(|p| p.1).sum::<f64>()
            });
            Summary {
                run_id: r0.run_id.clone(),
                label: r0.label.clone(),
                strategy: r0.strategy.clone(),
                tree: r0.tree.clone(),
                k: r0.k,
                delta: r0.delta,
                lambda: r0.lambda,
                relax: r0.relax.clone(),
                official_compat: r0.official_compat,
                window: r0.window,
                init: r0.init.clone(),
                coupling: r0.coupling.clone(),
                grouping: r0.grouping.clone(),
                temperature_rule: if r0.temperature_rule.is_empty() {
                    "fixed".into()
                } else {
                    r0.temperature_rule.clone()
                },
                auto_added: r0.auto_added,
                temperature: r0.temperature,
                top_k: r0.top_k,
                top_p: r0.top_p,
                cfg: r0.cfg,
                images: rs.len(),
                tau: Estimate::of(&col(|r| r.tau)),
                forwards: Estimate::of(&col(|r| r.steps as f64 + 1.0)).mean,
                latency_ms: Estimate::of(&col(|r| r.latency_ms)),
                draft_ms: Estimate::of(&col(|r| r.draft_ms)).mean,
                verify_ms: Estimate::of(&col(|r| r.verify_ms)).mean,
                host_share: {
                    let rounds: f64 = rs.iter().map(|r| r.draft_ms + r.verify_ms).sum();
                    let forwards: f64 = rs.iter().map(|r| r.forward_ms).sum();
                    if rounds > 0.0 && forwards > 0.0 {
                        (rounds - forwards) / rounds
                    } else {
                        0.0
                    }
                },
                predicted_tau: predictions.get(&r0.run_id).map(|p| p.tau),
                predicted_speedup: predictions.get(&r0.run_id).map(|p| p.speedup),
                tvd_emitted: {
                    let v: Vec<f64> = rs.iter().filter_map(|r| r.tvd_emitted).collect();
                    (!v.is_empty()).then(|| Estimate::of(&v))
                },
                speedup,
                speedup_images: pairs.len(),
                drafter_is_random: r0.drafter_model.as_deref() == Some("random"),
                extractor: q
                    .filter(|x| x.fd.is_some())
                    .and_then(|_| quality.and_then(|q| q.extractor.clone())),
                fd: q.and_then(|x| x.fd),
                fd_ci95: q.and_then(|x| x.fd_ci95),
                pr_extractor: q
                    .filter(|x| x.precision.is_some())
                    .and_then(|_| quality.and_then(|q| q.pr_space().map(String::from))),
                precision: q.and_then(|x| x.precision),
                recall: q.and_then(|x| x.recall),
                class_score: q.and_then(|x| x.class_score),
                clip_score: q.and_then(|x| x.clip_score),
                clip_score_ci95: q.and_then(|x| x.clip_score_ci95),
                hps_score: q.and_then(|x| x.hps_score),
                hps_score_ci95: q.and_then(|x| x.hps_score_ci95),
                drift_token_agreement: q.and_then(|x| x.drift_token_agreement),
                drift_psnr_db: q.and_then(|x| x.drift_psnr_db),
            }
        })
        .collect()
}

/// The summaries as a DataFrame.
pub fn to_frame(s: &[Summary]) -> PolarsResult<DataFrame> {
    macro_rules! c {
        ($name:expr, $f:expr) => {
            Column::new($name.into(), s.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new(
        s.len(),
        vec![
            c!("run_id", |r| r.run_id.clone()),
            c!("label", |r| r.label.clone()),
            c!("strategy", |r| r.strategy.clone()),
            c!("tree", |r| r.tree.clone()),
            c!("k", |r| r.k),
            c!("delta", |r| r.delta),
            c!("lambda", |r| r.lambda),
            c!("relax", |r| r.relax.clone()),
            c!("official_compat", |r| r.official_compat),
            c!("window", |r| r.window),
            c!("init", |r| r.init.clone()),
            c!("coupling", |r| r.coupling.clone()),
            c!("grouping", |r| r.grouping.clone()),
            c!("temperature_rule", |r| r.temperature_rule.clone()),
            c!("auto_added", |r| r.auto_added),
            c!("temperature", |r| r.temperature),
            c!("top_k", |r| r.top_k),
            c!("top_p", |r| r.top_p),
            c!("cfg", |r| r.cfg),
            c!("images", |r| r.images as u32),
            c!("tau_mean", |r| r.tau.mean),
            c!("tau_ci95", |r| r.tau.ci95),
            c!("forwards", |r| r.forwards),
            c!("latency_ms_mean", |r| r.latency_ms.mean),
            c!("latency_ms_ci95", |r| r.latency_ms.ci95),
            c!("draft_ms_mean", |r| r.draft_ms),
            c!("verify_ms_mean", |r| r.verify_ms),
            c!("host_share", |r| r.host_share),
            c!("speedup", |r| r.speedup),
            c!("predicted_tau", |r| r.predicted_tau),
            c!("predicted_speedup", |r| r.predicted_speedup),
            c!("tvd_emitted", |r| r.tvd_emitted.map(|e| e.mean)),
            c!("tvd_emitted_ci95", |r| r.tvd_emitted.map(|e| e.ci95)),
            c!("speedup_images", |r| r.speedup_images as u32),
            c!("drafter_is_random", |r| r.drafter_is_random),
            c!("extractor", |r| r.extractor.clone()),
            c!("fd", |r| r.fd),
            c!("fd_ci95", |r| r.fd_ci95),
            c!("pr_extractor", |r| r.pr_extractor.clone()),
            c!("precision", |r| r.precision),
            c!("recall", |r| r.recall),
            c!("class_score", |r| r.class_score),
            c!("clip_score", |r| r.clip_score),
            c!("clip_score_ci95", |r| r.clip_score_ci95),
            c!("hps_score", |r| r.hps_score),
            c!("hps_score_ci95", |r| r.hps_score_ci95),
            c!("drift_token_agreement", |r| r.drift_token_agreement),
            c!("drift_psnr_db", |r| r.drift_psnr_db),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_matches_hand_computation() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(e.mean, 2.5);
        // s = sqrt(5/3), t(3) = 3.182
        assert!((e.ci95 - 3.182 * (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-9);
        assert_eq!(Estimate::of(&[7.0]).ci95, 0.0);
        assert_eq!(t975(1000), 1.96);
    }
}
