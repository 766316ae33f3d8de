//! Running a sweep: load the models once, then generate every (configuration, condition, seed)
//! one image at a time, each record durable before the next image starts. Re-running a sweep
//! skips what its journals already hold; a shard (`--shard I/N`) runs its share of the
//! configurations into its own journal.

mod image;
mod setup;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use lantern_decoding::cost::Prediction;
use lantern_decoding::embeddings::{Tables, TokenEmbeddings};
use lantern_decoding::engine::{engine_of, models_for};
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::strategy::{generate, image_rng, Strategy};
use lantern_models::backend::{cpu_threads, select_device_at};
use lantern_models::ModelBundle;

use crate::auto::{read_map, write_map, AutoChoice, AutoTrees};
use crate::config::{ConfigError, SweepConfig};
use crate::plan::{expand, RunSpec};
use crate::quality;
use crate::records::{done_keys, merge_journals, Journal};
use crate::report;
use crate::shard::{self, Shard};
use crate::system::{self, Hardware};

pub use setup::{
    device_description, fixture_dir, git_commit, model_identity, model_paths, sweep_identity,
};

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
    /// Run only this shard of the configurations (its own journal; `lantern report` merges).
    pub shard: Option<Shard>,
}

/// A results file's name: `base.ext`, or `base.shard-I-of-N.ext` for a shard.
pub fn shard_file(base: &str, ext: &str, shard: Option<Shard>) -> String {
    match shard {
        Some(s) => format!("{base}.{}.{ext}", s.tag()),
        None => format!("{base}.{ext}"),
    }
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

/// Runs (or resumes) a sweep, or its shard, and writes its records; an unsharded run then
/// writes the summary, tables and plots (a shard leaves that to `lantern report`).
pub fn run_sweep(cfg: &SweepConfig, opts: &SweepOptions) -> Result<SweepOutcome, HarnessError> {
    let specs = expand(cfg);
    let paths = model_paths(cfg)?;
    let device = select_device_at(&cfg.runtime.backend, cfg.runtime.device)?;
    let bundle = ModelBundle::load_with(&paths, &device, 0, cfg.run_options())?;
    let (conds, prompts) = setup::conditions(cfg, bundle.gpt.config())?;
    let strategies: Vec<Strategy> = specs
        .iter()
        .map(|s| {
            s.strategy.strategy().map_err(|e| ConfigError::Invalid {
                file: cfg.file.clone(),
                key: format!("strategy.{}", e.key),
                value: s.label(),
                allowed: e.allowed,
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
    let quality_setup = setup::quality_setup(cfg, &paths, &bundle, &device)?;
    let clip = setup::text_scorer(cfg, &quality_setup, &device, "clip_weights", false)?;
    let hps = setup::text_scorer(cfg, &quality_setup, &device, "hps_weights", true)?;

    let dir = opts.results_root.join(cfg.name());
    std::fs::create_dir_all(&dir)?;
    let identity = sweep_identity(cfg, &paths, prompts.as_ref());
    let run_ids: Vec<String> = specs.iter().map(|s| s.run_id(&identity)).collect();
    let shard_of = match opts.shard {
        Some(s) => {
            let costs: Vec<(&str, f64)> = run_ids
                .iter()
                .zip(&specs)
                .map(|(id, spec)| (id.as_str(), shard::expected_cost(spec)))
                .collect();
            shard::assign(&costs, s.count)
        }
        None => vec![0; specs.len()],
    };
    let mine = |i: usize| opts.shard.is_none_or(|s| shard_of[i] == s.index);
    let backend = cfg.runtime.backend.clone();
    let device_name = device_description(&backend);
    let hardware = Hardware {
        host: system::host_name(),
        cpu: system::cpu_model(),
        cores_available: system::cores_available(),
        threads_used: cpu_threads(),
        backend: backend.clone(),
        device: device_name.clone(),
        engine: engine_of(&bundle).name().into(),
        dtype: bundle.dtype.name().into(),
        burn: system::BURN_VERSION.into(),
    };
    let plan: Vec<serde_json::Value> = specs
        .iter()
        .zip(&run_ids)
        .enumerate()
        .map(|(i, (s, id))| {
            let mut run = serde_json::json!({"run_id": id, "label": s.label(), "spec": s});
            if opts.shard.is_some() {
                run["shard"] = shard_of[i].into();
            }
            run
        })
        .collect();
    std::fs::write(
        dir.join(shard_file("plan", "json", opts.shard)),
        serde_json::to_string_pretty(&serde_json::json!({
            "config": cfg.file.display().to_string(),
            "overrides": cfg.overrides,
            "shard": opts.shard,
            "timing": {"warmup": cfg.runtime.warmup, "repeats": cfg.timing.repeats},
            "hardware": hardware,
            "runs": plan,
        }))
        .expect("json"),
    )?;
    let journal_path = dir.join(shard_file("journal", "jsonl", opts.shard));
    let (mut journal, _) = Journal::open(&journal_path)?;
    // Images any journal of the folder holds are done (a shard re-run after an unsharded one, or
    // the reverse, records nothing twice).
    let done = done_keys(&merge_journals(&dir)?.records);

    let k_max = strategies
        .iter()
        .enumerate()
        .filter(|(i, _)| mine(*i))
        .map(|(_, s)| s.neighbours_needed())
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

    let seeds = cfg.data.seeds as u64;
    let pending = |id: &String| {
        conds
            .iter()
            .flat_map(|c| (0..seeds).map(move |s| (id.clone(), c.class, c.prompt, s)))
            .filter(|k| !done.contains(k))
            .count()
    };
    let mine_ids: Vec<usize> = (0..specs.len()).filter(|&i| mine(i)).collect();
    let todo: usize = mine_ids.iter().map(|&i| pending(&run_ids[i])).sum();
    let total = mine_ids.len() * conds.len() * seeds as usize;

    let cfg_rows = specs.iter().any(|s| s.sampling.uses_cfg());
    let has_drafter = bundle.drafter.is_some()
        && strategies
            .iter()
            .any(|s| matches!(s, Strategy::Speculative(_)));
    let costs = crate::auto::measure_costs(&bundle, &conds[0].cond, cfg_rows, has_drafter)?;
    std::fs::write(
        dir.join(shard_file("verify_cost", "json", opts.shard)),
        serde_json::to_string_pretty(&serde_json::json!({
            "device": device_name,
            "engine": engine_of(&bundle).name(),
            "dtype": bundle.dtype.name(),
            "rows": costs.rows,
            "ms_by_tree_tokens": costs.verify_ms,
            "costs": costs,
        }))
        .expect("json"),
    )?;
    let planned: Vec<(RunSpec, Strategy)> = mine_ids
        .iter()
        .map(|&i| (specs[i].clone(), strategies[i].clone()))
        .collect();
    let mut auto = AutoTrees::new(
        &bundle,
        &costs,
        neighbours.as_ref(),
        conds.iter().map(|c| c.cond.clone()).collect(),
        cfg.runtime.pilot_images,
        &planned,
    );
    let predictions_path = dir.join(shard_file("predictions", "json", opts.shard));
    let auto_path = dir.join(shard_file("auto", "json", opts.shard));
    let mut predictions: BTreeMap<String, Prediction> = read_map(&predictions_path);
    let mut choices: BTreeMap<String, AutoChoice> = read_map(&auto_path);

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
    let context = image::Context {
        bundle: &bundle,
        paths: &paths,
        tables: &tables,
        neighbour_source: neighbour_source.as_deref(),
        hardware: &hardware,
        commit: git_commit(),
        warmup: cfg.runtime.warmup,
        repeats: cfg.timing.repeats,
    };
    let mut generated = 0;

    // Every configuration is set up (tree chosen, models sized, warm-up run) first; then images
    // are generated condition by condition and seed by seed, each configuration in turn, so that
    // a slow drift of the machine's speed affects every configuration alike and the speedups,
    // ratios of latencies, stay fair.
    let mut active: Vec<image::Active> = Vec::new();
    for &i in &mine_ids {
        let (spec, base, run_id) = (&specs[i], &strategies[i], &run_ids[i]);
        if pending(run_id) == 0 {
            continue;
        }
        let (strategy, tree_label) = match base {
            Strategy::Speculative(sp) if spec.strategy.tree.as_deref() == Some("auto") => {
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
                (base.clone(), spec.strategy.tree.clone())
            }
        };
        write_map(&predictions_path, &predictions)?;
        write_map(&auto_path, &choices)?;
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
        active.push(image::Active::new(
            spec, run_id, strategy, tree_label, models,
        ));
    }
    for cond in &conds {
        for seed in 0..seeds {
            for a in active.iter_mut() {
                if done.contains(&(a.run_id.clone(), cond.class, cond.prompt, seed)) {
                    continue;
                }
                let record = context.image(a, cond, seed)?;
                journal.append(&record)?;
                generated += 1;
                bar.set_message(format!("{} τ={:.2}", a.spec.label(), a.mean_tau()));
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    for a in &active {
        a.write_samples(&dir.join("samples"))?;
    }
    drop(active);
    if let (Some((reference, extractor, pr_extractor)), Some(vq)) = (&quality_setup, &bundle.vq) {
        let records = crate::records::read_journal(&journal_path)?;
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
            bundle.gpt.config().grid_size(),
            &scorers,
            &opts.results_root.join(".cache"),
            cfg.quality.k as usize,
        )
        .map_err(|e| std::io::Error::other(format!("quality: {e}")))?;
        quality::save(&dir, &shard_file("quality", "json", opts.shard), &q)?;
    }
    if opts.shard.is_none() {
        report::write_report(&dir)?;
    }
    Ok(SweepOutcome {
        dir,
        generated,
        skipped: total - todo,
    })
}

/// Loads a sweep file and runs it.
pub fn run_sweep_file(path: &Path, opts: &SweepOptions) -> Result<SweepOutcome, HarnessError> {
    let cfg = SweepConfig::load(path)?;
    run_sweep(&cfg, opts)
}
