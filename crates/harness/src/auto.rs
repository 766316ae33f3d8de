//! `tree = "auto"` in sweeps, and the predictions beside the measurements.
//!
//! Step costs are measured at set-up (`verify_cost.json`). Every acceptance rule (kind,
//! relaxation, residuals) and sampling setting that has an `auto` tree gets one pilot; the tree
//! cost model then picks the auto tree and predicts every other tree of that rule in the sweep,
//! so that `predictions.json` (and `predicted_speedup` in the summary) shows where the model is
//! wrong. `auto.json` lists every candidate's prediction, and the in-run checks of each choice
//! (`runner/recheck.rs`): measured cost per round against the prediction, and the choice re-made
//! on step costs measured again when they disagree.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lantern_decoding::cost::{
    choose, measure_step_costs, predict, run_pilot, Pilot, Prediction, RoundCheck, StepCosts,
};
use lantern_decoding::engine::{models_sized, ModelSet};
use lantern_decoding::model::ImageCondition;
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::sampling::Sampling;
use lantern_decoding::spec::TreeChoice;
use lantern_decoding::strategy::{DecodeError, Speculative, Strategy};
use serde::{Deserialize, Serialize};

use crate::plan::RunSpec;

/// The acceptance rule and sampling a pilot stands for (the tree left out).
fn group(spec: &Speculative, sampling: &Sampling) -> String {
    serde_json::to_string(&(&spec.relax, &spec.residuals, sampling)).expect("serialisable")
}

/// What `auto.json` holds for one auto configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AutoChoice {
    /// The tree chosen at set-up.
    pub chosen: Prediction,
    /// Every candidate's prediction.
    pub candidates: Vec<Prediction>,
    /// The in-run checks of the choice (absent in files written before them).
    #[serde(default)]
    pub checks: Vec<AutoCheck>,
}

/// One in-run check of an `auto` configuration's tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoCheck {
    /// Images of the configuration recorded when it was checked.
    pub after_images: usize,
    /// The tree that ran.
    pub tree: String,
    /// Measured against predicted cost per round.
    pub check: RoundCheck,
    /// AR step of the step costs the choice was made with, ms.
    pub ar_step_ms: f64,
    /// When the costs were measured again (the first check, or one that disagreed): their AR
    /// step, ms …
    pub remeasured_ar_step_ms: Option<f64>,
    /// … the per-round offset that calibrates the new costs to this tree's measured rounds, ms …
    #[serde(default)]
    pub round_offset_ms: Option<f64>,
    /// … and the choice re-made with them and a new pilot (possibly the same tree).
    pub rechosen: Option<Prediction>,
}

/// The tree the cost model picks for `base` from `pilot` and `costs`, with its prediction and
/// every candidate's.
pub fn choose_tree(
    base: &Speculative,
    pilot: &Pilot,
    costs: &StepCosts,
) -> Result<(Strategy, AutoChoice), DecodeError> {
    let (tree, candidates) = choose(pilot, costs).ok_or_else(|| {
        DecodeError::Setup("the tree cost model has no candidate to choose from".into())
    })?;
    let chosen = predict(&tree, pilot, costs).expect("a candidate is predictable");
    Ok((
        Strategy::Speculative(Speculative {
            tree,
            ..base.clone()
        }),
        AutoChoice {
            chosen,
            candidates,
            checks: Vec::new(),
        },
    ))
}

/// Pilots and predictions of one sweep.
pub struct AutoTrees<'a> {
    set: &'a dyn ModelSet,
    costs: &'a StepCosts,
    neighbours: Option<&'a NeighbourTable>,
    conds: Vec<ImageCondition>,
    pilot_images: usize,
    /// Groups that have an `auto` tree.
    wanted: Vec<String>,
    pilots: HashMap<String, Pilot>,
}

impl<'a> AutoTrees<'a> {
    /// Prepares pilots for the groups of `specs` that have an `auto` tree.
    pub fn new(
        set: &'a dyn ModelSet,
        costs: &'a StepCosts,
        neighbours: Option<&'a NeighbourTable>,
        conds: Vec<ImageCondition>,
        pilot_images: usize,
        specs: &[(RunSpec, Strategy)],
    ) -> Self {
        let wanted = specs
            .iter()
            .filter(|(spec, _)| spec.strategy.tree.as_ref().is_some_and(TreeChoice::is_auto))
            .filter_map(|(spec, s)| match s {
                Strategy::Speculative(sp) => Some(group(sp, &spec.sampling)),
                _ => None,
            })
            .collect();
        Self {
            set,
            costs,
            neighbours,
            conds,
            pilot_images,
            wanted,
            pilots: HashMap::new(),
        }
    }

    /// The pilot of `spec`'s group (run on first use), or `None` when the group has no auto tree.
    fn pilot(
        &mut self,
        spec: &Speculative,
        sampling: &Sampling,
    ) -> Result<Option<&Pilot>, DecodeError> {
        let key = group(spec, sampling);
        if !self.wanted.contains(&key) {
            return Ok(None);
        }
        if !self.pilots.contains_key(&key) {
            let p = run_pilot(
                self.set,
                spec,
                sampling,
                self.neighbours,
                &self.conds,
                self.pilot_images,
            )?;
            self.pilots.insert(key.clone(), p);
        }
        Ok(self.pilots.get(&key))
    }

    /// The strategy an `auto` spec runs: the base strategy with the tree the cost model predicts
    /// fastest, with every candidate's prediction, and the pilot it was chosen from.
    pub fn choose(
        &mut self,
        base: &Speculative,
        sampling: &Sampling,
    ) -> Result<(Strategy, AutoChoice, Pilot), DecodeError> {
        let costs = self.costs;
        let pilot = self
            .pilot(base, sampling)?
            .ok_or_else(|| DecodeError::Setup("no pilot for an auto tree".into()))?;
        let (strategy, choice) = choose_tree(base, pilot, costs)?;
        Ok((strategy, choice, pilot.clone()))
    }

    /// The prediction for a fixed-tree strategy whose group has a pilot.
    pub fn predict(
        &mut self,
        strategy: &Strategy,
        sampling: &Sampling,
    ) -> Result<Option<Prediction>, DecodeError> {
        let Strategy::Speculative(spec) = strategy else {
            return Ok(None);
        };
        let costs = self.costs;
        Ok(self
            .pilot(spec, sampling)?
            .and_then(|p| predict(&spec.tree, p, costs)))
    }
}

/// Timings per size behind each measured step cost (their median is kept).
pub const COST_REPEATS: usize = 5;

/// Measures a sweep's step costs through `Models`: verifies of 1–128 tokens (up to half the
/// context) and drafter expansions of 1–32 elements, [`COST_REPEATS`] each, on `cond`.
pub fn measure_costs(
    set: &dyn ModelSet,
    cond: &ImageCondition,
    cfg_rows: bool,
    has_drafter: bool,
) -> Result<StepCosts, DecodeError> {
    let n = set.cost_context();
    let sizes: Vec<usize> = [1, 2, 4, 8, 16, 32, 64, 128]
        .into_iter()
        .filter(|&t| t <= n / 2)
        .collect();
    let expands: Vec<usize> = [1, 2, 4, 8, 16, 32]
        .into_iter()
        .filter(|&r| r <= n / 2)
        .collect();
    let mut models = models_sized(set, has_drafter, 129, 64);
    Ok(measure_step_costs(
        models.as_mut(),
        cond,
        cfg_rows,
        &sizes,
        &expands,
        COST_REPEATS,
    )?)
}

/// Reads a JSON map file (empty when absent).
pub fn read_map<T: for<'de> Deserialize<'de>>(path: &Path) -> BTreeMap<String, T> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Writes a JSON map file.
pub fn write_map<T: Serialize>(path: &Path, map: &BTreeMap<String, T>) -> std::io::Result<()> {
    std::fs::write(
        path,
        serde_json::to_string_pretty(map).map_err(std::io::Error::other)?,
    )
}
