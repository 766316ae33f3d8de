//! Running a sweep, stage by stage: config → plan ([`plan_sweep`], a plain value) → loaded models
//! (`load.rs`) → configurations set up and images generated one at a time, each record durable
//! before the next image starts (`runs.rs`, `image.rs`) → quality (`score.rs`) → reports.
//! Re-running a sweep skips what its journals already hold; a shard (`--shard I/N`) runs its share
//! of the configurations into its own journal.

mod family;
mod image;
mod load;
mod progress;
mod recheck;
mod runs;
mod score;
mod setup;

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, SweepConfig};
use crate::plan::{expand, SweepPlan};
use crate::prompts::PromptSet;
use crate::records::{done_keys, merge_journals, Journal};
use crate::report;
use crate::shard::Shard;
use crate::system::Hardware;
use progress::Progress;

pub use family::Family;
pub use recheck::MAX_RECHOICES;
pub use setup::{device_description, git_commit, model_identity, model_paths, sweep_identity};

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
    /// Progress on a terminal (indicatif's bar); otherwise a plain line at most once a minute.
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
    /// The headline table of the whole folder (unsharded runs; a shard leaves the report to
    /// `lantern report`).
    pub headline: Option<String>,
}

/// Runs (or resumes) a sweep, or its shard, and writes its records; an unsharded run then
/// writes the summary, tables and plots (a shard leaves that to `lantern report`). The stages:
/// config → plan ([`plan_sweep`]) → loaded models → runs set up → records (the journal) →
/// quality → reports.
pub fn run_sweep(cfg: &SweepConfig, opts: &SweepOptions) -> Result<SweepOutcome, HarnessError> {
    let (plan, inputs) = plan_sweep(cfg, opts.shard)?;
    let loaded = load::load(cfg, &plan, &inputs, &opts.results_root.join(".cache"))?;
    let dir = opts.results_root.join(cfg.name());
    std::fs::create_dir_all(&dir)?;
    write_plan(&dir, cfg, &plan, &loaded.hardware)?;
    let journal_path = dir.join(shard_file("journal", "jsonl", opts.shard));
    let (mut journal, _) = Journal::open(&journal_path)?;
    // Images any journal of the folder holds are done (a shard re-run after an unsharded one, or
    // the reverse, records nothing twice).
    let done = done_keys(&merge_journals(&dir)?.records);
    let seeds = cfg.data.seeds as u64;
    let left = |id: &str| runs::pending(id, &inputs.conds, seeds, &done);
    let todo: usize = plan.mine().map(|(_, r)| left(&r.run_id)).sum();
    let total = plan.mine().count() * inputs.conds.len() * seeds as usize;

    let tables = loaded.tables();
    let mut bar = Progress::new(todo as u64, opts.progress);
    let at = runs::Setting {
        cfg,
        dir: &dir,
        shard: opts.shard,
        conds: &inputs.conds,
    };
    let context = image::Context {
        set: loaded.set.as_ref(),
        paths: &inputs.paths,
        tables: &tables,
        neighbour_source: loaded.neighbour_source.as_deref(),
        hardware: &loaded.hardware,
        commit: git_commit(),
        warmup: cfg.runtime.warmup,
        repeats: cfg.timing.repeats,
        warm_cond: &inputs.conds[0].cond,
        retimes: cfg.timing.retimes,
        auto_files: runs::AutoFiles::of(&at),
    };
    let mut active = runs::prepare(&at, &plan, &loaded, &context, |id| left(id) > 0, &bar)?;
    let generated = runs::generate_images(
        &mut active,
        &context,
        &inputs.conds,
        seeds,
        &done,
        &mut journal,
        &mut bar,
    )?;
    bar.finish();
    for a in &active {
        a.write_samples(&dir.join("samples"))?;
    }
    drop(active);
    score::score(cfg, &inputs, &loaded, &journal_path, &dir, opts)?;
    let headline = match opts.shard {
        None => Some(report::write_report(&dir, false)?.headline()),
        Some(_) => None,
    };
    Ok(SweepOutcome {
        dir,
        generated,
        skipped: total - todo,
        headline,
    })
}

/// `plan.json` (or the shard's): the file, overrides, timing, hardware, model identity and every
/// configuration with its run id.
fn write_plan(
    dir: &Path,
    cfg: &SweepConfig,
    plan: &SweepPlan,
    hardware: &Hardware,
) -> Result<(), HarnessError> {
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "config": cfg.file.display().to_string(),
        "overrides": cfg.overrides,
        "shard": plan.shard,
        "timing": {"warmup": cfg.runtime.warmup, "repeats": cfg.timing.repeats, "retimes": cfg.timing.retimes},
        "hardware": hardware,
        "identity": plan.identity,
        "runs": plan.runs,
    }))
    .expect("json");
    std::fs::write(dir.join(shard_file("plan", "json", plan.shard)), text)?;
    Ok(())
}

/// What a sweep's plan was made from: the model files and the conditions.
pub struct PlanInputs {
    /// The model files the sweep names.
    pub paths: lantern_models::ModelPaths,
    /// The target family, read from the checkpoint's config.
    pub family: Family,
    /// Every condition (class or prompt), in the order images are generated.
    pub(crate) conds: Vec<setup::Cond>,
    /// The prompt set of a text-conditional sweep.
    pub prompts: Option<PromptSet>,
}

/// Stage config → plan: the model files, the conditions and every configuration with its run
/// id and shard. Reads the model's JSON config and the prompt set; loads no weights.
pub fn plan_sweep(
    cfg: &SweepConfig,
    shard: Option<Shard>,
) -> Result<(SweepPlan, PlanInputs), HarnessError> {
    let paths = model_paths(cfg)?;
    let family = Family::read(cfg, &paths)?;
    let (conds, prompts, identity) = match &family {
        Family::LlamaGen(gpt) => {
            let (conds, prompts) = setup::conditions(cfg, gpt)?;
            let identity = sweep_identity(cfg, &paths, prompts.as_ref());
            (conds, prompts, identity)
        }
        Family::Chameleon(layout) => {
            let (conds, prompts, ids) = family::conditions(cfg, &paths, layout)?;
            let identity = format!("{}|{ids}", sweep_identity(cfg, &paths, Some(&prompts)));
            (conds, Some(prompts), identity)
        }
    };
    let plan = SweepPlan::new(expand(cfg), identity, shard);
    family::refuse_jacobi_quirk(cfg, &plan, &family)?;
    Ok((
        plan,
        PlanInputs {
            paths,
            family,
            conds,
            prompts,
        },
    ))
}

/// Loads a sweep file and runs it.
pub fn run_sweep_file(path: &Path, opts: &SweepOptions) -> Result<SweepOutcome, HarnessError> {
    let cfg = SweepConfig::load(path)?;
    run_sweep(&cfg, opts)
}
