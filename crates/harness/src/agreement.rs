//! Whether two runs of one sweep agree on their speedups (`lantern compare --speedups`): per
//! configuration, matched by run id, each speedup by medians with its bootstrap 95% interval and
//! the rule the disturbance tests use; and per `auto` configuration, how far it is from the best
//! fixed tree of its kind in each run.

use std::fmt::Write as _;

use crate::report::{method_label, relax_label};
use crate::summary::Summary;

/// Relative gap under which two speedups agree whatever their intervals.
pub const TOLERANCE: f64 = 0.1;

/// Share of the best fixed tree's speedup an `auto` pick must reach (or not be told apart from).
pub const AUTO_SHARE: f64 = 0.9;

/// One configuration's speedup over AR by medians, and its 95% interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speedup {
    /// AR's median latency over this configuration's.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
}

impl Speedup {
    /// The speedup of `s`, when it has one (an interval-less speedup is its own interval).
    pub fn of(s: &Summary) -> Option<Self> {
        let value = s.speedup?;
        let (lo, hi) = s.speedup_ci.unwrap_or((value, value));
        Some(Self { value, lo, hi })
    }

    /// Whether `self` and `reference` agree within their noise: at most [`TOLERANCE`] of the
    /// reference apart, or either inside the other's interval.
    pub fn agrees(&self, reference: &Self) -> bool {
        (self.value - reference.value).abs() <= TOLERANCE * reference.value
            || (self.lo..=self.hi).contains(&reference.value)
            || (reference.lo..=reference.hi).contains(&self.value)
    }
}

/// One configuration of the two runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Method, tree and relaxation, as the headline table names them.
    pub label: String,
    /// Whether its tree is `auto` (whose pick may differ between the runs).
    pub auto: bool,
    /// Its speedup in the reference run.
    pub reference: Option<Speedup>,
    /// Its speedup in the other run.
    pub other: Option<Speedup>,
}

impl Row {
    /// Whether both runs have the speedup and it agrees (`None` when either lacks it).
    pub fn agrees(&self) -> Option<bool> {
        Some(self.other?.agrees(&self.reference?))
    }
}

/// Every configuration of `reference` (the reference run's order) beside `other`'s, matched by run
/// id (an `auto` configuration's id is that of `tree = "auto"`, whatever it picked).
pub fn rows(reference: &[Summary], other: &[Summary]) -> Vec<Row> {
    reference
        .iter()
        .map(|r| {
            let twin = other.iter().find(|o| o.run_id == r.run_id);
            Row {
                label: label(r),
                auto: is_auto(r),
                reference: Speedup::of(r),
                other: twin.and_then(Speedup::of),
            }
        })
        .collect()
}

/// An `auto` configuration against the best fixed tree of its kind in the same run.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoCheck {
    /// The `auto` configuration (with the tree it picked).
    pub label: String,
    /// Its speedup.
    pub auto: Speedup,
    /// The best fixed tree of the same method and relaxation.
    pub best_label: String,
    /// That tree's speedup.
    pub best: Speedup,
}

impl AutoCheck {
    /// Whether `auto` reaches [`AUTO_SHARE`] of the best fixed tree, or the runs cannot tell it
    /// from that: `auto` inside the best's interval, or [`AUTO_SHARE`] of the best inside `auto`'s
    /// (the best of several noisy fixed trees is biased upwards, so point values alone flake).
    pub fn within(&self) -> bool {
        let share = AUTO_SHARE * self.best.value;
        self.auto.value >= share
            || (self.best.lo..=self.best.hi).contains(&self.auto.value)
            || (self.auto.lo..=self.auto.hi).contains(&share)
    }
}

/// Every `auto` configuration of `run` that has fixed trees of its kind beside it.
pub fn auto_checks(run: &[Summary]) -> Vec<AutoCheck> {
    run.iter()
        .filter(|s| is_auto(s))
        .filter_map(|a| {
            let auto = Speedup::of(a)?;
            let (best, speedup) = run
                .iter()
                .filter(|s| !is_auto(s) && s.config.tree.is_some() && kind(s) == kind(a))
                .filter_map(|s| Some((s, Speedup::of(s)?)))
                .max_by(|x, y| x.1.value.total_cmp(&y.1.value))?;
            Some(AutoCheck {
                label: label(a),
                auto,
                best_label: label(best),
                best: speedup,
            })
        })
        .collect()
}

/// The comparison as text: a line per configuration, the count that agree, and the `auto` checks
/// of both runs.
pub fn render(names: (&str, &str), reference: &[Summary], other: &[Summary]) -> String {
    let rows = rows(reference, other);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "speedups by medians [95% interval]: {} (reference) and {}",
        names.0, names.1
    );
    for r in &rows {
        let verdict = match r.agrees() {
            Some(true) => "agree",
            Some(false) => "DIFFER",
            None => "—",
        };
        let _ = writeln!(
            s,
            "  {:<48} {:>22} {:>22}  {verdict}",
            r.label,
            cell(r.reference),
            cell(r.other)
        );
    }
    let compared: Vec<bool> = rows.iter().filter_map(Row::agrees).collect();
    let _ = writeln!(
        s,
        "{} of {} configurations agree within noise (≤ {:.0}% apart, or one inside the other's interval)",
        compared.iter().filter(|&&a| a).count(),
        compared.len(),
        TOLERANCE * 100.0
    );
    for (name, run) in [(names.0, reference), (names.1, other)] {
        for c in auto_checks(run) {
            let _ = writeln!(
                s,
                "{name}: {} {:.2}× against the best fixed tree {} {} ({})",
                c.label,
                c.auto.value,
                c.best_label,
                cell(Some(c.best)),
                if c.within() {
                    format!("within {:.0}%", (1.0 - AUTO_SHARE) * 100.0)
                } else {
                    "OUTSIDE".into()
                }
            );
        }
    }
    s
}

/// `1.23× [1.10, 1.31]`, or `—`.
fn cell(x: Option<Speedup>) -> String {
    x.map_or("—".into(), |x| {
        format!("{:.2}× [{:.2}, {:.2}]", x.value, x.lo, x.hi)
    })
}

/// Whether the configuration's tree was chosen by `auto`.
pub fn is_auto(s: &Summary) -> bool {
    s.config
        .tree
        .as_deref()
        .is_some_and(|t| t.starts_with("auto"))
}

/// Method, relaxation and sampling, the tree left out: the kind an `auto` tree competes within.
fn kind(s: &Summary) -> (String, Option<u32>, String, f64, f64) {
    (
        method_label(s),
        s.config.k,
        relax_label(s),
        s.config.temperature,
        s.config.cfg,
    )
}

/// `lantern (k 1000, δ=0.1) chain:3`.
fn label(s: &Summary) -> String {
    let relax = relax_label(s);
    let params: Vec<String> = s
        .config
        .k
        .map(|k| format!("k {k}"))
        .into_iter()
        .chain((relax != "—").then_some(relax))
        .collect();
    let mut out = method_label(s);
    if !params.is_empty() {
        out += &format!(" ({})", params.join(", "));
    }
    if let Some(tree) = &s.config.tree {
        out += &format!(" {tree}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(value: f64, lo: f64, hi: f64) -> Speedup {
        Speedup { value, lo, hi }
    }

    #[test]
    fn speedups_agree_when_close_or_inside_an_interval() {
        let reference = x(1.50, 1.40, 1.60);
        // 9% apart, intervals disjoint.
        assert!(x(1.365, 1.36, 1.37).agrees(&reference));
        // 20% apart, but the other's interval holds the reference.
        assert!(x(1.20, 1.00, 1.55).agrees(&reference));
        // 20% apart, the reference's interval holds the other.
        assert!(x(1.20, 1.19, 1.21).agrees(&x(1.50, 1.10, 1.60)));
        // 20% apart, disjoint intervals.
        assert!(!x(1.20, 1.15, 1.25).agrees(&reference));
    }

    #[test]
    fn auto_within_ninety_percent_of_the_best_or_not_told_apart_from_it() {
        let check = |auto: Speedup, best: Speedup| AutoCheck {
            label: "a".into(),
            auto,
            best_label: "b".into(),
            best,
        };
        assert!(check(x(0.91, 0.9, 0.92), x(1.0, 0.99, 1.01)).within());
        // Inside the best's interval.
        assert!(check(x(0.80, 0.7, 0.9), x(1.0, 0.75, 1.2)).within());
        // 90% of the best inside auto's interval.
        assert!(check(x(0.80, 0.7, 0.92), x(1.0, 0.95, 1.05)).within());
        // Below 90% of the best beyond both intervals.
        assert!(!check(x(0.80, 0.7, 0.88), x(1.0, 0.95, 1.05)).within());
    }
}
