//! The tree cost model behind `tree = "auto"`: predicted tokens per round and round cost of any
//! chain, static preset or dynamic budget, from measured step costs and from pilot rounds.
//!
//! Pilot images run two rich trees of the strategy's acceptance rule — the union of every
//! static preset and a long chain (sampled or top-k drafts, as the static trees draft), and the
//! kind's full dynamic tree — and each round records the accepted path as ranks
//! ([`crate::strategy::StepLog::accepted_ranks`]). A smaller tree accepts, in distribution, the
//! longest prefix of that path it contains: at every node, children are tried in rank order and
//! a child's test does not depend on the children after it; a budget-b dynamic tree is exactly the
//! b best-scored nodes of the full one. So each pilot round replays on every candidate exactly,
//! with no model of per-depth rates.

use serde::{Deserialize, Serialize};

use super::StepCosts;
use crate::strategy::{StepLog, TreeShape};
use crate::tree::StaticTree;

/// Longest chain the static pilot tree holds.
pub const PILOT_CHAIN: usize = 8;

/// What pilot rounds showed: accepted paths as ranks, and the host work per row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pilot {
    /// Rounds of the static pilot tree: the sibling ranks of the accepted path.
    pub static_paths: Vec<Vec<usize>>,
    /// Rounds of the full dynamic tree: the selection ranks of the accepted path.
    pub dynamic_paths: Vec<Vec<usize>>,
    /// The full dynamic tree the pilot ran.
    pub dynamic: Option<TreeShape>,
    /// Host work outside model forwards per row (verified node or drafted element), ms.
    pub host_ms_per_row: f64,
    /// What a round measured in the run costs beyond its prediction, ms, added to every
    /// speculative round (0 until an in-run check calibrates it; see [`Pilot::calibrate`]).
    #[serde(default)]
    pub round_offset_ms: f64,
}

impl Pilot {
    /// Adds the rounds of one pilot image on `shape` (the static pilot tree or the full dynamic).
    pub fn record(&mut self, shape: &TreeShape, steps: &[StepLog]) {
        for s in steps.iter().filter(|s| s.drafted > 0) {
            match shape {
                TreeShape::Static { .. } => self.static_paths.push(s.accepted_ranks.clone()),
                TreeShape::Dynamic { .. } => self.dynamic_paths.push(s.accepted_ranks.clone()),
            }
        }
    }

    /// Sets the host work per row from pilot rounds: (round time − forward time) / rows, with
    /// the rows of each round's tree `shape`.
    pub fn set_host_rate(&mut self, rounds: &[(TreeShape, StepLog)]) {
        let (mut host, mut rows) = (0.0, 0usize);
        for (shape, s) in rounds {
            host += (s.draft_ms + s.verify_ms - s.forward_ms).max(0.0);
            rows += s.drafted + 1 + drafter_rows(shape);
        }
        self.host_ms_per_row = if rows > 0 { host / rows as f64 } else { 0.0 };
    }

    /// Calibrates the per-round offset so that `shape`'s prediction equals `measured_ms`, the
    /// median cost per round the run measured on it: the step costs are timed in a decode
    /// loop's steady state of one forward size, while a round alternates drafter passes and a
    /// verify, and what that adds is taken to be the same for every candidate's round (the next
    /// in-run check tests that). Never negative: a round measured cheaper than predicted says the
    /// table was timed slow, and subtracting that from every round made the shortest chains look
    /// nearly free (seen: −1.2 ms from a chain:8 gave chain:1 a predicted 3.9× AR).
    pub fn calibrate(&mut self, shape: &TreeShape, costs: &StepCosts, measured_ms: f64) {
        self.round_offset_ms = 0.0;
        if let Some(p) = predict(shape, self, costs) {
            self.round_offset_ms = (measured_ms - p.round_ms).max(0.0);
        }
    }
}

/// The static pilot tree: every preset's rank paths and a chain of [`PILOT_CHAIN`].
pub fn static_pilot_tree() -> TreeShape {
    let mut paths = std::collections::BTreeSet::new();
    for name in StaticTree::preset_names() {
        if let Some(TreeShape::Static { choices, .. }) = TreeShape::static_preset(name) {
            paths.extend(choices);
        }
    }
    paths.extend((1..=PILOT_CHAIN).map(|d| vec![0; d]));
    TreeShape::Static {
        name: "pilot-union".into(),
        choices: paths.into_iter().collect(),
    }
}

/// Drafter elements a round of `shape` runs besides the root pass.
fn drafter_rows(shape: &TreeShape) -> usize {
    match shape {
        TreeShape::Static { choices, .. } => StaticTree::from_choices(choices)
            .map(|t| (1..t.depth()).map(|d| t.expanded_at(d).len()).sum())
            .unwrap_or(0),
        TreeShape::Dynamic { top_k, depth, .. } => top_k * depth,
    }
}

/// Predicted behaviour of one tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The tree (`chain:3`, a preset name, `dynamic@16`).
    pub tree: String,
    /// Predicted tokens per round (accepted drafts + the bonus).
    pub tau: f64,
    /// Predicted milliseconds per round: drafting, verification and host work.
    pub round_ms: f64,
    /// Predicted speedup over AR: τ · (AR step) / (round cost).
    pub speedup: f64,
    /// Pilot rounds the prediction replays.
    pub rounds: usize,
}

/// Length of the longest prefix of `ranks` inside a tree: `contains(prefix)` for each prefix.
fn accepted(ranks: &[usize], mut contains: impl FnMut(&[usize]) -> bool) -> usize {
    (1..=ranks.len())
        .take_while(|&d| contains(&ranks[..d]))
        .count()
}

/// Predicts `shape` from the pilot and the step costs; `None` when the pilot cannot replay it
/// (a dynamic tree that is not a budget of the pilot's, a static tree outside the pilot tree).
pub fn predict(shape: &TreeShape, pilot: &Pilot, costs: &StepCosts) -> Option<Prediction> {
    let root = costs.draft_root_ms.unwrap_or(0.0);
    let (name, mean_accepted, rounds, nodes, draft) = match shape {
        TreeShape::Static { name, choices } => {
            let tree = StaticTree::from_choices(choices).ok()?;
            let set: std::collections::HashSet<&[usize]> =
                choices.iter().map(|c| c.as_slice()).collect();
            let pilot_tree = match static_pilot_tree() {
                TreeShape::Static { choices, .. } => choices,
                TreeShape::Dynamic { .. } => unreachable!("the static pilot tree is static"),
            };
            if !choices.iter().all(|c| pilot_tree.contains(c)) || pilot.static_paths.is_empty() {
                return None;
            }
            let total: usize = pilot
                .static_paths
                .iter()
                .map(|p| accepted(p, |prefix| set.contains(prefix)))
                .sum();
            let expansions: f64 = (1..tree.depth())
                .map(|d| costs.expand(tree.expanded_at(d).len()))
                .sum();
            let label = match name.strip_prefix("chain") {
                Some(d) if d.parse::<usize>().is_ok() => format!("chain:{d}"),
                _ => name.clone(),
            };
            (
                label,
                total as f64 / pilot.static_paths.len() as f64,
                pilot.static_paths.len(),
                tree.len() + 1,
                root + expansions,
            )
        }
        TreeShape::Dynamic {
            top_k,
            depth,
            total_tokens,
        } => {
            let full = pilot.dynamic.as_ref()?;
            if pilot.dynamic_paths.is_empty()
                || full.with_budget(*total_tokens).ok()? != *shape
                || *total_tokens > full.budget()
            {
                return None;
            }
            let b = *total_tokens;
            let total: usize = pilot
                .dynamic_paths
                .iter()
                .map(|p| accepted(p, |prefix| prefix[prefix.len() - 1] <= b))
                .sum();
            (
                format!("dynamic@{b}"),
                total as f64 / pilot.dynamic_paths.len() as f64,
                pilot.dynamic_paths.len(),
                b + 1,
                root + *depth as f64 * costs.expand(*top_k),
            )
        }
    };
    let host = pilot.host_ms_per_row * (nodes + drafter_rows(shape)) as f64;
    let round_ms = (draft + costs.verify(nodes) + host + pilot.round_offset_ms).max(f64::EPSILON);
    let ar_ms = costs.ar_step() + pilot.host_ms_per_row;
    let tau = mean_accepted + 1.0;
    Some(Prediction {
        tree: name,
        tau,
        round_ms,
        speedup: tau * ar_ms / round_ms,
        rounds,
    })
}

/// Every candidate `auto` weighs: chains of 1..=[`PILOT_CHAIN`], the static presets, and every
/// budget of the full dynamic tree.
pub fn candidates(full_dynamic: &TreeShape) -> Vec<TreeShape> {
    let mut out: Vec<TreeShape> = (1..=PILOT_CHAIN).map(TreeShape::chain).collect();
    out.extend(
        StaticTree::preset_names()
            .iter()
            .filter(|&&n| n != "chain")
            .filter_map(|n| TreeShape::static_preset(n)),
    );
    out.extend((1..=full_dynamic.budget()).filter_map(|b| full_dynamic.with_budget(b).ok()));
    out
}

/// The candidate with the best predicted speedup, and every candidate's prediction.
pub fn choose(pilot: &Pilot, costs: &StepCosts) -> Option<(TreeShape, Vec<Prediction>)> {
    let full = pilot.dynamic.clone()?;
    let scored: Vec<(TreeShape, Prediction)> = candidates(&full)
        .into_iter()
        .filter_map(|c| predict(&c, pilot, costs).map(|p| (c, p)))
        .collect();
    let best = scored
        .iter()
        .max_by(|a, b| a.1.speedup.total_cmp(&b.1.speedup))?
        .0
        .clone();
    Some((best, scored.into_iter().map(|(_, p)| p).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs() -> StepCosts {
        StepCosts {
            rows: 2,
            prefix: 128,
            verify_ms: vec![
                (1, 1.0),
                (2, 1.2),
                (4, 1.6),
                (8, 2.4),
                (16, 4.0),
                (64, 13.6),
            ],
            draft_root_ms: Some(0.2),
            draft_expand_ms: vec![(1, 0.2), (4, 0.3), (10, 0.5)],
            spread: 0.0,
            passes: 1,
        }
    }

    #[test]
    fn rounds_replay_as_longest_contained_prefixes() {
        let pilot = Pilot {
            static_paths: vec![vec![0, 0, 1], vec![1], vec![], vec![0, 0, 0, 0]],
            dynamic_paths: vec![vec![1, 3, 9], vec![2]],
            dynamic: Some(TreeShape::lantern_dynamic()),
            host_ms_per_row: 0.0,
            round_offset_ms: 0.0,
        };
        let c = costs();
        // chain:2 accepts [0, 0] of the first, nothing of the second and third, two of the last.
        let p = predict(&TreeShape::chain(2), &pilot, &c).unwrap();
        assert_eq!(p.tau, 1.0 + (2.0 + 0.0 + 0.0 + 2.0) / 4.0);
        assert_eq!(p.tree, "chain:2");
        // Drafting: the root pass and one 1-element expansion; verify of 3 nodes.
        assert!((p.round_ms - (0.2 + 0.2 + 1.4)).abs() < 1e-9);
        assert!((p.speedup - p.tau * 1.0 / p.round_ms).abs() < 1e-12);
        // Budget 3 keeps selection ranks ≤ 3: [1, 3] of the first round, [2] of the second.
        let b3 = TreeShape::lantern_dynamic().with_budget(3).unwrap();
        let p = predict(&b3, &pilot, &c).unwrap();
        assert_eq!(p.tau, 1.0 + (2.0 + 1.0) / 2.0);
        assert_eq!(p.tree, "dynamic@3");
        // A dynamic tree that is not a budget of the pilot's cannot be replayed.
        let other = TreeShape::Dynamic {
            top_k: 2,
            depth: 1,
            total_tokens: 3,
        };
        assert!(predict(&other, &pilot, &c).is_none());
    }

    #[test]
    fn the_static_pilot_tree_holds_every_candidate() {
        let TreeShape::Static { choices, .. } = static_pilot_tree() else {
            unreachable!()
        };
        assert!(StaticTree::from_choices(&choices).is_ok());
        for c in candidates(&TreeShape::lantern_dynamic()) {
            if let TreeShape::Static { choices: cc, .. } = c {
                assert!(cc.iter().all(|p| choices.contains(p)));
            }
        }
    }

    #[test]
    fn calibration_moves_every_round_by_what_the_checked_tree_measured_beyond_its_prediction() {
        let mut pilot = Pilot {
            static_paths: vec![vec![0, 0, 1], vec![1], vec![], vec![0, 0, 0, 0]],
            dynamic_paths: Vec::new(),
            dynamic: None,
            host_ms_per_row: 0.0,
            round_offset_ms: 0.0,
        };
        let c = costs();
        let (two, four) = (TreeShape::chain(2), TreeShape::chain(4));
        let before = (
            predict(&two, &pilot, &c).unwrap(),
            predict(&four, &pilot, &c).unwrap(),
        );
        pilot.calibrate(&two, &c, before.0.round_ms + 0.5);
        let after = (
            predict(&two, &pilot, &c).unwrap(),
            predict(&four, &pilot, &c).unwrap(),
        );
        assert!((after.0.round_ms - (before.0.round_ms + 0.5)).abs() < 1e-9);
        assert!((after.1.round_ms - (before.1.round_ms + 0.5)).abs() < 1e-9);
        // τ is the pilot's; only the cost moves, so the longer chain gains on the shorter.
        assert_eq!((after.0.tau, after.1.tau), (before.0.tau, before.1.tau));
        assert!(after.1.speedup / after.0.speedup > before.1.speedup / before.0.speedup);
        // Calibrating again starts from the uncalibrated prediction, not on top of the last.
        pilot.calibrate(&two, &c, before.0.round_ms);
        assert!(pilot.round_offset_ms.abs() < 1e-9);
        // Rounds cheaper than predicted leave the prediction as it is.
        pilot.calibrate(&two, &c, before.0.round_ms - 0.5);
        assert_eq!(pilot.round_offset_ms, 0.0);
    }
}
