//! The configuration columns of `runs.parquet` and `summary.parquet`: declared once, filled from
//! a run's spec, flattened into [`crate::records::Record`] and [`crate::summary::Summary`].
//!
//! Parameters are Float64 holding exactly the decimal the config said (`delta = 0.05` reads back
//! as 0.05 in pandas or duckdb, and `delta == 0.05` selects it).

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::plan::RunSpec;

/// What a run was configured to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Strategy kind (`ar`, `sd`, `lantern`, `lantern++`, `sjd`, `scd`, `gsd`, `zipar`).
    pub strategy: String,
    /// Tree shape as configured (`auto` records the budget it chose, e.g. `auto→dynamic@16`).
    pub tree: Option<String>,
    /// Neighbours per drafted token.
    pub k: Option<u32>,
    /// LANTERN's δ.
    pub delta: Option<f64>,
    /// LANTERN++'s λ.
    pub lambda: Option<f64>,
    /// Window (SJD family, ZipAR).
    pub window: Option<u32>,
    /// Official residual quirks used (speculative kinds).
    pub official_compat: Option<bool>,
    /// LANTERN's rule when not the paper's (`bounded`).
    #[serde(default)]
    pub relax: Option<String>,
    /// How fresh Jacobi positions start (sjd, scd, gsd).
    #[serde(default)]
    pub init: Option<String>,
    /// The proposal fresh Jacobi drafts record (`one_hot`, `uniform`; sjd, scd, gsd).
    #[serde(default)]
    pub fresh_proposal: Option<String>,
    /// SCD's coupling.
    #[serde(default)]
    pub coupling: Option<String>,
    /// GSD's group rule, e.g. `G=7 p<0.15 d<q0.1` (`d<q…`: a quantile of pair distances).
    #[serde(default)]
    pub grouping: Option<String>,
    /// AR baseline added because the sweep had none.
    pub auto_added: bool,
    /// Sampling temperature (T0 under the entropy-aware rule).
    pub temperature: f64,
    /// Top-k filter (0 = off).
    pub top_k: u32,
    /// Top-p filter (1 = off).
    pub top_p: f64,
    /// CFG scale.
    pub cfg: f64,
    /// Order of top-k and top-p.
    #[serde(default)]
    pub warp_order: String,
    /// `fixed` or `entropy` (entropy-aware temperature).
    #[serde(default)]
    pub temperature_rule: String,
}

/// The decimal an `f32` setting was written as (its shortest representation), as an `f64`.
pub fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

impl Config {
    /// The columns of `spec`; `tree` as the runner resolved it.
    pub fn of(spec: &RunSpec, tree: Option<String>) -> Self {
        let (st, s) = (&spec.strategy, &spec.sampling);
        Self {
            strategy: st.kind.name().into(),
            tree,
            k: st.k.map(|k| k as u32),
            delta: st.delta,
            lambda: st.lambda,
            window: st.window.map(|w| w as u32),
            official_compat: st.official_compat,
            relax: st.relax.map(|_| "bounded".into()),
            init: st.init_name().map(Into::into),
            fresh_proposal: st
                .kind
                .is_jacobi()
                .then(|| st.fresh_proposal.unwrap_or_default().name().into()),
            coupling: st.coupling.map(|c| c.name().into()),
            grouping: st.grouping_label(),
            auto_added: spec.auto_added,
            temperature: decimal(s.temperature),
            top_k: s.top_k as u32,
            top_p: decimal(s.top_p),
            cfg: decimal(s.cfg_scale),
            warp_order: s.warp_order.name().into(),
            temperature_rule: s.temperature_rule.name().into(),
        }
    }

    /// What tells apart configurations of one strategy besides its numbers, as tables and plots
    /// name them: coupling, initialisation, group rule, and the fresh proposal when it is not
    /// SJD's own (one-hot).
    pub fn variant_parts(&self) -> Vec<String> {
        let fresh = self
            .fresh_proposal
            .as_deref()
            .filter(|&f| f != "one_hot")
            .map(|f| format!("q0 {f}"));
        [&self.coupling, &self.init, &self.grouping]
            .into_iter()
            .flatten()
            .cloned()
            .chain(fresh)
            .collect()
    }

    /// Greedy decoding (temperature ≤ 1e-5, as the sampler decides).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 1e-5
    }

    /// The configuration columns of `rows`, in table order.
    pub fn columns<'a>(rows: impl Iterator<Item = &'a Config> + Clone) -> Vec<Column> {
        macro_rules! c {
            ($name:expr, $f:expr) => {
                Column::new($name.into(), rows.clone().map($f).collect::<Vec<_>>())
            };
        }
        vec![
            c!("strategy", |r| r.strategy.clone()),
            c!("tree", |r| r.tree.clone()),
            c!("k", |r| r.k),
            c!("delta", |r| r.delta),
            c!("lambda", |r| r.lambda),
            c!("window", |r| r.window),
            c!("official_compat", |r| r.official_compat),
            c!("relax", |r| r.relax.clone()),
            c!("init", |r| r.init.clone()),
            c!("fresh_proposal", |r| r.fresh_proposal.clone()),
            c!("coupling", |r| r.coupling.clone()),
            c!("grouping", |r| r.grouping.clone()),
            c!("auto_added", |r| r.auto_added),
            c!("temperature", |r| r.temperature),
            c!("top_k", |r| r.top_k),
            c!("top_p", |r| r.top_p),
            c!("cfg", |r| r.cfg),
            c!("warp_order", |r| r.warp_order.clone()),
            c!("temperature_rule", |r| r.temperature_rule.clone()),
        ]
    }
}
