//! Quality of each configuration's images, computed after generation from the journal's tokens:
//! Fréchet distance and precision/recall against a reference set (features of named extractors:
//! one for FD and the class score, optionally another for precision/recall, as LANTERN measures
//! FID with Inception and P&R with VGG16), image–text scores of t2i runs (CLIP score, HPSv2), and
//! drift from the AR image at the same seed (token agreement, pixel PSNR). Written to
//! `quality.json`, which the report merges into the summaries.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lantern_metrics::bootstrap::{frechet_with_ci95, RESAMPLES};
use lantern_metrics::drift::{pixel_mse, psnr, token_agreement};
use lantern_metrics::reference::cached_features;
use lantern_metrics::{
    inception_score, precision_recall, FeatureExtractor, FeatureSet, PrecisionRecall,
    ReferenceTokens,
};
use lantern_models::VqModel;
use serde::{Deserialize, Serialize};

use crate::records::Record;
use lantern_metrics::clip::ClipScorer;
use lantern_metrics::stats::Estimate;

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
    /// 95% half-width of `fd` from a bootstrap over this configuration's images (reference
    /// fixed; [`lantern_metrics::bootstrap`]).
    #[serde(default)]
    pub fd_ci95: Option<f64>,
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
    /// Mean HPSv2 score of the images against their captions (`[quality] hps_weights`).
    #[serde(default)]
    pub hps_score: Option<f64>,
    /// 95% half-width of the HPSv2 score's mean.
    #[serde(default)]
    pub hps_score_ci95: Option<f64>,
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
    /// Extractor of the Fréchet distance and class score (`None`: no reference, drift only).
    pub extractor: Option<String>,
    /// Extractor of precision/recall (`None` in older files: the same as `extractor`).
    #[serde(default)]
    pub pr_extractor: Option<String>,
    /// Reference set description.
    pub reference: Option<String>,
    /// Reference images.
    pub reference_images: usize,
    /// k of precision/recall.
    pub k: usize,
    /// CLIP model of the CLIP score (`clip:<file stem>`), when computed.
    #[serde(default)]
    pub clip_model: Option<String>,
    /// HPSv2 model (`hpsv2:<file stem>`), when computed.
    #[serde(default)]
    pub hps_model: Option<String>,
    /// Per configuration.
    pub runs: Vec<RunQuality>,
    /// Per image: drift from AR.
    pub images: Vec<ImageDrift>,
    /// Per image: CLIP and HPSv2 scores (t2i sweeps with those models).
    #[serde(default)]
    pub image_scores: Vec<ImageScore>,
}

/// Image–text scores of one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageScore {
    /// Run id.
    pub run_id: String,
    /// Prompt.
    pub prompt: Option<u32>,
    /// Seed.
    pub seed: u64,
    /// Raw CLIP score against "A photo depicts " + the caption.
    pub clip_score: Option<f64>,
    /// HPSv2 score against the caption.
    pub hps_score: Option<f64>,
}

impl Quality {
    /// Reads `dir/quality.json` and the shards' `quality.shard-I-of-N.json`, merged (each shard
    /// scored its own configurations); `None` when there are none.
    pub fn load(dir: &Path) -> Option<Self> {
        let files = crate::records::results_files(dir, "quality", "json").ok()?;
        let mut merged: Option<Self> = None;
        for f in files {
            let Some(q) = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| serde_json::from_str::<Self>(&t).ok())
            else {
                continue;
            };
            match &mut merged {
                None => merged = Some(q),
                Some(m) => {
                    let known: std::collections::HashSet<String> =
                        m.runs.iter().map(|r| r.run_id.clone()).collect();
                    let fresh = |id: &String| !known.contains(id);
                    m.images
                        .extend(q.images.into_iter().filter(|x| fresh(&x.run_id)));
                    m.image_scores
                        .extend(q.image_scores.into_iter().filter(|x| fresh(&x.run_id)));
                    m.runs
                        .extend(q.runs.into_iter().filter(|x| fresh(&x.run_id)));
                }
            }
        }
        merged
    }

    /// Quality of `run_id`.
    pub fn run(&self, run_id: &str) -> Option<&RunQuality> {
        self.runs.iter().find(|r| r.run_id == run_id)
    }

    /// The feature space of precision/recall.
    pub fn pr_space(&self) -> Option<&str> {
        self.pr_extractor.as_deref().or(self.extractor.as_deref())
    }
}

/// What the quality pass measures with.
#[derive(Clone, Copy, Default)]
pub struct Scorers<'a> {
    /// Real images' tokens for the set metrics (none: drift and text scores only).
    pub reference: Option<&'a ReferenceTokens>,
    /// Feature space of the Fréchet distance and the class score.
    pub extractor: Option<&'a dyn FeatureExtractor>,
    /// Feature space of precision/recall, when it is not `extractor`'s.
    pub pr_extractor: Option<&'a dyn FeatureExtractor>,
    /// Captions of the prompt set (a record's `prompt` indexes them).
    pub captions: &'a [String],
    /// CLIP model of the CLIP score.
    pub clip: Option<&'a ClipScorer>,
    /// HPSv2 model.
    pub hps: Option<&'a ClipScorer>,
    /// Identity of the tokenizer that decodes the reference tokens (cached reference features
    /// are keyed by it and by each extractor's identity).
    pub tokenizer: &'a str,
}

impl<'a> Scorers<'a> {
    /// The feature extractors the set metrics need (FD's first), when there is a reference.
    fn extractors(&self) -> Vec<&'a dyn FeatureExtractor> {
        match (self.reference, self.extractor) {
            (Some(_), Some(x)) => std::iter::once(x).chain(self.pr_extractor).collect(),
            _ => Vec::new(),
        }
    }

    /// The image–text scorers.
    fn text_scorers(&self) -> Vec<&'a ClipScorer> {
        self.clip.into_iter().chain(self.hps).collect()
    }
}

/// Decoded images of one configuration, as the metrics need them.
struct Decoded {
    /// Features in each of [`Scorers::extractors`]' spaces.
    features: Vec<FeatureSet>,
    /// Class probabilities and class count, when the first extractor classifies.
    probs: Option<(Vec<f32>, usize)>,
    pixels: Vec<Vec<u8>>,
    /// Scores of each of [`Scorers::text_scorers`] (images with a caption).
    text_scores: Vec<Vec<f32>>,
}

/// Features, class probabilities, 8-bit pixels and image–text scores (against
/// `captions[prompt]`) of tokenised images, in batches.
fn decode_all(
    vq: &VqModel,
    tokens: &[Vec<u32>],
    prompts: &[Option<u32>],
    grid: [usize; 2],
    extractors: &[&dyn FeatureExtractor],
    text: (&[&ClipScorer], &[String]),
) -> Result<Decoded, String> {
    let (scorers, captions) = text;
    let mut values = vec![Vec::new(); extractors.len()];
    let mut probs: Option<(Vec<f32>, usize)> = None;
    let mut pixels = Vec::new();
    let mut text_scores = vec![Vec::new(); scorers.len()];
    for (chunk, chunk_prompts) in tokens.chunks(BATCH).zip(prompts.chunks(BATCH)) {
        let img = vq.decode_tokens_grid(chunk, grid);
        let texts: Option<Vec<String>> = chunk_prompts
            .iter()
            .map(|p| p.and_then(|i| captions.get(i as usize).cloned()))
            .collect();
        if let Some(texts) = texts {
            for (scorer, out) in scorers.iter().zip(&mut text_scores) {
                out.extend(
                    scorer
                        .score(img.clone(), &texts)
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        for (i, (x, out)) in extractors.iter().zip(&mut values).enumerate() {
            let (set, p) = if i == 0 {
                x.features_and_probs(img.clone())
            } else {
                x.features(img.clone()).map(|f| (f, None))
            }
            .map_err(|e| e.to_string())?;
            out.extend(set.values);
            if let Some((p, c)) = p {
                probs.get_or_insert_with(|| (Vec::new(), c)).0.extend(p);
            }
        }
        pixels.extend(crate::images::to_rgb8(img).into_iter().map(|(_, _, d)| d));
    }
    let features = extractors
        .iter()
        .zip(values)
        .map(|(x, v)| FeatureSet::new(&x.name(), x.dim(), v).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    Ok(Decoded {
        features,
        probs,
        pixels,
        text_scores,
    })
}

/// The AR image a record is compared with: same target, sampling, condition and seed.
type Twin = (String, u64, u32, u64, u64, Option<u32>, Option<u32>, u64);

fn twin(r: &Record) -> Twin {
    (
        r.gpt_model.clone(),
        r.config.temperature.to_bits(),
        r.config.top_k,
        r.config.top_p.to_bits(),
        r.config.cfg.to_bits(),
        r.class,
        r.prompt,
        r.seed,
    )
}

/// A Fréchet distance and its 95% half-width.
pub type Fd = (f64, f64);

/// Fréchet distance (with its bootstrap 95% half-width) and precision/recall of a set of images'
/// features against the reference's (`sets[0]` is FD's space, the last P&R's): the one rule of
/// sweeps and `lantern score`. FD needs 2 images on each side, P&R more than `k`.
pub fn set_metrics(
    sets: &[FeatureSet],
    reference: &[FeatureSet],
    k: usize,
) -> Result<(Option<Fd>, Option<PrecisionRecall>), String> {
    let (Some(f), Some(rf)) = (sets.first(), reference.first()) else {
        return Ok((None, None));
    };
    if f.count() < 2 || rf.count() < 2 {
        return Ok((None, None));
    }
    let fd = frechet_with_ci95(f, rf, RESAMPLES, 0).map_err(|e| e.to_string())?;
    let (pf, prf) = (
        sets.last().expect("non-empty"),
        reference.last().expect("non-empty"),
    );
    let pr = (pf.count() > k && prf.count() > k)
        .then(|| precision_recall(prf, pf, k))
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((Some(fd), pr))
}

/// Computes the quality of every configuration in `records`.
pub fn compute(
    records: &[Record],
    vq: &VqModel,
    grid: [usize; 2],
    scorers: &Scorers,
    cache_dir: &Path,
    k: usize,
) -> Result<Quality, String> {
    let extractors = scorers.extractors();
    let text_scorers = scorers.text_scorers();
    let mut ref_features = Vec::new();
    if let Some(r) = scorers.reference {
        for x in &extractors {
            let identity = format!("{}|{}", x.identity(), scorers.tokenizer);
            ref_features.push(
                cached_features(r, cache_dir, (&x.name(), &identity), || {
                    let prompts = vec![None; r.tokens.len()];
                    decode_all(vq, &r.tokens, &prompts, [r.grid, r.grid], &[*x], (&[], &[]))
                        .map(|mut d| d.features.remove(0))
                        .map_err(lantern_metrics::MetricError::Shape)
                })
                .map_err(|e| e.to_string())?,
            );
        }
    }
    let mut groups: BTreeMap<usize, Vec<&Record>> = BTreeMap::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let g = *first.entry(&r.run_id).or_insert(i);
        groups.entry(g).or_default().push(r);
    }
    let mut decoded: HashMap<String, Decoded> = HashMap::new();
    for rs in groups.values() {
        let tokens: Vec<Vec<u32>> = rs.iter().map(|r| r.tokens.clone()).collect();
        let prompts: Vec<Option<u32>> = rs.iter().map(|r| r.prompt).collect();
        decoded.insert(
            rs[0].run_id.clone(),
            decode_all(
                vq,
                &tokens,
                &prompts,
                grid,
                &extractors,
                (&text_scorers, scorers.captions),
            )?,
        );
    }
    let mut ar: HashMap<Twin, (&Record, &[u8])> = HashMap::new();
    for rs in groups.values().filter(|rs| rs[0].config.strategy == "ar") {
        let pixels = &decoded[&rs[0].run_id].pixels;
        for (r, p) in rs.iter().zip(pixels) {
            ar.insert(twin(r), (r, p.as_slice()));
        }
    }
    let mut runs = Vec::new();
    let mut images = Vec::new();
    let mut image_scores = Vec::new();
    for rs in groups.values() {
        let id = &rs[0].run_id;
        let Decoded {
            features,
            probs,
            pixels,
            text_scores,
        } = &decoded[id];
        // Text scores come in `text_scorers` order: CLIP's first when present.
        let mut estimates = text_scores.iter().map(|scores| {
            (!scores.is_empty())
                .then(|| Estimate::of(&scores.iter().map(|&c| c as f64).collect::<Vec<_>>()))
        });
        let clip = scorers.clip.and_then(|_| estimates.next().flatten());
        let hps = scorers.hps.and_then(|_| estimates.next().flatten());
        // Per image, when every image of the run was scored.
        let mut per_image = text_scores
            .iter()
            .map(|s| (s.len() == rs.len()).then_some(s));
        let clip_images = scorers.clip.and_then(|_| per_image.next().flatten());
        let hps_images = scorers.hps.and_then(|_| per_image.next().flatten());
        if clip_images.is_some() || hps_images.is_some() {
            for (i, r) in rs.iter().enumerate() {
                image_scores.push(ImageScore {
                    run_id: id.clone(),
                    prompt: r.prompt,
                    seed: r.seed,
                    clip_score: clip_images.map(|s| s[i] as f64),
                    hps_score: hps_images.map(|s| s[i] as f64),
                });
            }
        }
        let class_score = match probs {
            Some((p, c)) => Some(inception_score(p, *c, 1).map_err(|e| e.to_string())?.0),
            None => None,
        };
        let (fd, pr) = set_metrics(features, &ref_features, k)?;
        let mut drifts = Vec::new();
        if rs[0].config.strategy != "ar" {
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
            fd: fd.map(|f| f.0),
            fd_ci95: fd.map(|f| f.1),
            precision: pr.map(|p| p.precision),
            recall: pr.map(|p| p.recall),
            class_score,
            clip_score: clip.map(|c| c.mean),
            clip_score_ci95: clip.map(|c| c.ci95),
            hps_score: hps.map(|c| c.mean),
            hps_score_ci95: hps.map(|c| c.ci95),
            drift_images: n,
            drift_token_agreement: (n > 0)
                .then(|| drifts.iter().map(|d| d.token_agreement).sum::<f64>() / n as f64),
            drift_psnr_db: (n > 0)
                .then(|| psnr(drifts.iter().map(|d| d.pixel_mse).sum::<f64>() / n as f64)),
        });
        images.extend(drifts);
    }
    Ok(Quality {
        extractor: extractors.first().map(|x| x.name()),
        pr_extractor: extractors.last().map(|x| x.name()),
        reference: scorers.reference.map(|r| r.source.clone()),
        reference_images: scorers.reference.map_or(0, |r| r.tokens.len()),
        k,
        clip_model: scorers.clip.map(|c| c.score_name()),
        hps_model: scorers.hps.map(|c| c.score_name()),
        runs,
        images,
        image_scores,
    })
}

/// Writes `dir/name` (`quality.json`, or a shard's `quality.shard-I-of-N.json`).
pub fn save(dir: &Path, name: &str, q: &Quality) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(q).expect("json"))?;
    std::fs::rename(tmp, dir.join(name))
}
