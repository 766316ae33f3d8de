//! Stages loaded → runs → records. Every configuration with images left is set up first (step
//! costs measured, its tree chosen when `auto`, its models sized, its warm-up run); then images
//! are generated condition by condition and seed by seed, each configuration in turn, so that a
//! slow drift of the machine's speed affects every configuration alike and the speedups, ratios
//! of latencies, stay fair. Each record is durable before the next image starts.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use lantern_decoding::cost::Prediction;
use lantern_decoding::engine::{engine_of, models_for};
use lantern_decoding::spec::TreeChoice;
use lantern_decoding::strategy::Strategy;

use super::image::{warm_up, Active, Context};
use super::load::Loaded;
use super::progress::Progress;
use super::recheck::{check_auto, describe, AutoRun, MeasureOn};
use super::setup::Cond;
use super::{shard_file, HarnessError};
use crate::auto::{read_map, write_map, AutoChoice, AutoTrees};
use crate::config::SweepConfig;
use crate::plan::{RunSpec, SweepPlan};
use crate::records::Journal;
use crate::shard::Shard;

/// An image's key in the journals: run id, class, prompt, seed.
pub(super) type ImageKey = (String, Option<u32>, Option<u32>, u64);

/// The images of `run_id` over `conds` × `seeds` not yet in `done`.
pub(super) fn pending(run_id: &str, conds: &[Cond], seeds: u64, done: &HashSet<ImageKey>) -> usize {
    conds
        .iter()
        .flat_map(|c| (0..seeds).map(move |s| (run_id.to_string(), c.class, c.prompt, s)))
        .filter(|k| !done.contains(k))
        .count()
}

/// Where a sweep's set-up files go and what they are measured on.
pub(super) struct Setting<'a> {
    /// The sweep file.
    pub cfg: &'a SweepConfig,
    /// `results/<name>/`.
    pub dir: &'a Path,
    /// The shard this invocation runs.
    pub shard: Option<Shard>,
    /// The sweep's conditions.
    pub conds: &'a [Cond],
}

/// Sets up this invocation's configurations that still have images to make (`todo`): the step
/// costs (`verify_cost.json`), the cost model's predictions and `auto` choices
/// (`predictions.json`, `auto.json`), each configuration's models and warm-up.
pub(super) fn prepare<'a>(
    at: &Setting,
    plan: &'a SweepPlan,
    loaded: &'a Loaded,
    ctx: &Context<'a>,
    todo: impl Fn(&str) -> bool,
    bar: &Progress,
) -> Result<Vec<Active<'a>>, HarnessError> {
    let set = loaded.set.as_ref();
    let cfg_rows = plan.runs.iter().any(|r| r.spec.sampling.uses_cfg());
    let drafted = set.has_drafter()
        && loaded
            .strategies
            .iter()
            .any(|s| matches!(s, Strategy::Speculative(_)));
    let costs = crate::auto::measure_costs(set, &at.conds[0].cond, cfg_rows, drafted)?;
    std::fs::write(
        at.dir.join(shard_file("verify_cost", "json", at.shard)),
        serde_json::to_string_pretty(&serde_json::json!({
            "device": loaded.hardware.device,
            "engine": engine_of(set).name(),
            "dtype": set.dtype().name(),
            "rows": costs.rows,
            "ms_by_tree_tokens": costs.verify_ms,
            "costs": costs,
        }))
        .expect("json"),
    )?;
    let mine: Vec<(RunSpec, Strategy)> = plan
        .mine()
        .map(|(i, r)| (r.spec.clone(), loaded.strategies[i].clone()))
        .collect();
    let conds = at.conds.iter().map(|c| c.cond.clone()).collect();
    let pilots = at.cfg.runtime.pilot_images;
    let mut auto = AutoTrees::new(
        set,
        &costs,
        loaded.neighbours.as_ref(),
        conds,
        pilots,
        &mine,
    );
    let files = AutoFiles::of(at);
    let mut predictions: BTreeMap<String, Prediction> = read_map(&files.predictions);
    let mut choices: BTreeMap<String, AutoChoice> = read_map(&files.auto);
    let mut active = Vec::new();
    for (i, run) in plan.mine() {
        if !todo(&run.run_id) {
            continue;
        }
        let (spec, base) = (&run.spec, &loaded.strategies[i]);
        let (strategy, tree_label, auto_run) = match base {
            Strategy::Speculative(sp)
                if spec.strategy.tree.as_ref().is_some_and(TreeChoice::is_auto) =>
            {
                let (strategy, choice, pilot) = auto.choose(sp, &spec.sampling)?;
                bar.println(&format!(
                    "{}: tree auto → {} (predicted τ {:.2}, {:.2}× AR; {} candidates in auto.json)",
                    run.label,
                    choice.chosen.tree,
                    choice.chosen.tau,
                    choice.chosen.speedup,
                    choice.candidates.len()
                ));
                let label = format!("auto→{}", choice.chosen.tree);
                predictions.insert(run.run_id.clone(), choice.chosen.clone());
                choices.insert(run.label.clone(), choice.clone());
                let measure_on = MeasureOn {
                    conds: at.conds.iter().map(|c| c.cond.clone()).collect(),
                    cfg_rows,
                    drafted,
                    neighbours: loaded.neighbours.as_ref(),
                    pilot_images: pilots,
                };
                let check = AutoRun::new(sp.clone(), pilot, costs.clone(), choice, measure_on);
                (strategy, Some(label), Some(check))
            }
            _ => {
                if let Some(p) = auto.predict(base, &spec.sampling)? {
                    predictions.insert(run.run_id.clone(), p);
                }
                (
                    base.clone(),
                    spec.strategy.tree.clone().map(String::from),
                    None,
                )
            }
        };
        write_map(&files.predictions, &predictions)?;
        write_map(&files.auto, &choices)?;
        let mut models = models_for(set, &strategy);
        warm_up(models.as_mut(), &strategy, spec, ctx, at.cfg.runtime.warmup)?;
        let mut a = Active::new(spec, &run.run_id, strategy, tree_label, models);
        a.auto = auto_run;
        active.push(a);
    }
    Ok(active)
}

/// Where a sweep (or shard) keeps the cost model's predictions and `auto` choices.
pub(super) struct AutoFiles {
    /// `predictions.json`.
    pub predictions: PathBuf,
    /// `auto.json`.
    pub auto: PathBuf,
}

impl AutoFiles {
    /// The files of `at`'s sweep and shard.
    pub fn of(at: &Setting) -> Self {
        Self {
            predictions: at.dir.join(shard_file("predictions", "json", at.shard)),
            auto: at.dir.join(shard_file("auto", "json", at.shard)),
        }
    }

    /// Records `a`'s latest `auto` check: its choice in `auto.json`, its current prediction in
    /// `predictions.json`.
    pub fn record(&self, a: &Active) -> Result<(), HarnessError> {
        let Some(run) = &a.auto else {
            return Ok(());
        };
        let mut choices: BTreeMap<String, AutoChoice> = read_map(&self.auto);
        choices.insert(a.spec.label(), run.choice.clone());
        write_map(&self.auto, &choices)?;
        let mut predictions: BTreeMap<String, Prediction> = read_map(&self.predictions);
        predictions.insert(a.run_id.clone(), run.prediction().clone());
        write_map(&self.predictions, &predictions)?;
        Ok(())
    }
}

/// Generates every image of `active` not in `done` into `journal`; returns how many. `auto`
/// configurations check their tree as they go (`recheck.rs`), recorded in the context's
/// `auto_files`.
pub(super) fn generate_images<'b>(
    active: &mut [Active<'b>],
    context: &Context<'b>,
    conds: &[Cond],
    seeds: u64,
    done: &HashSet<ImageKey>,
    journal: &mut Journal,
    bar: &mut Progress,
) -> Result<usize, HarnessError> {
    let mut generated = 0;
    for cond in conds {
        for seed in 0..seeds {
            for a in active.iter_mut() {
                if done.contains(&(a.run_id.clone(), cond.class, cond.prompt, seed)) {
                    continue;
                }
                let record = context.image(a, cond, seed)?;
                journal.append(&record)?;
                generated += 1;
                if let Some(check) = check_auto(a, &record, context)? {
                    bar.println(&describe(&a.spec.label(), &check));
                    context.auto_files.record(a)?;
                }
                bar.inc(&format!("{} τ={:.2}", a.spec.label(), a.mean_tau()));
            }
        }
    }
    Ok(generated)
}
