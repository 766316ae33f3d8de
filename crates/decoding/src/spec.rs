//! The strategy spec: the one typed form of "which strategy, with which parameters" that sweep
//! files' `[[strategy]]` tables, `lantern generate`'s flags, run ids and records share. It owns
//! every parameter's default, its allowed range and which kinds take it; [`StrategySpec::strategy`]
//! turns it into the [`Strategy`] that runs.

use serde::{Deserialize, Deserializer, Serialize};

use crate::accept::{Relax, Residuals};
use crate::strategy::{
    Coupling, DistanceThreshold, FreshProposal, Grouping, Jacobi, JacobiInit, JacobiMethod,
    Speculative, Strategy, TreeShape,
};

/// Neighbours per drafted token when a LANTERN or LANTERN++ spec names none (official default).
pub const DEFAULT_K: usize = 1000;
/// LANTERN's δ when a spec names none (official default).
pub const DEFAULT_DELTA: f64 = 0.1;
/// LANTERN++'s λ when a spec names none.
pub const DEFAULT_LAMBDA: f64 = 2.0;
/// Jacobi window (SJD, SCD, GSD) when a spec names none (SJD's and GSD's 16).
pub const DEFAULT_JACOBI_WINDOW: usize = 16;
/// ZipAR window when a spec names none (the official 8).
pub const DEFAULT_ZIPAR_WINDOW: usize = 8;

/// A spec's `tree`: `auto` (the shape the tree cost model picks for the device and rule) or a
/// shape by name ([`TreeShape::parse`], checked by [`StrategySpec::check`]). Written and read as
/// that string, so a spec's JSON, and with it every run id, is the same as a plain string's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TreeChoice {
    /// Chosen by the tree cost model (the kind's default shape until it is sized).
    Auto,
    /// A named shape: `dynamic`, `chain:4`, `mc_sim_7b_63`, `NAME@B`, …
    Shape(String),
}

impl TreeChoice {
    /// Whether the cost model chooses the tree.
    pub fn is_auto(&self) -> bool {
        matches!(self, Self::Auto)
    }

    /// The name as written: `auto` or the shape's.
    pub fn name(&self) -> &str {
        match self {
            Self::Auto => "auto",
            Self::Shape(s) => s,
        }
    }
}

impl From<String> for TreeChoice {
    fn from(s: String) -> Self {
        if s == "auto" {
            Self::Auto
        } else {
            Self::Shape(s)
        }
    }
}

impl From<&str> for TreeChoice {
    fn from(s: &str) -> Self {
        s.to_string().into()
    }
}

impl From<TreeChoice> for String {
    fn from(t: TreeChoice) -> Self {
        t.name().to_string()
    }
}

impl std::fmt::Display for TreeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum Kind {
    /// Plain autoregressive decoding.
    #[serde(rename = "ar")]
    Ar,
    /// Exact speculative decoding with the drafter.
    #[serde(rename = "sd")]
    Sd,
    /// LANTERN's relaxed acceptance (k, δ).
    #[serde(rename = "lantern")]
    Lantern,
    /// LANTERN++'s ratio bound (k, λ), static trees by default.
    #[serde(rename = "lantern++")]
    LanternPp,
    /// Speculative Jacobi decoding.
    #[serde(rename = "sjd")]
    Sjd,
    /// Speculative coupled decoding.
    #[serde(rename = "scd")]
    Scd,
    /// Grouped speculative decoding.
    #[serde(rename = "gsd")]
    Gsd,
    /// ZipAR's parallel rows.
    #[serde(rename = "zipar")]
    ZipAr,
}

impl TryFrom<String> for Kind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl TryFrom<String> for LanternRule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "lantern" => Ok(Self::Lantern),
            "bounded" => Ok(Self::Bounded),
            other => Err(format!(
                "rule '{other}' is not known; allowed: lantern, bounded"
            )),
        }
    }
}

impl Kind {
    /// Every kind, in the order tables list them.
    pub const ALL: [Kind; 8] = [
        Kind::Ar,
        Kind::Sd,
        Kind::Lantern,
        Kind::LanternPp,
        Kind::Sjd,
        Kind::Scd,
        Kind::Gsd,
        Kind::ZipAr,
    ];

    /// The name in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ar => "ar",
            Kind::Sd => "sd",
            Kind::Lantern => "lantern",
            Kind::LanternPp => "lantern++",
            Kind::Sjd => "sjd",
            Kind::Scd => "scd",
            Kind::Gsd => "gsd",
            Kind::ZipAr => "zipar",
        }
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown strategy '{s}'; allowed: {}",
                    Self::ALL.map(Kind::name).join(", ")
                )
            })
    }

    /// The keys this kind takes besides `kind`.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Ar => &[],
            Kind::Sd => &["tree", "official_compat"],
            Kind::Lantern => &["tree", "k", "delta", "official_compat", "relax"],
            Kind::LanternPp => &["tree", "k", "lambda", "official_compat"],
            Kind::Sjd => &["window", "init", "fresh_proposal", "official_compat"],
            Kind::Scd => &[
                "window",
                "init",
                "fresh_proposal",
                "coupling",
                "official_compat",
            ],
            Kind::Gsd => &[
                "window",
                "init",
                "fresh_proposal",
                "group",
                "p_thr",
                "d_thr",
                "d_quantile",
                "official_compat",
            ],
            Kind::ZipAr => &["window"],
        }
    }

    /// Drafter + tree verification (`sd`, `lantern`, `lantern++`).
    pub fn is_speculative(self) -> bool {
        matches!(self, Kind::Sd | Kind::Lantern | Kind::LanternPp)
    }

    /// The SJD family (`sjd`, `scd`, `gsd`).
    pub fn is_jacobi(self) -> bool {
        matches!(self, Kind::Sjd | Kind::Scd | Kind::Gsd)
    }

    /// The tree a speculative kind drafts when the spec names none.
    pub fn default_tree(self) -> &'static str {
        if self == Kind::LanternPp {
            "naive_extend_57"
        } else {
            "dynamic"
        }
    }
}

/// LANTERN's acceptance rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LanternRule {
    /// The paper's rule (the default; absent from resolved specs).
    Lantern,
    /// Exact speculative sampling against a relaxed target: emitted TVD ≤ δ.
    Bounded,
}

/// One strategy with its parameters, as written (`None` = not given); [`StrategySpec::resolved`]
/// fills the kind's defaults. Its JSON form is the strategy half of a run's identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySpec {
    /// The kind.
    pub kind: Kind,
    /// Draft tree (speculative kinds; see [`TreeShape::parse`]; `auto` = chosen by the cost model).
    #[serde(default)]
    pub tree: Option<TreeChoice>,
    /// Latent neighbours per drafted token (lantern, lantern++), ≥ 1.
    #[serde(default)]
    pub k: Option<usize>,
    /// LANTERN's TVD budget δ in [0, 1].
    #[serde(default)]
    pub delta: Option<f64>,
    /// LANTERN++'s ratio bound λ ≥ 1.
    #[serde(default)]
    pub lambda: Option<f64>,
    /// Window (sjd, scd, gsd: drafts per round; zipar: columns before the next row opens), ≥ 1.
    #[serde(default)]
    pub window: Option<usize>,
    /// The official code's residual quirks instead of the principled rule (speculative kinds).
    #[serde(default)]
    pub official_compat: Option<bool>,
    /// LANTERN's rule: `lantern` (the paper's) or `bounded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relax: Option<LanternRule>,
    /// How fresh Jacobi positions start (sjd, scd, gsd; horizontal when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<JacobiInit>,
    /// The proposal fresh Jacobi drafts record (sjd, scd, gsd; one_hot when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_proposal: Option<FreshProposal>,
    /// SCD's coupling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupling: Option<Coupling>,
    /// GSD's rank half-window G ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// GSD's probability-gap threshold in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_thr: Option<f64>,
    /// GSD's absolute squared embedding-distance threshold > 0 (+inf = no filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_thr: Option<f64>,
    /// GSD's distance threshold as a quantile of pair distances in [0, 1] (1 = no filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_quantile: Option<f64>,
}

/// A refused spec: the key, the value given and what is allowed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{key} = {value}: {allowed}")]
pub struct SpecError {
    /// The key (`kind`, `delta`, …).
    pub key: String,
    /// The value given.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

fn refuse(key: &str, value: impl std::fmt::Display, allowed: impl Into<String>) -> SpecError {
    SpecError {
        key: key.into(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

impl StrategySpec {
    /// A spec of `kind` with nothing else given.
    pub fn of(kind: Kind) -> Self {
        Self {
            kind,
            tree: None,
            k: None,
            delta: None,
            lambda: None,
            window: None,
            official_compat: None,
            relax: None,
            init: None,
            fresh_proposal: None,
            coupling: None,
            group: None,
            p_thr: None,
            d_thr: None,
            d_quantile: None,
        }
    }

    /// Reads a spec from any serde source (a TOML table, JSON), checks it and fills its defaults.
    /// Errors name the key: unknown keys, wrong types, keys the kind does not take, values out of
    /// range.
    pub fn parse<'de, D: Deserializer<'de>>(source: D) -> Result<Self, SpecError> {
        let spec: Self = serde_path_to_error::deserialize(source).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." { "strategy".into() } else { path };
            let message = e.into_inner().to_string();
            let first = message.lines().next().unwrap_or_default();
            let plain = first
                .replace("expected usize", "expected an integer ≥ 0")
                .replace("expected f64", "expected a number")
                .replace("expected a boolean", "expected true or false");
            refuse(&key, "(as given)", plain)
        })?;
        spec.check()?;
        Ok(spec.resolved())
    }

    /// The keys given besides `kind`.
    pub fn given(&self) -> Vec<&'static str> {
        let set = [
            ("tree", self.tree.is_some()),
            ("k", self.k.is_some()),
            ("delta", self.delta.is_some()),
            ("lambda", self.lambda.is_some()),
            ("window", self.window.is_some()),
            ("official_compat", self.official_compat.is_some()),
            ("relax", self.relax.is_some()),
            ("init", self.init.is_some()),
            ("fresh_proposal", self.fresh_proposal.is_some()),
            ("coupling", self.coupling.is_some()),
            ("group", self.group.is_some()),
            ("p_thr", self.p_thr.is_some()),
            ("d_thr", self.d_thr.is_some()),
            ("d_quantile", self.d_quantile.is_some()),
        ];
        set.into_iter().filter(|s| s.1).map(|s| s.0).collect()
    }

    /// Checks that the kind takes every key given and that every value is in range: the one range
    /// check of each parameter.
    pub fn check(&self) -> Result<(), SpecError> {
        let takes = self.kind.keys();
        if let Some(key) = self.given().into_iter().find(|k| !takes.contains(k)) {
            let ok = if takes.is_empty() {
                "no other keys".to_string()
            } else {
                takes.join(", ")
            };
            return Err(refuse(
                key,
                "(given)",
                format!(
                    "this key does not apply to kind '{}'; it takes: {ok}",
                    self.kind.name()
                ),
            ));
        }
        if let Some(TreeChoice::Shape(t)) = &self.tree {
            TreeShape::parse(t).map_err(|e| refuse("tree", format!("{t:?}"), e))?;
        }
        if self.k == Some(0) {
            return Err(refuse("k", 0, "an integer ≥ 1"));
        }
        if let Some(d) = self.delta.filter(|d| !(0.0..=1.0).contains(d)) {
            return Err(refuse("delta", d, "a number in [0, 1]"));
        }
        if let Some(l) = self.lambda.filter(|l| !(*l >= 1.0 && l.is_finite())) {
            return Err(refuse("lambda", l, "a number ≥ 1"));
        }
        if self.window == Some(0) {
            return Err(refuse("window", 0, "an integer ≥ 1"));
        }
        if let Some(p) = self.p_thr.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(refuse("p_thr", p, "a number in (0, 1]"));
        }
        if let Some(d) = self.d_thr {
            if d.is_nan() || d <= 0.0 {
                return Err(refuse("d_thr", d, "a number > 0 (or +inf: no filter)"));
            }
            if self.d_quantile.is_some() {
                return Err(refuse(
                    "d_thr",
                    d,
                    "either d_thr (absolute) or d_quantile (calibrated), not both",
                ));
            }
        }
        if let Some(q) = self.d_quantile.filter(|q| !(0.0..=1.0).contains(q)) {
            return Err(refuse(
                "d_quantile",
                q,
                "a number in [0, 1] (1 = no filter)",
            ));
        }
        if self.fresh_proposal == Some(FreshProposal::Uniform)
            && self.init != Some(JacobiInit::Random)
        {
            return Err(refuse(
                "fresh_proposal",
                "uniform",
                "uniform with init = \"random\" only (a copied draft is a point mass: one_hot)",
            ));
        }
        if self.relax == Some(LanternRule::Bounded) && self.official_compat == Some(true) {
            return Err(refuse(
                "official_compat",
                true,
                "false with relax = \"bounded\" (the official quirks belong to LANTERN's own rule)",
            ));
        }
        Ok(())
    }

    /// The spec with its kind's defaults filled in (the paper's rule is left implicit, and GSD's
    /// group rule and the Jacobi initialisation stay as given: absent keys keep run ids).
    pub fn resolved(mut self) -> Self {
        let kind = self.kind;
        if kind.is_speculative() {
            self.tree.get_or_insert_with(|| kind.default_tree().into());
            self.official_compat.get_or_insert(false);
        }
        if matches!(kind, Kind::Lantern | Kind::LanternPp) {
            self.k.get_or_insert(DEFAULT_K);
        }
        match kind {
            Kind::Lantern => {
                self.delta.get_or_insert(DEFAULT_DELTA);
            }
            Kind::LanternPp => {
                self.lambda.get_or_insert(DEFAULT_LAMBDA);
            }
            Kind::Sjd | Kind::Scd | Kind::Gsd => {
                self.window.get_or_insert(DEFAULT_JACOBI_WINDOW);
            }
            Kind::ZipAr => {
                self.window.get_or_insert(DEFAULT_ZIPAR_WINDOW);
            }
            Kind::Ar | Kind::Sd => {}
        }
        if kind == Kind::Scd {
            self.coupling.get_or_insert(Coupling::Maximal);
        }
        if self.relax == Some(LanternRule::Lantern) {
            self.relax = None;
        }
        self
    }

    /// GSD's group rule: the given keys over [`Grouping::DEFAULT`].
    pub fn grouping(&self) -> Grouping {
        let d = Grouping::DEFAULT;
        Grouping {
            half_window: self.group.unwrap_or(d.half_window),
            p_thr: self.p_thr.map_or(d.p_thr, |p| p as f32),
            d_thr: match (self.d_thr, self.d_quantile) {
                (Some(a), _) => DistanceThreshold::Absolute(a as f32),
                (None, Some(q)) => DistanceThreshold::Quantile(q as f32),
                (None, None) => d.d_thr,
            },
        }
    }

    /// The strategy this spec runs, its kind's defaults filled in; tree `auto` runs the kind's
    /// default shape until the cost model sizes it.
    pub fn strategy(&self) -> Result<Strategy, SpecError> {
        const FILLED: &str = "resolved() fills every key its kind takes";
        let s = self.clone().resolved();
        let speculative = |relax: Relax| -> Result<Strategy, SpecError> {
            let name = match s.tree.as_ref().expect(FILLED) {
                TreeChoice::Auto => s.kind.default_tree(),
                TreeChoice::Shape(name) => name,
            };
            Ok(Strategy::Speculative(Speculative {
                tree: TreeShape::parse(name).map_err(|e| refuse("tree", name, e))?,
                relax,
                residuals: if s.official_compat == Some(true) {
                    Residuals::OfficialCompat
                } else {
                    Residuals::Principled
                },
            }))
        };
        let jacobi = |method: JacobiMethod| {
            Ok(Strategy::Jacobi(Jacobi {
                window: s.window.expect(FILLED),
                init: s.init.unwrap_or(JacobiInit::Horizontal),
                fresh: s.fresh_proposal.unwrap_or_default(),
                method,
                official_compat: s.official_compat == Some(true),
            }))
        };
        let k = || s.k.expect(FILLED);
        match s.kind {
            Kind::Ar => Ok(Strategy::Ar),
            Kind::Sd => speculative(Relax::Exact),
            Kind::Lantern => {
                let (k, delta) = (k(), s.delta.expect(FILLED) as f32);
                speculative(match s.relax {
                    Some(LanternRule::Bounded) => Relax::Bounded { k, delta },
                    _ => Relax::Tvd { k, delta },
                })
            }
            Kind::LanternPp => speculative(Relax::Ratio {
                k: k(),
                lambda: s.lambda.expect(FILLED) as f32,
            }),
            Kind::Sjd => jacobi(JacobiMethod::Sjd),
            Kind::Scd => jacobi(JacobiMethod::Scd(s.coupling.expect(FILLED))),
            Kind::Gsd => jacobi(JacobiMethod::Gsd(s.grouping())),
            Kind::ZipAr => Ok(Strategy::ZipAr {
                window: s.window.expect(FILLED),
            }),
        }
    }

    /// GSD's group rule as a short string, e.g. `G=7 p<0.15 d<q0.1` (GSD only).
    pub fn grouping_label(&self) -> Option<String> {
        (self.kind == Kind::Gsd).then(|| {
            let g = self.grouping();
            let d = match g.d_thr {
                DistanceThreshold::Absolute(a) => format!("d<{a}"),
                DistanceThreshold::Quantile(q) => format!("d<q{q}"),
            };
            format!("G={} p<{} {d}", g.half_window, g.p_thr)
        })
    }

    /// The Jacobi initialisation run (Jacobi kinds only).
    pub fn init_name(&self) -> Option<&'static str> {
        self.kind
            .is_jacobi()
            .then(|| self.init.unwrap_or(JacobiInit::Horizontal).name())
    }

    /// A short human label: `lantern k=10 δ=0.1 (dynamic)`.
    pub fn label(&self) -> String {
        let mut s = self.kind.name().to_string();
        let mut add = |part: Option<String>| {
            if let Some(p) = part {
                s.push(' ');
                s.push_str(&p);
            }
        };
        add(self.k.map(|k| format!("k={k}")));
        add(self.delta.map(|d| format!("δ={d}")));
        add(self.relax.map(|_| "bounded".into()));
        add(self.lambda.map(|l| format!("λ={l}")));
        add(self.window.map(|w| format!("L={w}")));
        add(self.coupling.map(|c| c.name().into()));
        add(self.init.map(|i| format!("init={}", i.name())));
        add(self.fresh_proposal.map(|f| format!("q0={}", f.name())));
        add(self.grouping_label());
        add(self.tree.as_ref().map(|t| format!("({t})")));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<StrategySpec, SpecError> {
        StrategySpec::parse(serde_json::from_str::<serde_json::Value>(json).unwrap())
    }

    #[test]
    fn defaults_are_filled_once_and_pin_the_identity_json() {
        let spec = parse(r#"{"kind": "lantern"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&spec).unwrap(),
            r#"{"kind":"lantern","tree":"dynamic","k":1000,"delta":0.1,"lambda":null,"window":null,"official_compat":false}"#
        );
        assert_eq!(
            spec.strategy().unwrap(),
            Strategy::Speculative(Speculative {
                tree: TreeShape::lantern_dynamic(),
                relax: Relax::Tvd {
                    k: 1000,
                    delta: 0.1
                },
                residuals: Residuals::Principled,
            })
        );
        let pp = parse(r#"{"kind": "lantern++", "k": 5, "lambda": 10}"#).unwrap();
        assert_eq!(pp.tree, Some(TreeChoice::Shape("naive_extend_57".into())));
        let auto = parse(r#"{"kind": "sd", "tree": "auto"}"#).unwrap();
        assert!(auto.tree.as_ref().is_some_and(TreeChoice::is_auto));
        assert!(serde_json::to_string(&auto)
            .unwrap()
            .contains(r#""tree":"auto""#));
        let scd = parse(r#"{"kind": "scd", "init": "vertical"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&scd).unwrap(),
            r#"{"kind":"scd","tree":null,"k":null,"delta":null,"lambda":null,"window":16,"official_compat":null,"init":"vertical","coupling":"maximal"}"#
        );
        let zipar = parse(r#"{"kind": "zipar"}"#).unwrap();
        assert_eq!(zipar.strategy().unwrap(), Strategy::ZipAr { window: 8 });
        // The paper's rule named explicitly is the default: the same identity.
        assert_eq!(
            parse(r#"{"kind": "lantern", "relax": "lantern"}"#).unwrap(),
            spec
        );
    }

    #[test]
    fn every_refusal_names_the_key_and_what_is_allowed() {
        for (json, key, needle) in [
            (r#"{"kind": "lantern", "delta": 1.5}"#, "delta", "[0, 1]"),
            (r#"{"kind": "lantern++", "lambda": 0.5}"#, "lambda", "≥ 1"),
            (r#"{"kind": "lantern", "k": 0}"#, "k", "≥ 1"),
            (
                r#"{"kind": "sd", "delta": 0.1}"#,
                "delta",
                "tree, official_compat",
            ),
            (r#"{"kind": "medusa"}"#, "kind", "lantern++"),
            (
                r#"{"kind": "sjd", "init": "diagonal"}"#,
                "init",
                "horizontal",
            ),
            (
                r#"{"kind": "sjd", "fresh_proposal": "uniform"}"#,
                "fresh_proposal",
                "init = \"random\"",
            ),
            (
                r#"{"kind": "sjd", "init": "random", "fresh_proposal": "flat"}"#,
                "fresh_proposal",
                "one_hot, uniform",
            ),
            (
                r#"{"kind": "ar", "fresh_proposal": "uniform"}"#,
                "fresh_proposal",
                "does not apply",
            ),
            (
                r#"{"kind": "sjd", "bogus": 1}"#,
                "bogus",
                "unknown field `bogus`",
            ),
            (r#"{"kind": "lantern", "k": -3}"#, "k", "invalid value"),
            (r#"{"delta": 0.1}"#, "strategy", "missing field `kind`"),
            (
                r#"{"kind": "lantern", "tree": "bush"}"#,
                "tree",
                "naive_extend_57",
            ),
            (
                r#"{"kind": "lantern", "relax": "bounded", "official_compat": true}"#,
                "official_compat",
                "bounded",
            ),
        ] {
            let e = parse(json).unwrap_err();
            assert_eq!(e.key, key, "{json}: {e}");
            assert!(e.allowed.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn every_kind_takes_its_keys_and_builds() {
        for kind in Kind::ALL {
            let spec = StrategySpec::of(kind).resolved();
            spec.check().unwrap();
            spec.strategy().unwrap();
            assert_eq!(Kind::parse(kind.name()), Ok(kind));
            assert!(
                spec.given().iter().all(|k| kind.keys().contains(k)),
                "{kind:?}"
            );
        }
    }
}
