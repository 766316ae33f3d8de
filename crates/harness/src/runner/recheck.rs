//! `tree = "auto"` checks itself while the sweep runs: after 4, 8, 16, … quiet images of the
//! chosen tree, their median cost per round is compared with the cost model's prediction
//! ([`RoundCheck`]). At the first check, and whenever the two disagree beyond the noise,
//! everything the prediction timed is measured again — the step costs, and the pilot (its host
//! work per row is timed) — the model is calibrated so that the tree that ran predicts no less
//! than its rounds measured (an offset per round, the same for every candidate, never negative:
//! [`Pilot::calibrate`]), and the tree is re-chosen (after the first check at most
//! [`MAX_RECHOICES`] times); a new tree gets its own models and warm-up, and later records name
//! it. Every check goes into `auto.json`.

use lantern_decoding::cost::check::{due, RoundCheck};
use lantern_decoding::cost::{run_pilot, Pilot, Prediction, StepCosts};
use lantern_decoding::model::ImageCondition;
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::strategy::{Speculative, Strategy};

use super::image::{Active, Context};
use super::HarnessError;
use crate::auto::{choose_tree, measure_costs, AutoCheck, AutoChoice, COST_REPEATS};
use crate::records::Record;

/// Choices re-made per configuration at most after the first check's (each costs a measurement
/// of the step costs and a pilot).
pub const MAX_RECHOICES: usize = 2;

/// What the cost model's inputs are measured on, as at set-up.
pub(super) struct MeasureOn<'a> {
    /// The sweep's conditions (step costs on the first, pilots over all).
    pub conds: Vec<ImageCondition>,
    /// Whether forwards carry CFG rows.
    pub cfg_rows: bool,
    /// Whether drafter passes are measured.
    pub drafted: bool,
    /// Latent neighbours of the relaxed rules.
    pub neighbours: Option<&'a NeighbourTable>,
    /// Pilot images per tree (`[runtime] pilot_images`).
    pub pilot_images: usize,
}

/// An `auto` configuration's choice, under check.
pub(super) struct AutoRun<'a> {
    /// The strategy without its tree.
    base: Speculative,
    /// The pilot the choice replays.
    pilot: Pilot,
    /// The step costs the current choice was made with.
    costs: StepCosts,
    /// The current choice's prediction.
    prediction: Prediction,
    /// What `auto.json` records for the configuration.
    pub choice: AutoChoice,
    /// Milliseconds per round of the quiet images since the current choice.
    round_ms: Vec<f64>,
    /// Choices re-made so far.
    rechoices: usize,
    /// What step costs and pilots are measured on.
    measure_on: MeasureOn<'a>,
}

impl<'a> AutoRun<'a> {
    /// A choice made at set-up from `pilot` and `costs`.
    pub fn new(
        base: Speculative,
        pilot: Pilot,
        costs: StepCosts,
        choice: AutoChoice,
        measure_on: MeasureOn<'a>,
    ) -> Self {
        Self {
            base,
            pilot,
            costs,
            prediction: choice.chosen.clone(),
            choice,
            round_ms: Vec::new(),
            rechoices: 0,
            measure_on,
        }
    }

    /// The current choice's prediction.
    pub fn prediction(&self) -> &Prediction {
        &self.prediction
    }
}

/// Adds `record` (just made by `a`) to its `auto` check and runs the check when due; returns the
/// check made, if any. A disagreeing check re-measures the step costs and re-chooses the tree.
pub(super) fn check_auto<'b>(
    a: &mut Active<'b>,
    record: &Record,
    ctx: &Context<'b>,
) -> Result<Option<AutoCheck>, HarnessError> {
    let Some(mut run) = a.auto.take() else {
        return Ok(None);
    };
    let entry = check_run(a, &mut run, record, ctx);
    a.auto = Some(run);
    entry
}

fn check_run<'b>(
    a: &mut Active<'b>,
    run: &mut AutoRun<'b>,
    record: &Record,
    ctx: &Context<'b>,
) -> Result<Option<AutoCheck>, HarnessError> {
    if record.disturbed.is_some() || record.steps == 0 {
        return Ok(None);
    }
    run.round_ms
        .push((record.latency_ms - record.prefill_ms).max(0.0) / record.steps as f64);
    if !due(run.round_ms.len()) {
        return Ok(None);
    }
    let check = RoundCheck::new(
        run.prediction.round_ms,
        &run.round_ms,
        run.costs.spread,
        COST_REPEATS,
    )
    .expect("rounds measured");
    let mut entry = AutoCheck {
        after_images: a.images(),
        tree: run.prediction.tree.clone(),
        check: check.clone(),
        ar_step_ms: run.costs.ar_step(),
        remeasured_ar_step_ms: None,
        round_offset_ms: None,
        rechosen: None,
    };
    // The first check measures again whatever it finds: a neighbour at set-up can distort the
    // costs of the trees not chosen (and the AR step) while the chosen tree's own rounds still
    // match their prediction, which a check of those rounds alone cannot see.
    let first = run.choice.checks.is_empty();
    if first || (check.disagrees() && run.rechoices < MAX_RECHOICES) {
        let m = &run.measure_on;
        let costs = measure_costs(ctx.set, &m.conds[0], m.cfg_rows, m.drafted)?;
        let mut pilot = run_pilot(
            ctx.set,
            &run.base,
            &a.spec.sampling,
            m.neighbours,
            &m.conds,
            m.pilot_images,
        )?;
        if let Strategy::Speculative(current) = &a.strategy {
            pilot.calibrate(&current.tree, &costs, check.measured_ms);
        }
        let (strategy, choice) = choose_tree(&run.base, &pilot, &costs)?;
        entry.remeasured_ar_step_ms = Some(costs.ar_step());
        entry.round_offset_ms = Some(pilot.round_offset_ms);
        entry.rechosen = Some(choice.chosen.clone());
        let changed = choice.chosen.tree != run.prediction.tree;
        run.rechoices += usize::from(!first);
        run.round_ms.clear();
        run.costs = costs;
        run.pilot = pilot;
        run.prediction = choice.chosen;
        if changed {
            a.switch(strategy, format!("auto→{}", run.prediction.tree), ctx)?;
        }
    }
    run.choice.checks.push(entry.clone());
    Ok(Some(entry))
}

/// One line for the terminal about a check.
pub(super) fn describe(label: &str, c: &AutoCheck) -> String {
    let head = format!(
        "{label}: auto check after {} images: {} measured {:.2} ms/round vs predicted {:.2} ({:+.0}%, tolerance ±{:.0}%)",
        c.after_images,
        c.tree,
        c.check.measured_ms,
        c.check.predicted_ms,
        100.0 * c.check.error(),
        100.0 * c.check.tolerance
    );
    let again = match c.round_offset_ms {
        Some(o) => format!("step costs and pilot measured again, rounds calibrated {o:+.2} ms"),
        None => "step costs and pilot measured again".into(),
    };
    match &c.rechosen {
        Some(p) if p.tree != c.tree => format!(
            "{head}; {again}, re-chosen → {} (predicted {:.2} ms/round, {:.2}× AR)",
            p.tree, p.round_ms, p.speedup
        ),
        Some(p) => format!(
            "{head}; {again}, {} kept (predicted {:.2} ms/round)",
            p.tree, p.round_ms
        ),
        None => head,
    }
}
