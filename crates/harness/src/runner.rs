//! Running a sweep: load the models once, then generate every (configuration, condition, seed)
//! one image at a time, each record durable before the next image starts. Re-running a sweep
//! skips what its journal already holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lantern_decoding::cost::{measure_step_costs, Prediction};
use lantern_decoding::embeddings::{Tables, TokenEmbeddings};
use lantern_decoding::engine::{engine_of, models_for, models_sized};
use lantern_decoding::model::ImageCondition;
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::strategy::{generate, image_rng, Generation, Strategy};
use lantern_models::backend::{cpu_threads, select_device};
use lantern_models::config::ModelType;
use lantern_models::cpu::WeightDtype;
use lantern_models::{GptConfig, ModelBundle, ModelPaths};

use crate::auto::{read_map, write_map, AutoChoice, AutoTrees};
use crate::config::{ConfigError, SweepConfig};
use crate::extractors::{load_pretrained, ExtractorSpec};
use crate::plan::{expand, RunSpec};
use crate::prompts::PromptSet;
use crate::quality;
use crate::records::{done_keys, Journal, Record};
use crate::report;
use lantern_metrics::{FeatureExtractor, ReferenceTokens, VqEncoderExtractor};

/// Anything that stops a sweep.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The sweep file was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Loading models failed.
    #[error(transparent)]
    Model(#[from] lantern_models::ModelError),
    /// Decoding failed.
    #[error(transparent)]
    Decode(#[from] lantern_decoding::strategy::DecodeError),
    /// Reading or writing results failed.
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for HarnessError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// Where the sweep writes and whether it shows progress.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// `results/`: the sweep writes `results/<name>/`.
    pub results_root: PathBuf,
    /// Show progress bars.
    pub progress: bool,
}

/// What a finished sweep produced.
#[derive(Debug)]
pub struct SweepOutcome {
    /// `results/<name>/`.
    pub dir: PathBuf,
    /// Images generated in this invocation.
    pub generated: usize,
    /// Images that were already recorded.
    pub skipped: usize,
}

/// Folder of the shared fixtures: `$LANTERN_FIXTURES`, else `../shared/fixtures/llamagen-tiny`.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("LANTERN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/fixtures/llamagen-tiny"))
}

/// The model files a sweep names.
pub fn model_paths(cfg: &SweepConfig) -> Result<ModelPaths, ConfigError> {
    let m = &cfg.model;
    let invalid = |key: &str, value: String, allowed: &str| ConfigError::Invalid {
        file: cfg.file.clone(),
        key: key.into(),
        value,
        allowed: allowed.into(),
    };
    let paths = match m.preset.as_deref() {
        Some("fixture") => {
            let dir = fixture_dir();
            let mut p = ModelPaths::fixture(&dir);
            if let Some(d) = &m.drafter {
                p.drafter = Some(d.clone());
            }
            p
        }
        Some("tiny") => {
            let dir = lantern_models::bundle::tiny_dir();
            if !dir.join("gpt.safetensors").is_file() {
                return Err(invalid(
                    "model.preset",
                    "\"tiny\"".into(),
                    &format!(
                        "the embedded default is missing ({} has no gpt.safetensors; rebuild it with `just train-tiny`); use preset = \"fixture\" or give explicit files",
                        dir.display()
                    ),
                ));
            }
            ModelPaths::tiny(&dir)
        }
        _ => ModelPaths {
            gpt: cfg.resolve_path(m.gpt.as_ref().expect("validated")),
            gpt_config: resolve_source(cfg, m.gpt_config.as_deref().expect("validated")),
            vq: m.vq.as_ref().map(|p| cfg.resolve_path(p)),
            vq_config: m.vq_config.as_deref().map(|s| resolve_source(cfg, s)),
            drafter: m.drafter.as_deref().map(|d| {
                if d == "random" {
                    d.to_string()
                } else {
                    cfg.resolve_path(Path::new(d)).display().to_string()
                }
            }),
            drafter_config: m.drafter_config.as_ref().map(|p| cfg.resolve_path(p)),
        },
    };
    let mut files = vec![
        ("model.gpt", Some(paths.gpt.clone())),
        ("model.vq", paths.vq.clone()),
    ];
    if let Some(d) = paths.drafter.as_deref().filter(|d| *d != "random") {
        files.push(("model.drafter", Some(PathBuf::from(d))));
    }
    for (key, file) in files {
        if let Some(f) = file {
            if !f.is_file() {
                return Err(invalid(
                    key,
                    f.display().to_string(),
                    "an existing checkpoint file (.pt or .safetensors)",
                ));
            }
        }
    }
    Ok(paths)
}

/// A config source that is a JSON path is resolved against the config file; presets pass through.
fn resolve_source(cfg: &SweepConfig, s: &str) -> String {
    if s.ends_with(".json") {
        cfg.resolve_path(Path::new(s)).display().to_string()
    } else {
        s.to_string()
    }
}

/// A short, content-sensitive identity of the model files (name, size, FNV of the first and last
/// 64 KiB), so that replaced weights get new run ids.
pub fn model_identity(paths: &ModelPaths) -> String {
    let fp = lantern_models::checkpoint::file_fingerprint;
    let mut parts = vec![fp(&paths.gpt), paths.gpt_config.clone()];
    if let Some(v) = &paths.vq {
        parts.push(fp(v));
    }
    match paths.drafter.as_deref() {
        Some("random") => parts.push("drafter:random".into()),
        Some(d) => parts.push(fp(Path::new(d))),
        None => {}
    }
    parts.join("|")
}

/// The git commit of the working tree (`+dirty` with uncommitted changes), or `unknown`.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}+dirty")
            } else {
                c
            }
        }
        None => "unknown".into(),
    }
}

/// A description of the device (see [`lantern_models::backend::device_description`]).
pub fn device_description(backend: &str) -> String {
    lantern_models::backend::device_description(backend)
}

/// One condition of the sweep: what to generate and how records name it.
struct Cond {
    cond: ImageCondition,
    class: Option<u32>,
    prompt: Option<u32>,
}

/// The sweep's conditions: its classes (c2i), or the prompts of its prompt set (t2i), checked
/// against the target; the prompt set comes back for the CLIP score.
fn conditions(
    cfg: &SweepConfig,
    gpt: &GptConfig,
) -> Result<(Vec<Cond>, Option<PromptSet>), HarnessError> {
    let invalid = |key: &str, value: String, allowed: String| -> HarnessError {
        ConfigError::Invalid {
            file: cfg.file.clone(),
            key: key.into(),
            value,
            allowed,
        }
        .into()
    };
    let t2i = gpt.model_type == ModelType::T2i;
    if let Some(classes) = &cfg.data.classes {
        if t2i {
            return Err(invalid(
                "data.classes",
                format!("{classes:?}"),
                "prompts = \"manifest.json\": the target is text-conditional".into(),
            ));
        }
        let num_classes = gpt.num_classes;
        if let Some(&bad) = classes.iter().find(|&&c| c as usize >= num_classes) {
            return Err(invalid(
                "data.classes",
                bad.to_string(),
                format!(
                    "class labels 0..{} (this model has {num_classes} classes)",
                    num_classes - 1
                ),
            ));
        }
        let conds = classes
            .iter()
            .map(|&c| Cond {
                cond: ImageCondition::Class(c as usize),
                class: Some(c as u32),
                prompt: None,
            })
            .collect();
        return Ok((conds, None));
    }
    let manifest = cfg.resolve_path(cfg.data.prompts.as_ref().expect("validated"));
    let shown = manifest.display().to_string();
    if !t2i {
        return Err(invalid(
            "data.prompts",
            shown,
            "classes = [..]: the target is class-conditional".into(),
        ));
    }
    let prompts =
        PromptSet::load(&manifest).map_err(|e| invalid("data.prompts", shown.clone(), e))?;
    if (prompts.tokens, prompts.dim) != (gpt.cls_token_num, gpt.caption_dim) {
        return Err(invalid(
            "data.prompts",
            shown,
            format!(
                "embeddings of {} tokens × {} (the target's cls_token_num × caption_dim); the file has {} × {}",
                gpt.cls_token_num, gpt.caption_dim, prompts.tokens, prompts.dim
            ),
        ));
    }
    let n = cfg
        .data
        .prompt_limit
        .map_or(prompts.len(), |l| (l as usize).min(prompts.len()));
    let conds = (0..n)
        .map(|i| Cond {
            cond: prompts.condition(i),
            class: None,
            prompt: Some(i as u32),
        })
        .collect();
    Ok((conds, Some(prompts)))
}

/// Runs (or resumes) a sweep and writes its records, summary, tables and plots.
pub fn run_sweep(cfg: &SweepConfig, opts: &SweepOptions) -> Result<SweepOutcome, HarnessError> {
    let specs = expand(cfg);
    let paths = model_paths(cfg)?;
    let device = select_device(&cfg.runtime.backend)?;
    let bundle = ModelBundle::load_with(&paths, &device, 0, cfg.run_options())?;
    let (conds, prompts) = conditions(cfg, bundle.gpt.config())?;
    let strategies: Vec<Strategy> = specs
        .iter()
        .map(|s| {
            s.strategy().map_err(|e| ConfigError::Invalid {
                file: cfg.file.clone(),
                key: "strategy".into(),
                value: s.label(),
                allowed: e,
            })
        })
        .collect::<Result<_, _>>()?;
    if strategies
        .iter()
        .any(|s| matches!(s, Strategy::Speculative(_)))
        && bundle.drafter.is_none()
    {
        return Err(ConfigError::Invalid {
            file: cfg.file.clone(),
            key: "model.drafter".into(),
            value: "(none)".into(),
            allowed: "a drafter checkpoint (or \"random\" for an untrained one) for sd, lantern and lantern++".into(),
        }
        .into());
    }

    // Quality inputs are checked before anything is generated.
    let quality_setup = match (cfg.quality.enabled, &bundle.vq) {
        (true, Some(vq)) => {
            let reference = quality_reference(cfg, vq.config().codebook_size)?;
            let q = &cfg.quality;
            let load = |key: &str, name: &str, weights: &Option<PathBuf>| {
                quality_extractor(cfg, &paths, vq, &device, (key, name, weights))
            };
            let extractor = load("extractor", &q.extractor, &q.extractor_weights)?;
            let pr_extractor = match &q.pr_extractor {
                Some(x) => Some(load("pr_extractor", x, &q.pr_extractor_weights)?),
                None => None,
            };
            Some((reference, extractor, pr_extractor))
        }
        _ => None,
    };
    let text_scorer = |key: &str, weights: &Option<PathBuf>, hps: bool| {
        let Some(w) = weights else {
            return Ok(None);
        };
        let w = cfg.resolve_path(w);
        let invalid = |allowed: String| ConfigError::Invalid {
            file: cfg.file.clone(),
            key: format!("quality.{key}"),
            value: w.display().to_string(),
            allowed,
        };
        if quality_setup.is_none() {
            return Err(invalid(
                "a sweep whose images are decoded: a VQ tokenizer and `[quality] enabled = true`"
                    .into(),
            ));
        }
        let loaded = if hps {
            crate::extractors::load_hps(&w, &device)
        } else {
            crate::extractors::load_clip(&w, &cfg.quality.clip_activation, &device)
        };
        loaded
            .and_then(|c| c.check_vocabulary().map(|_| c).map_err(|e| e.to_string()))
            .map(Some)
            .map_err(|e| invalid(format!("a checkpoint that loads: {e}")))
    };
    let clip = text_scorer("clip_weights", &cfg.quality.clip_weights, false)?;
    let hps = text_scorer("hps_weights", &cfg.quality.hps_weights, true)?;

    let dir = opts.results_root.join(cfg.name());
    std::fs::create_dir_all(&dir)?;
    let mut identity = model_identity(&paths);
    if bundle.dtype != WeightDtype::F32 {
        // Other weights sample other tokens: not the same runs.
        identity.push_str(&format!("|dtype:{}", bundle.dtype.name()));
    }
    if let Some(p) = &prompts {
        // Records of a changed prompt set are not the same runs.
        identity.push_str(&format!("|prompts:{}", p.identity()));
    }
    let run_ids: Vec<String> = specs.iter().map(|s| s.run_id(&identity)).collect();
    let plan: Vec<serde_json::Value> = specs
        .iter()
        .zip(&run_ids)
        .map(|(s, id)| serde_json::json!({"run_id": id, "label": s.label(), "spec": s}))
        .collect();
    std::fs::write(
        dir.join("plan.json"),
        serde_json::to_string_pretty(&plan).expect("json"),
    )?;
    let (mut journal, existing) = Journal::open(&dir.join("journal.jsonl"))?;
    let done = done_keys(&existing);

    let k_max = strategies
        .iter()
        .map(Strategy::neighbours_needed)
        .max()
        .unwrap_or(0);
    let (neighbours, neighbour_source) = if k_max > 0 {
        let (space, vocab, dim, source) = bundle.neighbour_space()?;
        let cache = opts
            .results_root
            .join(".cache")
            .join(format!("neighbours-{source}.bin"));
        (
            Some(NeighbourTable::cached(&cache, &space, vocab, dim, k_max)?),
            Some(source.to_string()),
        )
    } else {
        (None, None)
    };

    let embeddings = if strategies.iter().any(Strategy::needs_embeddings) {
        let (rows, vocab, dim) = bundle.token_embeddings()?;
        Some(TokenEmbeddings::new(rows, vocab, dim))
    } else {
        None
    };
    let tables = Tables {
        neighbours: neighbours.as_ref(),
        embeddings: embeddings.as_ref(),
    };

    let cfg_rows = specs.iter().any(|s| s.sampling.uses_cfg());
    let has_drafter = bundle.drafter.is_some()
        && strategies
            .iter()
            .any(|s| matches!(s, Strategy::Speculative(_)));
    let costs = {
        let n = bundle.gpt.config().block_size;
        let sizes: Vec<usize> = [1, 2, 4, 8, 16, 32, 64, 128]
            .into_iter()
            .filter(|&t| t <= n / 2)
            .collect();
        let expands: Vec<usize> = [1, 2, 4, 8, 16, 32]
            .into_iter()
            .filter(|&r| r <= n / 2)
            .collect();
        let mut models = models_sized(&bundle, has_drafter, 129, 64);
        measure_step_costs(
            models.as_mut(),
            &conds[0].cond,
            cfg_rows,
            &sizes,
            &expands,
            5,
        )
        .map_err(lantern_decoding::strategy::DecodeError::from)?
    };
    std::fs::write(
        dir.join("verify_cost.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "device": device_description(&cfg.runtime.backend),
            "engine": engine_of(&bundle).name(),
            "dtype": bundle.dtype.name(),
            "rows": costs.rows,
            "ms_by_tree_tokens": costs.verify_ms,
            "costs": costs,
        }))
        .expect("json"),
    )?;
    let planned: Vec<(RunSpec, Strategy)> = specs
        .iter()
        .cloned()
        .zip(strategies.iter().cloned())
        .collect();
    let mut auto = AutoTrees::new(
        &bundle,
        &costs,
        neighbours.as_ref(),
        conds.iter().map(|c| c.cond.clone()).collect(),
        cfg.runtime.pilot_images,
        &planned,
    );
    let predictions_path = dir.join("predictions.json");
    let auto_path = dir.join("auto.json");
    let mut predictions: BTreeMap<String, Prediction> = read_map(&predictions_path);
    let mut choices: BTreeMap<String, AutoChoice> = read_map(&auto_path);

    let seeds = cfg.data.seeds as u64;
    let todo: usize = run_ids
        .iter()
        .map(|id| {
            conds
                .iter()
                .flat_map(|c| (0..seeds).map(move |s| (id.clone(), c.class, c.prompt, s)))
                .filter(|k| !done.contains(k))
                .count()
        })
        .sum();
    let total = run_ids.len() * conds.len() * seeds as usize;
    let bar = if opts.progress {
        let b = ProgressBar::new(todo as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} images, ETA {eta} {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let backend = cfg.runtime.backend.clone();
    let device_name = device_description(&backend);
    let commit = git_commit();
    let grid = bundle.gpt.config().grid_size();
    let mut generated = 0;
    let mut samples: Vec<(String, Vec<Vec<u8>>, usize, usize)> = Vec::new();

    // Every configuration is set up (tree chosen, models sized, warm-up run) first; then images
    // are generated condition by condition and seed by seed, each configuration in turn, so that
    // a slow drift of the machine's speed affects every configuration alike and the speedups,
    // ratios of latencies, stay fair.
    struct Active<'b> {
        spec: &'b RunSpec,
        run_id: &'b String,
        strategy: Strategy,
        tree_label: Option<String>,
        models: Box<dyn lantern_decoding::model::Models + 'b>,
        drafter: Option<&'b lantern_models::Drafter>,
        taus: Vec<f64>,
        grid_images: Vec<Vec<u8>>,
        img_size: (usize, usize),
    }
    let mut active: Vec<Active> = Vec::new();
    for ((spec, base), run_id) in specs.iter().zip(&strategies).zip(&run_ids) {
        let pending = conds
            .iter()
            .any(|c| (0..seeds).any(|s| !done.contains(&(run_id.clone(), c.class, c.prompt, s))));
        if !pending {
            continue;
        }
        let (strategy, tree_label) = match base {
            Strategy::Speculative(sp) if spec.tree.as_deref() == Some("auto") => {
                let (strategy, choice) = auto.choose(sp, &spec.sampling)?;
                bar.suspend(|| {
                    eprintln!(
                        "{}: tree auto → {} (predicted τ {:.2}, {:.2}× AR; {} candidates in auto.json)",
                        spec.label(),
                        choice.chosen.tree,
                        choice.chosen.tau,
                        choice.chosen.speedup,
                        choice.candidates.len()
                    )
                });
                let label = format!("auto→{}", choice.chosen.tree);
                predictions.insert(run_id.clone(), choice.chosen.clone());
                choices.insert(spec.label(), choice);
                (strategy, Some(label))
            }
            _ => {
                if let Some(p) = auto.predict(base, &spec.sampling)? {
                    predictions.insert(run_id.clone(), p);
                }
                (base.clone(), spec.tree.clone())
            }
        };
        write_map(&predictions_path, &predictions)?;
        write_map(&auto_path, &choices)?;
        let drafter = matches!(strategy, Strategy::Speculative(_))
            .then_some(())
            .and(bundle.drafter.as_ref());
        let mut models = models_for(&bundle, &strategy);
        for w in 0..cfg.runtime.warmup {
            generate(
                models.as_mut(),
                &strategy,
                &spec.sampling,
                &tables,
                &conds[0].cond,
                &image_rng(u64::MAX - 2, w as u64),
            )?;
        }
        active.push(Active {
            spec,
            run_id,
            strategy,
            tree_label,
            models,
            drafter,
            taus: Vec::new(),
            grid_images: Vec::new(),
            img_size: (0, 0),
        });
    }
    for Cond {
        cond,
        class,
        prompt,
    } in &conds
    {
        for seed in 0..seeds {
            for a in active.iter_mut() {
                let (spec, run_id, strategy) = (a.spec, a.run_id, &a.strategy);
                if done.contains(&(run_id.clone(), *class, *prompt, seed)) {
                    continue;
                }
                let cid = class.or(*prompt).unwrap_or(0) as u64;
                let g: Generation = generate(
                    a.models.as_mut(),
                    strategy,
                    &spec.sampling,
                    &tables,
                    cond,
                    &image_rng(seed, cid),
                )?;
                let vq_ms = match &bundle.vq {
                    Some(vq) => {
                        let t = Instant::now();
                        let img = vq.decode_tokens(std::slice::from_ref(&g.tokens), grid);
                        let rgb = crate::images::to_rgb8(img);
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        if a.grid_images.len() < 8 {
                            let (w, h, data) = rgb.into_iter().next().expect("one image");
                            a.img_size = (w, h);
                            a.grid_images.push(data);
                        }
                        Some(ms)
                    }
                    None => None,
                };
                let record = Record {
                    run_id: run_id.clone(),
                    label: spec.label(),
                    strategy: spec.kind.clone(),
                    tree: a.tree_label.clone(),
                    k: spec.k.map(|k| k as u32),
                    delta: spec.delta,
                    lambda: spec.lambda,
                    window: spec.window.map(|w| w as u32),
                    official_compat: spec.official_compat,
                    relax: spec.relax.clone(),
                    init: spec.init_name(),
                    coupling: spec.coupling.clone(),
                    grouping: spec.grouping_label(),
                    auto_added: spec.auto_added,
                    temperature: spec.sampling.temperature,
                    top_k: spec.sampling.top_k as u32,
                    top_p: spec.sampling.top_p,
                    cfg: spec.sampling.cfg_scale,
                    warp_order: spec.sampling.warp_order.name().into(),
                    temperature_rule: spec.sampling.temperature_rule.name().into(),
                    class: *class,
                    prompt: *prompt,
                    seed,
                    tokens: g.tokens.clone(),
                    steps: g.steps.len() as u32,
                    tau: g.tau(),
                    latency_ms: g.latency_ms,
                    draft_ms: g.draft_ms(),
                    verify_ms: g.verify_ms(),
                    forward_ms: g.forward_ms(),
                    prefill_ms: g.prefill_ms,
                    tvd_emitted: g.tvd_emitted(),
                    vq_decode_ms: vq_ms,
                    accepted_per_step: g.accepted_per_step().iter().map(|&a| a as u32).collect(),
                    neighbour_source: (strategy.neighbours_needed() > 0)
                        .then(|| neighbour_source.clone())
                        .flatten(),
                    gpt_model: paths.gpt.display().to_string(),
                    drafter_model: a.drafter.and(paths.drafter.clone()),
                    vq_model: paths.vq.as_ref().map(|p| p.display().to_string()),
                    backend: backend.clone(),
                    engine: engine_of(&bundle).name().into(),
                    dtype: bundle.dtype.name().into(),
                    device: device_name.clone(),
                    threads: cpu_threads() as u32,
                    git_commit: commit.clone(),
                };
                journal.append(&record)?;
                generated += 1;
                a.taus.push(g.tau());
                bar.set_message(format!(
                    "{} τ={:.2}",
                    spec.label(),
                    a.taus.iter().sum::<f64>() / a.taus.len() as f64
                ));
                bar.inc(1);
            }
        }
    }
    for a in active {
        if !a.grid_images.is_empty() {
            samples.push((a.spec.label(), a.grid_images, a.img_size.0, a.img_size.1));
        }
    }
    bar.finish_and_clear();
    for (label, images, w, h) in &samples {
        crate::images::write_grid(&dir.join("samples"), label, images, *w, *h)?;
    }
    if let (Some((reference, extractor, pr_extractor)), Some(vq)) = (&quality_setup, &bundle.vq) {
        let (_, records) = Journal::open(&dir.join("journal.jsonl"))?;
        if opts.progress {
            let pr = pr_extractor.as_ref().map_or(String::new(), |x| {
                format!(", precision/recall by {}", x.name())
            });
            eprintln!(
                "quality: decoding {} images, features by {}{pr}",
                records.len(),
                extractor.name()
            );
        }
        let tokenizer_identity = paths
            .vq
            .as_deref()
            .map_or(String::new(), lantern_models::checkpoint::file_fingerprint);
        let scorers = quality::Scorers {
            reference: reference.as_ref(),
            extractor: Some(extractor.as_ref()),
            pr_extractor: pr_extractor.as_deref(),
            captions: prompts.as_ref().map_or(&[], |p| p.captions.as_slice()),
            clip: clip.as_ref(),
            hps: hps.as_ref(),
            tokenizer: &tokenizer_identity,
        };
        let q = quality::compute(
            &records,
            vq,
            grid,
            &scorers,
            &opts.results_root.join(".cache"),
            cfg.quality.k as usize,
        )
        .map_err(|e| std::io::Error::other(format!("quality: {e}")))?;
        quality::save(&dir, &q)?;
    }
    report::write_report(&dir)?;
    Ok(SweepOutcome {
        dir,
        generated,
        skipped: total - todo,
    })
}

/// The `[quality] extractor` or `pr_extractor` (`key`) named `name` with its `weights`, loaded (a
/// weights file that does not load is a config error naming `key` or its `_weights`).
fn quality_extractor(
    cfg: &SweepConfig,
    paths: &ModelPaths,
    vq: &lantern_models::VqModel,
    device: &lantern_models::burn::prelude::Device,
    (key, name, weights): (&str, &str, &Option<PathBuf>),
) -> Result<Box<dyn FeatureExtractor>, HarnessError> {
    let q = &cfg.quality;
    if name == "vq-encoder" {
        let label = if cfg.model.preset.as_deref() == Some("tiny") {
            "tiny".to_string()
        } else {
            paths
                .vq
                .as_ref()
                .and_then(|p| p.file_stem())
                .map_or("vq".into(), |s| s.to_string_lossy().into_owned())
        };
        return Ok(Box::new(VqEncoderExtractor::new(vq.clone(), &label)));
    }
    let weights = weights.as_ref().map(|w| cfg.resolve_path(w));
    let spec = ExtractorSpec {
        name,
        weights: weights.as_deref(),
        clip_activation: &q.clip_activation,
        inception_resize: &q.inception_resize,
    };
    load_pretrained(&spec, device).map_err(|e| {
        let (key, value) = match &weights {
            Some(w) => (format!("quality.{key}_weights"), w.display().to_string()),
            None => (format!("quality.{key}"), name.to_string()),
        };
        ConfigError::Invalid {
            file: cfg.file.clone(),
            key,
            value,
            allowed: format!("weights that load as {name}: {e}"),
        }
        .into()
    })
}

/// The reference set of a sweep: `[quality] reference`, else the one the `tiny` preset ships.
fn quality_reference(
    cfg: &SweepConfig,
    codebook: usize,
) -> Result<Option<ReferenceTokens>, HarnessError> {
    let path = match (&cfg.quality.reference, cfg.model.preset.as_deref()) {
        (Some(p), _) => Some(cfg.resolve_path(p)),
        (None, Some("tiny")) => {
            Some(lantern_models::bundle::tiny_dir().join("reference.json")).filter(|p| p.is_file())
        }
        _ => None,
    };
    path.map(|p| {
        let invalid = |allowed: String| {
            HarnessError::from(ConfigError::Invalid {
                file: cfg.file.clone(),
                key: "quality.reference".into(),
                value: p.display().to_string(),
                allowed,
            })
        };
        let r = ReferenceTokens::load(&p).map_err(|e| invalid(e.to_string()))?;
        if let Some(t) = r.tokens.iter().flatten().find(|&&t| t as usize >= codebook) {
            return Err(invalid(format!(
                "token {t} is outside the tokenizer's codebook of {codebook}: the reference was made with another tokenizer"
            )));
        }
        Ok(r)
    })
    .transpose()
}

/// Loads a sweep file and runs it.
pub fn run_sweep_file(path: &Path, opts: &SweepOptions) -> Result<SweepOutcome, HarnessError> {
    let cfg = SweepConfig::load(path)?;
    run_sweep(&cfg, opts)
}
