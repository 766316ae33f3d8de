//! Grid expansion: a sweep file becomes a list of run specs, each with a stable identity.

use serde::{Deserialize, Serialize};

use lantern_decoding::sampling::{Sampling, TemperatureRule, WarpOrder};
use lantern_decoding::strategy::{
    Coupling, DistanceThreshold, Grouping, JacobiInit, Strategy, StrategyParams,
};

use crate::config::SweepConfig;

/// One configuration of the grid: a strategy with its parameters and the sampling settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Strategy kind (`ar`, `sd`, `lantern`, `lantern++`, `sjd`, `scd`, `gsd`, `zipar`).
    pub kind: String,
    /// Tree as written in the config (`None` for kinds without a tree).
    pub tree: Option<String>,
    /// Neighbours per token.
    pub k: Option<usize>,
    /// TVD budget δ.
    pub delta: Option<f32>,
    /// Ratio bound λ.
    pub lambda: Option<f32>,
    /// SJD window.
    pub window: Option<usize>,
    /// Official residual quirks (speculative kinds).
    pub official_compat: Option<bool>,
    /// LANTERN's rule when not the paper's: `bounded` (absent from the identity otherwise, so
    /// earlier run ids stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relax: Option<String>,
    /// Jacobi initialisation as configured (`None` = horizontal; absent from the identity then,
    /// so earlier SJD run ids stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// SCD's coupling (`maximal`, `gumbel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupling: Option<String>,
    /// GSD's rank half-window G.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// GSD's probability-gap threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_thr: Option<f32>,
    /// GSD's absolute squared-distance threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_thr: Option<f32>,
    /// GSD's distance threshold as a quantile of pair distances (when `d_thr` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_quantile: Option<f32>,
    /// Sampling settings.
    pub sampling: Sampling,
    /// Added because the sweep had no AR baseline.
    pub auto_added: bool,
}

impl RunSpec {
    /// The strategy this spec runs (tree `auto` resolves to the kind's default shape; the runner
    /// then sizes its budget).
    pub fn strategy(&self) -> Result<Strategy, String> {
        let params = StrategyParams {
            tree: self.tree.clone().filter(|t| t != "auto"),
            k: self.k.unwrap_or(1),
            delta: self.delta.unwrap_or(0.0),
            lambda: self.lambda.unwrap_or(1.0),
            window: self.window.unwrap_or(16),
            init: JacobiInit::parse(self.init.as_deref().unwrap_or("horizontal"))?,
            coupling: Coupling::parse(self.coupling.as_deref().unwrap_or("maximal"))?,
            grouping: self.grouping(),
            official_compat: self.official_compat.unwrap_or(false),
            bounded: self.relax.as_deref() == Some("bounded"),
        };
        Strategy::from_kind(&self.kind, &params)
    }

    /// GSD's group rule with its defaults filled in.
    fn grouping(&self) -> Grouping {
        let d = Grouping::DEFAULT;
        Grouping {
            half_window: self.group.unwrap_or(d.half_window),
            p_thr: self.p_thr.unwrap_or(d.p_thr),
            d_thr: match (self.d_thr, self.d_quantile) {
                (Some(a), _) => DistanceThreshold::Absolute(a),
                (None, Some(q)) => DistanceThreshold::Quantile(q),
                (None, None) => d.d_thr,
            },
        }
    }

    /// The Jacobi initialisation run (Jacobi kinds only).
    pub fn init_name(&self) -> Option<String> {
        matches!(self.kind.as_str(), "sjd" | "scd" | "gsd")
            .then(|| self.init.clone().unwrap_or_else(|| "horizontal".into()))
    }

    /// GSD's group rule as a short string, e.g. `G=7 p<0.15 d<q0.01` (GSD only).
    pub fn grouping_label(&self) -> Option<String> {
        (self.kind == "gsd").then(|| {
            let g = self.grouping();
            let d = match g.d_thr {
                DistanceThreshold::Absolute(a) => format!("d<{a}"),
                DistanceThreshold::Quantile(q) => format!("d<q{q}"),
            };
            format!("G={} p<{} {d}", g.half_window, g.p_thr)
        })
    }

    /// A short human label: `lantern k=10 δ=0.1 (dynamic)`.
    pub fn label(&self) -> String {
        let mut s = self.kind.clone();
        if let Some(k) = self.k {
            s += &format!(" k={k}");
        }
        if let Some(d) = self.delta {
            s += &format!(" δ={d}");
        }
        if let Some(r) = &self.relax {
            s += &format!(" {r}");
        }
        if let Some(l) = self.lambda {
            s += &format!(" λ={l}");
        }
        if let Some(w) = self.window {
            s += &format!(" L={w}");
        }
        if let Some(c) = &self.coupling {
            s += &format!(" {c}");
        }
        if let Some(i) = &self.init {
            s += &format!(" init={i}");
        }
        if let Some(g) = self.grouping_label() {
            s += &format!(" {g}");
        }
        if let Some(t) = &self.tree {
            s += &format!(" ({t})");
        }
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

fn cartesian<T: Clone>(acc: Vec<Vec<T>>, values: &[T]) -> Vec<Vec<T>> {
    acc.into_iter()
        .flat_map(|a| {
            values.iter().map(move |v| {
                let mut b = a.clone();
                b.push(v.clone());
                b
            })
        })
        .collect()
}

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

/// Expands the sweep into run specs (sampling grid × each strategy's own grid). A sweep without
/// an `ar` strategy gets one added per sampling configuration, flagged `auto_added`.
pub fn expand(cfg: &SweepConfig) -> Vec<RunSpec> {
    let mut specs = Vec::new();
    let has_ar = cfg.strategy.iter().any(|s| s.kind == "ar");
    for sampling in samplings(cfg) {
        if !has_ar {
            specs.push(RunSpec {
                kind: "ar".into(),
                tree: None,
                k: None,
                delta: None,
                lambda: None,
                window: None,
                official_compat: None,
                relax: None,
                init: None,
                coupling: None,
                group: None,
                p_thr: None,
                d_thr: None,
                d_quantile: None,
                sampling: sampling.clone(),
                auto_added: true,
            });
        }
        for st in &cfg.strategy {
            let opt =
                |v: Option<Vec<f64>>| v.map_or(vec![None], |v| v.into_iter().map(Some).collect());
            let trees: Vec<Option<String>> = st
                .tree
                .as_ref()
                .map_or(vec![None], |t| t.values().into_iter().map(Some).collect());
            let ks = opt(st
                .k
                .as_ref()
                .map(|v| v.values().into_iter().map(|x| x as f64).collect()));
            let deltas = opt(st.delta.as_ref().map(|v| v.values()));
            let lambdas = opt(st.lambda.as_ref().map(|v| v.values()));
            let windows = opt(st
                .window
                .as_ref()
                .map(|v| v.values().into_iter().map(|x| x as f64).collect()));
            let d_quantiles = opt(st.d_quantile.as_ref().map(|v| v.values()));
            let nums = [ks, deltas, lambdas, windows, d_quantiles]
                .iter()
                .fold(vec![vec![]], |acc, v| cartesian(acc, v));
            let strings = |v: &Option<crate::config::OneOrMany<String>>| {
                v.as_ref()
                    .map_or(vec![None], |v| v.values().into_iter().map(Some).collect())
            };
            let (inits, couplings) = (strings(&st.init), strings(&st.coupling));
            let jacobi = matches!(st.kind.as_str(), "sjd" | "scd" | "gsd");
            let speculative = matches!(st.kind.as_str(), "sd" | "lantern" | "lantern++");
            for tree in &trees {
                let combos = nums.iter().flat_map(|n| {
                    let couplings = &couplings;
                    inits
                        .iter()
                        .flat_map(move |i| couplings.iter().map(move |c| (n, i.clone(), c.clone())))
                });
                for (n, init, coupling) in combos {
                    specs.push(RunSpec {
                        kind: st.kind.clone(),
                        tree: tree
                            .clone()
                            .or_else(|| speculative.then(|| default_tree(&st.kind).into())),
                        k: n[0]
                            .map(|x| x as usize)
                            .or((st.kind.starts_with("lantern")).then_some(1000)),
                        delta: n[1]
                            .map(|x| x as f32)
                            .or((st.kind == "lantern").then_some(0.1)),
                        lambda: n[2]
                            .map(|x| x as f32)
                            .or((st.kind == "lantern++").then_some(2.0)),
                        window: n[3]
                            .map(|x| x as usize)
                            .or(jacobi.then_some(16))
                            .or((st.kind == "zipar").then_some(8)),
                        official_compat: speculative.then_some(st.official_compat.unwrap_or(false)),
                        relax: st.relax.clone().filter(|r| r == "bounded"),
                        init,
                        coupling: coupling.or((st.kind == "scd").then(|| "maximal".into())),
                        group: st.group.map(|g| g as usize),
                        p_thr: st.p_thr.map(|p| p as f32),
                        d_thr: st.d_thr.map(|d| d as f32),
                        d_quantile: n[4].map(|q| q as f32),
                        sampling: sampling.clone(),
                        auto_added: false,
                    });
                }
            }
        }
    }
    specs
}

/// The tree a speculative kind uses when the config names none.
pub fn default_tree(kind: &str) -> &'static str {
    if kind == "lantern++" {
        "naive_extend_57"
    } else {
        "dynamic"
    }
}
