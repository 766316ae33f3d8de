//! `lantern score`: quality of a folder of images made anywhere — Fréchet distance, improved
//! precision/recall and class score against a reference folder in named feature spaces (P&R in
//! its own, e.g. VGG16's, when asked), and CLIP score ("A photo depicts " + caption, raw cosine)
//! and HPSv2 against captions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lantern_harness::extractors::{
    load_clip, load_hps, load_pretrained, ExtractorSpec, PRETRAINED,
};
use lantern_metrics::clip::{ClipScorer, PROMPT_PREFIX};
use lantern_metrics::stats::Estimate;
use lantern_metrics::{inception_score, ClassProbs, FeatureExtractor, FeatureSet};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;

/// Images per forward pass (images of one size share a batch).
const BATCH: usize = 16;

/// Arguments of `lantern score`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder of generated images (PNG or JPEG; every file in it is scored).
    #[arg(long)]
    images: PathBuf,
    /// Folder of real images: Fréchet distance and precision/recall against it.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Feature space of the Fréchet distance, precision/recall and class score.
    #[arg(long, default_value = "efficientnet-lite0", value_parser = PRETRAINED)]
    extractor: String,
    /// Weights of `inception-v3-fid` (`pt_inception-2015-12-05-6726825d.pth`), `clip` or
    /// `vgg16` (`vgg16-397923af.pth`).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Feature space of precision/recall when it is not `--extractor`'s (LANTERN: `vgg16`).
    #[arg(long, value_parser = PRETRAINED)]
    pr_extractor: Option<String>,
    /// Weights of `--pr-extractor`.
    #[arg(long, requires = "pr_extractor")]
    pr_weights: Option<PathBuf>,
    /// How `inception-v3-fid` resizes to 299.
    #[arg(long, default_value = "clean", value_parser = ["clean", "pytorch-fid"])]
    inception_resize: String,
    /// Neighbours of the precision/recall radii.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    k: u64,
    /// Tab-separated `file<TAB>caption` lines, one per image: CLIP score and/or HPSv2.
    #[arg(long)]
    captions: Option<PathBuf>,
    /// CLIP ViT state dict for the CLIP score (e.g. OpenAI ViT-B/32 saved as a state dict).
    #[arg(long, requires = "captions")]
    clip: Option<PathBuf>,
    /// HPSv2 checkpoint (`HPS_v2.1_compressed.pt`) for the HPSv2 score.
    #[arg(long, requires = "captions")]
    hps: Option<PathBuf>,
    /// MLP activation of the CLIP weights (`--clip`, or `--extractor clip`).
    #[arg(long, default_value = "quick-gelu", value_parser = ["quick-gelu", "gelu"])]
    clip_activation: String,
    /// Also write the scores (and per-image CLIP and HPSv2 scores) as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Reference features are cached here, keyed by the extractor (name and weights) and the
    /// reference files' names, sizes and modification times.
    #[arg(long, default_value = "results/.cache")]
    cache: PathBuf,
}

/// Cache file of the reference folder's features under `cache`, keyed by the extractor's
/// identity (name and weights).
fn cache_file(cache: &Path, extractor: &str, identity: &str, files: &[PathBuf]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    identity.hash(&mut h);
    for f in files {
        f.hash(&mut h);
        if let Ok(m) = std::fs::metadata(f) {
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    }
    let slug: String = extractor
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    cache.join(format!("score-reference-{slug}-{:016x}.json", h.finish()))
}

/// Features of the reference folder, from the cache when they are there.
fn reference_features(
    ex: &dyn FeatureExtractor,
    files: &[PathBuf],
    cache: &Path,
    device: &Device,
) -> Result<FeatureSet, String> {
    let path = cache_file(cache, &ex.name(), &ex.identity(), files);
    if let Ok(set) = FeatureSet::load(&path) {
        if set.extractor == ex.name() && set.count() == files.len() {
            println!("reference features from {}", path.display());
            return Ok(set);
        }
    }
    let (set, _) = features(ex, files, device)?;
    match set.save(&path) {
        Ok(()) => println!("reference features cached at {}", path.display()),
        Err(e) => eprintln!("warning: reference features not cached: {e}"),
    }
    Ok(set)
}

/// Image files of `dir`, sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| ["png", "jpg", "jpeg"].contains(&x.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no .png, .jpg or .jpeg files", dir.display()));
    }
    Ok(files)
}

/// `[3, H, W]` pixels in [-1, 1] (channel-major) and the size of one image file.
fn read_image(path: &Path) -> Result<(Vec<f32>, [usize; 2]), String> {
    let img = image::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let data = (0..3)
        .flat_map(|c| img.pixels().map(move |p| p[c] as f32 / 127.5 - 1.0))
        .collect();
    Ok((data, [h as usize, w as usize]))
}

/// Runs `f` over the images of `files` in same-size batches, in file order.
fn batched<T>(
    files: &[PathBuf],
    device: &Device,
    mut f: impl FnMut(Tensor<4>) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(files.len());
    let mut pending: Vec<f32> = Vec::new();
    let mut size: Option<[usize; 2]> = None;
    let mut count = 0;
    let mut flush = |pending: &mut Vec<f32>, size: [usize; 2], count: usize| {
        let data = std::mem::take(pending);
        let x = Tensor::from_data(TensorData::new(data, [count, 3, size[0], size[1]]), device);
        f(x)
    };
    for file in files {
        let (pixels, s) = read_image(file)?;
        if size.is_some_and(|old| old != s) || count == BATCH {
            out.extend(flush(&mut pending, size.expect("set"), count)?);
            count = 0;
        }
        size = Some(s);
        pending.extend(pixels);
        count += 1;
    }
    if count > 0 {
        out.extend(flush(&mut pending, size.expect("set"), count)?);
    }
    Ok(out)
}

/// Feature rows (and class probabilities, when the extractor classifies) of every image.
fn features(
    ex: &dyn FeatureExtractor,
    files: &[PathBuf],
    device: &Device,
) -> Result<(FeatureSet, Option<ClassProbs>), String> {
    let mut classes = 0;
    let rows = batched(files, device, |x| {
        let (set, probs) = ex.features_and_probs(x).map_err(|e| e.to_string())?;
        if let Some((_, c)) = &probs {
            classes = *c;
        }
        let n = set.count();
        Ok((0..n)
            .map(|i| {
                let p = probs.as_ref().map(|(p, c)| p[i * c..(i + 1) * c].to_vec());
                (set.row(i).to_vec(), p)
            })
            .collect())
    })?;
    let values: Vec<f32> = rows.iter().flat_map(|(f, _)| f.iter().copied()).collect();
    let set = FeatureSet::new(&ex.name(), ex.dim(), values).map_err(|e| e.to_string())?;
    let probs: Option<Vec<f32>> = rows
        .into_iter()
        .map(|(_, p)| p)
        .collect::<Option<Vec<_>>>()
        .map(|p| p.concat());
    Ok((set, probs.filter(|_| classes > 0).map(|p| (p, classes))))
}

/// `file<TAB>caption` lines (`#` comments and blank lines skipped) → caption per file name.
fn read_captions(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut captions = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (file, caption) = line.split_once('\t').ok_or_else(|| {
            format!(
                "{} line {}: expected `file<TAB>caption`, found {line:?}",
                path.display(),
                i + 1
            )
        })?;
        captions.insert(file.trim().to_string(), caption.trim().to_string());
    }
    Ok(captions)
}

fn name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// Fréchet distance, precision/recall and class score of `files` against the `reference` folder.
fn set_scores(
    a: &Args,
    files: &[PathBuf],
    reference: &Path,
    device: &Device,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let load = |name: &str, weights: Option<&Path>, flag: &str| {
        let spec = ExtractorSpec {
            name,
            weights,
            clip_activation: &a.clip_activation,
            inception_resize: &a.inception_resize,
        };
        load_pretrained(&spec, device).map_err(|e| format!("{flag} {name}: {e}"))
    };
    let ex = load(&a.extractor, a.weights.as_deref(), "--extractor")?;
    let pr_ex = match &a.pr_extractor {
        Some(x) => Some(load(x, a.pr_weights.as_deref(), "--pr-extractor")?),
        None => None,
    };
    let real_files = image_files(reference)?;
    let (fake, probs) = features(ex.as_ref(), files, device)?;
    let (mut sets, mut refs) = (
        vec![fake],
        vec![reference_features(
            ex.as_ref(),
            &real_files,
            &a.cache,
            device,
        )?],
    );
    if let Some(x) = &pr_ex {
        sets.push(features(x.as_ref(), files, device)?.0);
        refs.push(reference_features(
            x.as_ref(),
            &real_files,
            &a.cache,
            device,
        )?);
    }
    let k = a.k as usize;
    let (fd, pr) = lantern_harness::quality::set_metrics(&sets, &refs, k)?;
    let (fd, fd_ci95) = fd.ok_or("a Fréchet distance needs at least 2 images on each side")?;
    let (real, pr_real) = (&refs[0], refs.last().expect("non-empty"));
    let class_score = probs
        .map(|(p, c)| inception_score(&p, c, 1).map(|s| s.0))
        .transpose()?;
    let label = if ex.name().starts_with("inception-v3-fid") {
        "FID"
    } else {
        "FD"
    };
    println!(
        "{label} ({}) vs {} reference images in {}: {fd:.3} ± {fd_ci95:.3} (95% CI, bootstrap over the images)",
        ex.name(),
        real.count(),
        reference.display()
    );
    match pr {
        Some(pr) => println!(
            "precision {:.3}, recall {:.3} (k = {k}, {})",
            pr.precision, pr.recall, pr_real.extractor
        ),
        None => println!("precision/recall: needs more than k = {k} images on each side"),
    }
    if let Some(s) = class_score {
        println!(
            "class score (Inception-Score formula over {}'s classes): {s:.3}",
            ex.name()
        );
    }
    Ok(serde_json::json!({
        "extractor": ex.name(),
        "pr_extractor": pr_real.extractor,
        "reference": reference,
        "reference_count": real.count(),
        "fd": fd,
        "fd_ci95": fd_ci95,
        "k": k,
        "precision": pr.map(|p| p.precision),
        "recall": pr.map(|p| p.recall),
        "class_score": class_score,
    }))
}

/// Mean score (and per-image scores) of `scorer` over `files` against their captions.
fn text_score(
    scorer: &ClipScorer,
    files: &[PathBuf],
    texts: &[String],
    device: &Device,
) -> Result<serde_json::Value, String> {
    let mut next = 0;
    let scores = batched(files, device, |x| {
        let n = x.dims()[0];
        let s = scorer
            .score(x, &texts[next..next + n])
            .map_err(|e| e.to_string())?;
        next += n;
        Ok(s)
    })?;
    let est = Estimate::of(&scores.iter().map(|&s| s as f64).collect::<Vec<_>>());
    Ok(serde_json::json!({
        "model": scorer.score_name(),
        "mean": est.mean,
        "ci95": est.ci95,
        "per_image": files.iter().zip(texts).zip(&scores)
            .map(|((f, t), s)| serde_json::json!({"file": name(f), "caption": t, "score": s}))
            .collect::<Vec<_>>(),
    }))
}

/// Scores the folder and prints (and optionally writes) the results.
pub fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let scores_text = a.clip.is_some() || a.hps.is_some();
    if a.reference.is_none() && !scores_text {
        return Err("give --reference DIR (Fréchet distance, precision/recall) and/or --captions FILE with --clip WEIGHTS (CLIP score) or --hps WEIGHTS (HPSv2)".into());
    }
    if a.captions.is_some() && !scores_text {
        return Err("--captions needs --clip WEIGHTS and/or --hps WEIGHTS".into());
    }
    let device = lantern_models::backend::default_device();
    let files = image_files(&a.images)?;
    let mut report = serde_json::json!({ "images": a.images, "image_count": files.len() });
    println!("{} images in {}", files.len(), a.images.display());

    if let Some(reference) = &a.reference {
        let set = set_scores(&a, &files, reference, &device)?;
        for (k, v) in set.as_object().expect("an object") {
            report[k] = v.clone();
        }
    }

    if let Some(captions) = &a.captions {
        let table = read_captions(captions)?;
        let mut texts = Vec::with_capacity(files.len());
        for f in &files {
            let caption = table
                .get(&name(f))
                .ok_or_else(|| format!("{}: no caption for {}", captions.display(), name(f)))?;
            texts.push(caption.clone());
        }
        let scorers = [("clip", "--clip", &a.clip), ("hps", "--hps", &a.hps)];
        for (key, flag, weights) in scorers {
            let Some(weights) = weights else { continue };
            let scorer = if key == "clip" {
                load_clip(weights, &a.clip_activation, &device)
            } else {
                load_hps(weights, &device)
            }
            .map_err(|e| format!("{flag}: {e}"))?;
            let mut score = text_score(&scorer, &files, &texts, &device)?;
            let (what, text) = if key == "clip" {
                (
                    "CLIP score",
                    format!("raw cosine with \"{PROMPT_PREFIX}<caption>\""),
                )
            } else {
                ("HPSv2", "cosine with the caption".to_string())
            };
            println!(
                "{what} ({}, {text}): {:.4} ± {:.4} (95% CI)",
                scorer.score_name(),
                score["mean"].as_f64().unwrap_or(f64::NAN),
                score["ci95"].as_f64().unwrap_or(f64::NAN)
            );
            score["weights"] = serde_json::json!(weights);
            if key == "clip" {
                score["prompt_prefix"] = PROMPT_PREFIX.into();
            }
            report[key] = score;
        }
    }
    if let Some(out) = &a.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
