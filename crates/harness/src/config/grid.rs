//! A `[[strategy]]` table with lists becomes a grid of strategy specs: every list-valued key is
//! an axis, the axes cross (the first in [`AXES`] outermost), and each point is read by
//! [`StrategySpec::parse`], which owns the keys, their defaults and their ranges.

use lantern_decoding::spec::{SpecError, StrategySpec};

/// Axis order, outermost first; keys not listed cross after these, in name order.
pub const AXES: [&str; 8] = [
    "tree",
    "k",
    "delta",
    "lambda",
    "window",
    "d_quantile",
    "init",
    "coupling",
];

/// Every spec of one table, in grid order.
pub fn expand(table: &toml::Table) -> Result<Vec<StrategySpec>, SpecError> {
    let rank = |k: &str| AXES.iter().position(|a| *a == k).unwrap_or(AXES.len());
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    let mut points = vec![toml::Table::new()];
    for key in keys {
        let values = match &table[key] {
            toml::Value::Array(v) if v.is_empty() => {
                return Err(SpecError {
                    key: key.clone(),
                    value: "[]".into(),
                    allowed: "a value or a non-empty list of values".into(),
                })
            }
            toml::Value::Array(v) => v.clone(),
            v => vec![v.clone()],
        };
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(key.clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    points
        .into_iter()
        .map(|p| {
            StrategySpec::parse(toml::Value::Table(p.clone())).map_err(|mut e| {
                if let Some(v) = p.get(&e.key) {
                    e.value = v.to_string();
                }
                e
            })
        })
        .collect()
}
