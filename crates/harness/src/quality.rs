//! Quality of each configuration's images, computed after generation from the journal's tokens:
//! Fréchet distance and precision/recall against a reference set (features of a named extractor),
//! and drift from the AR image at the same seed (token agreement, pixel PSNR). Written to
//! `quality.json`, which the report merges into the summaries.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lantern_metrics::drift::{pixel_mse, psnr, token_agreement};
use lantern_metrics::reference::cached_features;
use lantern_metrics::{
    frechet_distance_sets, inception_score, precision_recall, FeatureExtractor, FeatureSet,
    ReferenceTokens,
};
use lantern_models::VqModel;
use serde::{Deserialize, Serialize};

use crate::records::Record;
use crate::summary::Estimate;
use lantern_metrics::clip::ClipScorer;

/// Images decoded per batch.
const BATCH: usize = 16;

/// Quality of one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunQuality {
    /// Run id.
    pub run_id: String,
    /// Images the set metrics used.
    pub images: usize,
    /// Fréchet distance to the reference (in the extractor's feature space).
    pub fd: Option<f64>,
    /// Improved precision.
    pub precision: Option<f64>,
    /// Improved recall.
    pub recall: Option<f64>,
    /// exp E KL(p(y|x) ‖ p(y)) over the extractor's classifier (the Inception Score formula;
    /// Inception Score proper only when the extractor is Inception).
    pub class_score: Option<f64>,
    /// Mean raw CLIP score of the images against their captions (t2i sweeps with
    /// `[quality] clip_weights`).
    #[serde(default)]
    pub clip_score: Option<f64>,
    /// 95% half-width of the CLIP score's mean.
    #[serde(default)]
    pub clip_score_ci95: Option<f64>,
    /// Images with an AR counterpart (same sampling, condition and seed).
    pub drift_images: usize,
    /// Mean token agreement with the AR image.
    pub drift_token_agreement: Option<f64>,
    /// PSNR (dB) of the mean pixel MSE against the AR image.
    pub drift_psnr_db: Option<f64>,
}

/// Drift of one image from its AR counterpart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageDrift {
    /// Run id.
    pub run_id: String,
    /// Class.
    pub class: Option<u32>,
    /// Prompt.
    pub prompt: Option<u32>,
    /// Seed.
    pub seed: u64,
    /// Share of tokens equal to AR's.
    pub token_agreement: f64,
    /// Pixel MSE against AR's image (0–255 units).
    pub pixel_mse: f64,
}

/// Everything `quality.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Extractor of the set metrics (`None`: no reference, drift only).
    pub extractor: Option<String>,
    /// Reference set description.
    pub reference: Option<String>,
    /// Reference images.
    pub reference_images: usize,
    /// k of precision/recall.
    pub k: usize,
    /// CLIP model of the CLIP score (`clip:<file stem>`), when computed.
    #[serde(default)]
    pub clip_model: Option<String>,
    /// Per configuration.
    pub runs: Vec<RunQuality>,
    /// Per image.
    pub images: Vec<ImageDrift>,
}

impl Quality {
    /// Reads `dir/quality.json` if present.
    pub fn load(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join("quality.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Quality of `run_id`.
    pub fn run(&self, run_id: &str) -> Option<&RunQuality> {
        self.runs.iter().find(|r| r.run_id == run_id)
    }
}

/// Decoded images of one configuration, as the metrics need them.
struct Decoded {
    features: Option<FeatureSet>,
    /// Class probabilities and class count, when the extractor classifies.
    probs: Option<(Vec<f32>, usize)>,
    pixels: Vec<Vec<u8>>,
    /// CLIP score of each image with a caption.
    clip_scores: Vec<f32>,
}

/// The CLIP model and the prompt set's captions (record `prompt` = index) of the CLIP score.
pub type ClipSetup<'a> = (&'a ClipScorer, &'a [String]);

/// Features, class probabilities, 8-bit pixels and CLIP scores (against `captions[prompt]`)
/// of tokenised images, in batches.
fn decode_all(
    vq: &VqModel,
    tokens: &[Vec<u32>],
    prompts: &[Option<u32>],
    grid: usize,
    extractor: Option<&dyn FeatureExtractor>,
    clip: Option<ClipSetup>,
) -> Result<Decoded, String> {
    let mut values = Vec::new();
    let mut probs: Option<(Vec<f32>, usize)> = None;
    let mut pixels = Vec::new();
    let mut clip_scores = Vec::new();
    for (chunk, chunk_prompts) in tokens.chunks(BATCH).zip(prompts.chunks(BATCH)) {
        let img = vq.decode_tokens(chunk, grid);
        if let Some((scorer, captions)) = clip {
            let texts: Option<Vec<String>> = chunk_prompts
                .iter()
                .map(|p| p.and_then(|i| captions.get(i as usize).cloned()))
                .collect();
            if let Some(texts) = texts {
                clip_scores.extend(
                    scorer
                        .score(img.clone(), &texts)
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        if let Some(x) = extractor {
            let (set, p) = x
                .features_and_probs(img.clone())
                .map_err(|e| e.to_string())?;
            values.extend(set.values);
            if let Some((p, c)) = p {
                probs.get_or_insert_with(|| (Vec::new(), c)).0.extend(p);
            }
        }
        pixels.extend(crate::images::to_rgb8(img).into_iter().map(|(_, _, d)| d));
    }
    let features = match extractor {
        Some(x) => Some(FeatureSet::new(&x.name(), x.dim(), values).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(Decoded {
        features,
        probs,
        pixels,
        clip_scores,
    })
}

/// The AR image a record is compared with: same target, sampling, condition and seed.
type Twin = (String, u32, u32, u32, u32, Option<u32>, Option<u32>, u64);

fn twin(r: &Record) -> Twin {
    (
        r.gpt_model.clone(),
        r.temperature.to_bits(),
        r.top_k,
        r.top_p.to_bits(),
        r.cfg.to_bits(),
        r.class,
        r.prompt,
        r.seed,
    )
}

/// Computes the quality of every configuration in `records`.
pub fn compute(
    records: &[Record],
    vq: &VqModel,
    grid: usize,
    reference: Option<(&ReferenceTokens, &dyn FeatureExtractor)>,
    clip: Option<ClipSetup>,
    cache_dir: &Path,
    k: usize,
) -> Result<Quality, String> {
    let ref_features = match reference {
        Some((r, x)) => Some(
            cached_features(r, cache_dir, &x.name(), || {
                decode_all(
                    vq,
                    &r.tokens,
                    &vec![None; r.tokens.len()],
                    r.grid,
                    Some(x),
                    None,
                )
                .map(|d| d.features.expect("extractor given"))
                .map_err(lantern_metrics::MetricError::Shape)
            })
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let mut groups: BTreeMap<usize, Vec<&Record>> = BTreeMap::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let g = *first.entry(&r.run_id).or_insert(i);
        groups.entry(g).or_default().push(r);
    }
    let extractor = reference.map(|(_, x)| x);
    let mut decoded: HashMap<String, Decoded> = HashMap::new();
    for rs in groups.values() {
        let tokens: Vec<Vec<u32>> = rs.iter().map(|r| r.tokens.clone()).collect();
        let prompts: Vec<Option<u32>> = rs.iter().map(|r| r.prompt).collect();
        decoded.insert(
            rs[0].run_id.clone(),
            decode_all(vq, &tokens, &prompts, grid, extractor, clip)?,
        );
    }
    let mut ar: HashMap<Twin, (&Record, &[u8])> = HashMap::new();
    for rs in groups.values().filter(|rs| rs[0].strategy == "ar") {
        let pixels = &decoded[&rs[0].run_id].pixels;
        for (r, p) in rs.iter().zip(pixels) {
            ar.insert(twin(r), (r, p.as_slice()));
        }
    }
    let mut runs = Vec::new();
    let mut images = Vec::new();
    for rs in groups.values() {
        let id = &rs[0].run_id;
        let Decoded {
            features,
            probs,
            pixels,
            clip_scores,
        } = &decoded[id];
        let clip = (!clip_scores.is_empty())
            .then(|| Estimate::of(&clip_scores.iter().map(|&c| c as f64).collect::<Vec<_>>()));
        let class_score = match probs {
            Some((p, c)) => Some(inception_score(p, *c, 1).map_err(|e| e.to_string())?.0),
            None => None,
        };
        let (fd, pr) = match (features, &ref_features) {
            (Some(f), Some(rf)) if f.count() >= 2 => {
                let fd = frechet_distance_sets(f, rf).map_err(|e| e.to_string())?;
                let pr = (f.count() > k)
                    .then(|| precision_recall(rf, f, k))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                (Some(fd), pr)
            }
            _ => (None, None),
        };
        let mut drifts = Vec::new();
        if rs[0].strategy != "ar" {
            for (r, p) in rs.iter().zip(pixels) {
                if let Some((a, ap)) = ar.get(&twin(r)) {
                    let d = ImageDrift {
                        run_id: id.clone(),
                        class: r.class,
                        prompt: r.prompt,
                        seed: r.seed,
                        token_agreement: token_agreement(&r.tokens, &a.tokens),
                        pixel_mse: pixel_mse(p, ap),
                    };
                    drifts.push(d);
                }
            }
        }
        let n = drifts.len();
        runs.push(RunQuality {
            run_id: id.clone(),
            images: rs.len(),
            fd,
            precision: pr.map(|p| p.precision),
            recall: pr.map(|p| p.recall),
            class_score,
            clip_score: clip.map(|c| c.mean),
            clip_score_ci95: clip.map(|c| c.ci95),
            drift_images: n,
            drift_token_agreement: (n > 0)
                .then(|| drifts.iter().map(|d| d.token_agreement).sum::<f64>() / n as f64),
            drift_psnr_db: (n > 0)
                .then(|| psnr(drifts.iter().map(|d| d.pixel_mse).sum::<f64>() / n as f64)),
        });
        images.extend(drifts);
    }
    Ok(Quality {
        extractor: extractor.map(|x| x.name()),
        reference: reference.map(|(r, _)| r.source.clone()),
        reference_images: reference.map_or(0, |(r, _)| r.tokens.len()),
        k,
        clip_model: clip.map(|(c, _)| c.name()),
        runs,
        images,
    })
}

/// Writes `dir/quality.json`.
pub fn save(dir: &Path, q: &Quality) -> std::io::Result<()> {
    let tmp = dir.join("quality.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(q).expect("json"))?;
    std::fs::rename(tmp, dir.join("quality.json"))
}
