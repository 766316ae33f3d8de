//! Grid expansion: a sweep file becomes a list of run specs, each with a stable identity.

use serde::Serialize;

use lantern_decoding::sampling::{Sampling, TemperatureRule, WarpOrder};
use lantern_decoding::spec::{Kind, StrategySpec};

use crate::config::SweepConfig;

/// One configuration of the grid: a resolved strategy spec and the sampling settings. Its JSON
/// form (the spec's keys flattened, then `sampling`, `auto_added`) is the run's identity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSpec {
    /// The strategy with its parameters (defaults filled in).
    #[serde(flatten)]
    pub strategy: StrategySpec,
    /// Sampling settings.
    pub sampling: Sampling,
    /// Added because the sweep had no AR baseline.
    pub auto_added: bool,
}

impl RunSpec {
    /// A short human label: `lantern k=10 δ=0.1 (dynamic)`, with ` entropy-T` under the
    /// entropy-aware temperature.
    pub fn label(&self) -> String {
        let mut s = self.strategy.label();
        if self.sampling.temperature_rule == TemperatureRule::Entropy {
            s += " entropy-T";
        }
        s
    }

    /// Stable identity of the resolved spec together with the model identity: FNV-1a 64 over
    /// canonical JSON, as 16 hex digits.
    pub fn run_id(&self, model_identity: &str) -> String {
        let json = serde_json::to_string(&(self, model_identity)).expect("serialisable");
        format!("{:016x}", fnv1a(json.as_bytes()))
    }
}

pub use lantern_models::checkpoint::fnv1a;

/// Every sampling configuration of the grid.
fn samplings(cfg: &SweepConfig) -> Vec<Sampling> {
    let s = &cfg.sampling;
    let mut out = Vec::new();
    let rules: Vec<TemperatureRule> =
        s.temperature_rule
            .as_ref()
            .map_or(vec![TemperatureRule::Fixed], |v| {
                v.values()
                    .iter()
                    .map(|r| TemperatureRule::parse(r).expect("validated"))
                    .collect()
            });
    for rule in rules {
        for t in s.temperature.values() {
            for k in s.top_k.values() {
                for p in s.top_p.values() {
                    for c in s.cfg.values() {
                        out.push(Sampling {
                            temperature: t as f32,
                            top_k: k as usize,
                            top_p: p as f32,
                            cfg_scale: c as f32,
                            cfg_interval: s.cfg_interval.filter(|&i| i >= 0).map(|i| i as usize),
                            warp_order: s.order.as_deref().map_or(WarpOrder::TopKThenTopP, |o| {
                                WarpOrder::parse(o).expect("validated")
                            }),
                            temperature_rule: rule,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Expands the sweep into run specs (sampling grid × each strategy table's grid, see
/// [`crate::config::grid`]). A sweep without an `ar` strategy gets one added per sampling
/// configuration, flagged `auto_added`.
pub fn expand(cfg: &SweepConfig) -> Vec<RunSpec> {
    let grids: Vec<Vec<StrategySpec>> = (0..cfg.strategy.len())
        .map(|i| cfg.strategy_grid(i).expect("validated"))
        .collect();
    let has_ar = grids.iter().flatten().any(|s| s.kind == Kind::Ar);
    let mut specs = Vec::new();
    for sampling in samplings(cfg) {
        if !has_ar {
            specs.push(RunSpec {
                strategy: StrategySpec::of(Kind::Ar),
                sampling: sampling.clone(),
                auto_added: true,
            });
        }
        for spec in grids.iter().flatten() {
            specs.push(RunSpec {
                strategy: spec.clone(),
                sampling: sampling.clone(),
                auto_added: false,
            });
        }
    }
    specs
}

/// One configuration of a sweep's plan, as `plan.json` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedRun {
    /// The human label ([`RunSpec::label`]).
    pub label: String,
    /// [`RunSpec::run_id`] under the plan's model identity.
    pub run_id: String,
    /// The shard that runs it (sharded sweeps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// The resolved configuration.
    pub spec: RunSpec,
}

/// A sweep's plan (stage config → plan): the model identity its run ids hash and every
/// configuration with its id and shard. A plain value: nothing is loaded or written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepPlan {
    /// The model half of every run id ([`crate::runner::sweep_identity`]).
    pub identity: String,
    /// The shard this invocation runs, if any.
    pub shard: Option<crate::shard::Shard>,
    /// Every configuration of the grid, in [`expand`]'s order.
    pub runs: Vec<PlannedRun>,
}

impl SweepPlan {
    /// The plan of `specs` under `identity`; with a shard, configurations are balanced over its
    /// count by [`crate::shard::expected_cost`].
    pub fn new(specs: Vec<RunSpec>, identity: String, shard: Option<crate::shard::Shard>) -> Self {
        let run_ids: Vec<String> = specs.iter().map(|s| s.run_id(&identity)).collect();
        let shard_of = shard.map(|s| {
            let costs: Vec<(&str, f64)> = run_ids
                .iter()
                .zip(&specs)
                .map(|(id, spec)| (id.as_str(), crate::shard::expected_cost(spec)))
                .collect();
            crate::shard::assign(&costs, s.count)
        });
        let runs = specs
            .into_iter()
            .zip(run_ids)
            .enumerate()
            .map(|(i, (spec, run_id))| PlannedRun {
                label: spec.label(),
                run_id,
                shard: shard_of.as_ref().map(|s| s[i]),
                spec,
            })
            .collect();
        Self {
            identity,
            shard,
            runs,
        }
    }

    /// The runs this invocation executes: all, or its shard's.
    pub fn mine(&self) -> impl Iterator<Item = (usize, &PlannedRun)> {
        self.runs
            .iter()
            .enumerate()
            .filter(move |(_, r)| self.shard.is_none_or(|s| r.shard == Some(s.index)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Shard;

    fn spec(kind: Kind) -> RunSpec {
        RunSpec {
            strategy: StrategySpec::of(kind).resolved(),
            sampling: Sampling {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                cfg_scale: 3.0,
                cfg_interval: None,
                warp_order: WarpOrder::TopKThenTopP,
                temperature_rule: TemperatureRule::Fixed,
            },
            auto_added: false,
        }
    }

    #[test]
    fn a_plan_holds_ids_shards_and_this_invocations_runs() {
        let specs = vec![spec(Kind::Ar), spec(Kind::Sd), spec(Kind::Sjd)];
        let whole = SweepPlan::new(specs.clone(), "model".into(), None);
        assert_eq!(whole.mine().count(), 3);
        for r in &whole.runs {
            assert_eq!((r.shard, r.run_id.clone()), (None, r.spec.run_id("model")));
        }
        let other = SweepPlan::new(specs.clone(), "other model".into(), None);
        assert_ne!(whole.runs[0].run_id, other.runs[0].run_id);
        let halves: Vec<SweepPlan> = (0..2)
            .map(|index| {
                let shard = Shard { index, count: 2 };
                SweepPlan::new(specs.clone(), "model".into(), Some(shard))
            })
            .collect();
        assert_eq!(halves.iter().map(|h| h.mine().count()).sum::<usize>(), 3);
        for (i, h) in halves.iter().enumerate() {
            assert!(h.mine().all(|(_, r)| r.shard == Some(i)));
            assert_eq!(h.runs.len(), 3);
        }
    }
}
