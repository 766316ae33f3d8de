//! Grid expansion: a sweep file becomes a list of run specs, each with a stable identity.

use serde::{Deserialize, Serialize};

use lantern_decoding::sampling::{Sampling, WarpOrder};
use lantern_decoding::strategy::{Strategy, StrategyParams};

use crate::config::SweepConfig;

/// One configuration of the grid: a strategy with its parameters and the sampling settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Strategy kind (`ar`, `sd`, `lantern`, `lantern++`, `sjd`).
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
            official_compat: self.official_compat.unwrap_or(false),
            bounded: self.relax.as_deref() == Some("bounded"),
        };
        Strategy::from_kind(&self.kind, &params)
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
        if let Some(t) = &self.tree {
            s += &format!(" ({t})");
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
                    });
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
            let nums = [ks, deltas, lambdas, windows]
                .iter()
                .fold(vec![vec![]], |acc, v| cartesian(acc, v));
            let speculative = matches!(st.kind.as_str(), "sd" | "lantern" | "lantern++");
            for tree in &trees {
                for n in &nums {
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
                            .or((st.kind == "sjd").then_some(16)),
                        official_compat: speculative.then_some(st.official_compat.unwrap_or(false)),
                        relax: st.relax.clone().filter(|r| r == "bounded"),
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
