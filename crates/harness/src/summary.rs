//! One row per configuration: means and 95% intervals of τ and latency, and the speedup over the
//! AR rows of the same sweep (same sampling, same images).

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::Serialize;

use crate::columns::Config;
use crate::quality::Quality;
use crate::records::Record;
use lantern_metrics::stats::{ratio_of_medians, Estimate, Spread, RATIO_RESAMPLES};

/// Seed of the speedup intervals' bootstrap (fixed: a report rebuilt from the same journal
/// prints the same intervals).
const SPEEDUP_SEED: u64 = 0x5EED_0FA2;

/// Summary of one configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// Label.
    pub label: String,
    /// What the run was configured to do.
    #[serde(flatten)]
    pub config: Config,
    /// Images.
    pub images: usize,
    /// Mean accepted length.
    pub tau: Estimate,
    /// Mean target forwards per image (prefill included).
    pub forwards: f64,
    /// Mean drafter forwards per image (rows that counted them).
    pub drafter_forwards: Option<f64>,
    /// Latency per image (ms): mean and 95% CI across images (each image's latency being the
    /// mean of its repeats).
    pub latency_ms: Estimate,
    /// Latency per image (ms): median and interquartile range across images.
    pub latency_spread: Spread,
    /// Timed generations per image (`[timing] repeats`).
    pub repeats: usize,
    /// Standard deviation across an image's repeats, averaged over images (ms; `None` with one
    /// repeat): the timing noise, beside the CI across images.
    pub latency_repeat_std_ms: Option<f64>,
    /// Warm-up images run before the timed ones.
    pub warmup: Option<u32>,
    /// Largest peak resident memory of an image of this configuration, MiB.
    pub peak_rss_mb: Option<f64>,
    /// Greedy sweeps: the share of images whose tokens equal AR's at the same condition.
    pub equals_ar: Option<f64>,
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
    /// Images re-timed at least once because the machine was disturbed.
    pub retimed_images: usize,
    /// Images whose kept timing was still disturbed after the last re-timing.
    pub disturbed_images: usize,
    /// Mean over images of the target's regime statistics (see `Record::regime`).
    pub regime: Option<lantern_decoding::regime::Regime>,
    /// Speedup over AR: AR's median latency over this configuration's, on the images both have
    /// (`None` without an AR baseline).
    pub speedup: Option<f64>,
    /// Percentile-bootstrap 95% interval of `speedup`, resampling the paired images.
    pub speedup_ci: Option<(f64, f64)>,
    /// The ratio of mean latencies on the same images (the pre-median definition; one stalled
    /// image moves it).
    pub speedup_of_means: Option<f64>,
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
type SamplingKey = (u64, u32, u64, u64, String, String);

/// One image under one sampling setting.
type ImageKey = (SamplingKey, Option<u32>, Option<u32>, u64);

/// One image of one run: run id, class, prompt, seed.
type RunImage<'a> = (&'a str, Option<u32>, Option<u32>, u64);

/// Sampling settings as a hashable key.
fn sampling_key(r: &Record) -> SamplingKey {
    let c = &r.config;
    (
        c.temperature.to_bits(),
        c.top_k,
        c.top_p.to_bits(),
        c.cfg.to_bits(),
        r.gpt_model.clone(),
        // Records written before the rule existed used the fixed temperature.
        match c.temperature_rule.as_str() {
            "" => "fixed".into(),
            rule => rule.into(),
        },
    )
}

/// Per record, in greedy configurations other than AR: whether its tokens equal those of the AR
/// record with the same sampling, condition and seed (`None` when not greedy or no AR record).
pub fn equals_ar(records: &[Record]) -> Vec<Option<bool>> {
    let ar: HashMap<ImageKey, &[u32]> = records
        .iter()
        .filter(|r| r.config.strategy == "ar")
        .map(|r| {
            (
                (sampling_key(r), r.class, r.prompt, r.seed),
                r.tokens.as_slice(),
            )
        })
        .collect();
    records
        .iter()
        .map(|r| {
            if !r.config.is_greedy() || r.config.strategy == "ar" {
                return None;
            }
            ar.get(&(sampling_key(r), r.class, r.prompt, r.seed))
                .map(|t| *t == r.tokens.as_slice())
        })
        .collect()
}

/// The tree of a configuration from its records' trees: an `auto` tree re-chosen during the
/// run reads `auto→chain:6→chain:3` (every tree in the order it ran).
fn tree_of<'a>(records: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let mut trees: Vec<&str> = Vec::new();
    for t in records.flatten() {
        if trees.last() != Some(&t) {
            trees.push(t);
        }
    }
    let (first, rest) = trees.split_first()?;
    Some(rest.iter().fold(first.to_string(), |acc, t| {
        format!("{acc}→{}", t.strip_prefix("auto→").unwrap_or(t))
    }))
}

/// Summarises records by run id, in first-seen order, with each record's [`equals_ar`], quality
/// and the tree cost model's predictions (by run id) where computed.
pub fn summarise(
    records: &[Record],
    same_as_ar: &[Option<bool>],
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
    for r in records.iter().filter(|r| r.config.strategy == "ar") {
        ar.insert((sampling_key(r), r.class, r.prompt, r.seed), r.latency_ms);
    }
    let same: HashMap<RunImage, bool> = records
        .iter()
        .zip(same_as_ar.iter().copied())
        .filter_map(|(r, e)| e.map(|e| ((r.run_id.as_str(), r.class, r.prompt, r.seed), e)))
        .collect();
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
            let speedup_of_means = (!pairs.is_empty()).then(|| {
                pairs.iter().map(|p| p.0).sum::<f64>() / pairs.iter().map(|p| p.1).sum::<f64>()
            });
            let speedup = ratio_of_medians(&pairs, RATIO_RESAMPLES, SPEEDUP_SEED);
            Summary {
                run_id: r0.run_id.clone(),
                label: r0.label.clone(),
                config: Config {
                    tree: tree_of(rs.iter().map(|r| r.config.tree.as_deref())),
                    temperature_rule: if r0.config.temperature_rule.is_empty() {
                        "fixed".into()
                    } else {
                        r0.config.temperature_rule.clone()
                    },
                    ..r0.config.clone()
                },
                images: rs.len(),
                tau: Estimate::of(&col(|r| r.tau)),
                forwards: Estimate::of(&col(|r| r.target_forwards.unwrap_or(r.steps + 1) as f64))
                    .mean,
                drafter_forwards: {
                    let v: Vec<f64> = rs
                        .iter()
                        .filter_map(|r| r.drafter_forwards.map(f64::from))
                        .collect();
                    (v.len() == rs.len()).then(|| Estimate::of(&v).mean)
                },
                latency_ms: Estimate::of(&col(|r| r.latency_ms)),
                latency_spread: Spread::of(&col(|r| r.latency_ms)),
                repeats: r0.latencies_ms.len().max(1),
                latency_repeat_std_ms: (r0.latencies_ms.len() > 1).then(|| {
                    let stds: Vec<f64> = rs
                        .iter()
                        .map(|r| lantern_metrics::stats::std_dev(&r.latencies_ms))
                        .collect();
                    stds.iter().sum::<f64>() / stds.len() as f64
                }),
                warmup: r0.warmup,
                peak_rss_mb: rs.iter().filter_map(|r| r.peak_rss_mb).reduce(f64::max),
                equals_ar: {
                    let v: Vec<bool> = rs
                        .iter()
                        .filter_map(|r| {
                            same.get(&(r.run_id.as_str(), r.class, r.prompt, r.seed))
                                .copied()
                        })
                        .collect();
                    (!v.is_empty())
                        .then(|| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64)
                },
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
                retimed_images: rs.iter().filter(|r| r.retimed > 0).count(),
                disturbed_images: rs.iter().filter(|r| r.disturbed.is_some()).count(),
                regime: lantern_decoding::regime::Regime::mean(
                    rs.iter().filter_map(|r| r.regime.as_ref()),
                ),
                speedup: speedup.map(|r| r.value),
                speedup_ci: speedup.map(|r| (r.lo, r.hi)),
                speedup_of_means,
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
    let mut columns = vec![
        c!("run_id", |r| r.run_id.clone()),
        c!("label", |r| r.label.clone()),
    ];
    columns.extend(Config::columns(s.iter().map(|r| &r.config)));
    columns.extend([
        c!("images", |r| r.images as u32),
        c!("tau_mean", |r| r.tau.mean),
        c!("tau_ci95", |r| r.tau.ci95),
        c!("forwards", |r| r.forwards),
        c!("drafter_forwards", |r| r.drafter_forwards),
        c!("latency_ms_mean", |r| r.latency_ms.mean),
        c!("latency_ms_ci95", |r| r.latency_ms.ci95),
        c!("latency_median_ms", |r| r.latency_spread.median),
        c!("latency_q1_ms", |r| r.latency_spread.q1),
        c!("latency_q3_ms", |r| r.latency_spread.q3),
        c!("repeats", |r| r.repeats as u32),
        c!("latency_repeat_std_ms", |r| r.latency_repeat_std_ms),
        c!("warmup", |r| r.warmup),
        c!("peak_rss_mb", |r| r.peak_rss_mb),
        c!("equals_ar", |r| r.equals_ar),
        c!("draft_ms_mean", |r| r.draft_ms),
        c!("verify_ms_mean", |r| r.verify_ms),
        c!("host_share", |r| r.host_share),
        c!("speedup", |r| r.speedup),
        c!("speedup_lo", |r| r.speedup_ci.map(|c| c.0)),
        c!("speedup_hi", |r| r.speedup_ci.map(|c| c.1)),
        c!("speedup_of_means", |r| r.speedup_of_means),
        c!("predicted_tau", |r| r.predicted_tau),
        c!("predicted_speedup", |r| r.predicted_speedup),
        c!("tvd_emitted", |r| r.tvd_emitted.map(|e| e.mean)),
        c!("tvd_emitted_ci95", |r| r.tvd_emitted.map(|e| e.ci95)),
        c!("retimed_images", |r| r.retimed_images as u32),
        c!("disturbed_images", |r| r.disturbed_images as u32),
        c!("target_entropy", |r| r.regime.map(|g| g.entropy)),
        c!("target_max_p", |r| r.regime.map(|g| g.max_p)),
        c!("target_top10", |r| r.regime.map(|g| g.top10)),
        c!("draft_accept1", |r| r.regime.and_then(|g| g.accept1)),
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
    ]);
    DataFrame::new(s.len(), columns)
}

#[cfg(test)]
mod tests {
    use super::tree_of;

    #[test]
    fn a_rechosen_auto_tree_names_every_tree_in_order() {
        let one = [Some("auto→chain:6"), Some("auto→chain:6")];
        assert_eq!(tree_of(one.into_iter()).as_deref(), Some("auto→chain:6"));
        let switched = [
            Some("auto→chain:6"),
            Some("auto→chain:3"),
            Some("auto→chain:3"),
        ];
        assert_eq!(
            tree_of(switched.into_iter()).as_deref(),
            Some("auto→chain:6→chain:3")
        );
        assert_eq!(tree_of([None, None].into_iter()), None);
    }
}
