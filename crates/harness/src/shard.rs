//! Sharding a sweep over machines: `--shard I/N` (or a Slurm array's environment) runs a
//! deterministic share of the plan's configurations, balanced by expected cost; each shard keeps
//! its own journal, and `lantern report` merges them.

use serde::Serialize;

use crate::plan::RunSpec;
use lantern_decoding::spec::Kind;

/// Shard `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    /// This shard, 0 ≤ index < count.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` (0 ≤ I < N).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s}: expected I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// The shard a Slurm array task stands for: `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`; `None` outside an array job.
    pub fn from_slurm(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let (Some(id), Some(count)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"))
        else {
            return Ok(None);
        };
        let num = |name: &str, v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("{name}={v:?} is not a non-negative integer"))
        };
        let min = env("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |m| num("SLURM_ARRAY_TASK_MIN", &m))?;
        let id = num("SLURM_ARRAY_TASK_ID", &id)?;
        let count = num("SLURM_ARRAY_TASK_COUNT", &count)?;
        let index = id.checked_sub(min).filter(|&i| i < count).ok_or_else(|| {
            format!(
                "SLURM_ARRAY_TASK_ID={id} (min {min}) is outside an array of {count} tasks: \
                 use a contiguous --array=0-{}",
                count.saturating_sub(1)
            )
        })?;
        Ok(Some(Self { index, count }))
    }

    /// File-name tag: `shard-I-of-N`.
    pub fn tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// Expected time of one image of `spec` relative to AR: a prior from the embedded default's
/// measured speedups (`results/methods`, `results/training_free`: drafted and training-free
/// methods take 0.5–0.7 of AR's time); used only to balance shards.
pub fn expected_cost(spec: &RunSpec) -> f64 {
    match spec.strategy.kind {
        Kind::Ar => 1.0,
        Kind::Sd => 0.7,
        Kind::Lantern | Kind::LanternPp => 0.6,
        Kind::Sjd | Kind::Scd | Kind::Gsd => 0.6,
        Kind::ZipAr => 0.5,
    }
}

/// The shard of each run: runs in order of decreasing cost (then run id) go to the least-loaded
/// shard (then the lowest index): depends only on the plan, so every shard computes the same.
pub fn assign(runs: &[(&str, f64)], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        runs[b]
            .1
            .total_cmp(&runs[a].1)
            .then(runs[a].0.cmp(runs[b].0))
    });
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard = vec![0; runs.len()];
    for i in order {
        let s = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .expect("one shard");
        shard[i] = s;
        load[s] += runs[i].1;
    }
    shard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shards_and_slurm_arrays() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        assert!(Shard::parse("4/4").is_err() && Shard::parse("x").is_err());
        assert!(Shard::parse("0/0").is_err());
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|v| v.0 == k).map(|v| v.1.to_string())
        };
        assert_eq!(Shard::from_slurm(env(&[])), Ok(None));
        const ARRAY: [(&str, &str); 3] = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
        ];
        assert_eq!(
            Shard::from_slurm(env(&ARRAY)),
            Ok(Some(Shard { index: 2, count: 4 }))
        );
        const OFF: [(&str, &str); 2] = [
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert!(Shard::from_slurm(env(&OFF)).is_err());
    }

    #[test]
    fn assignment_balances_cost_and_is_deterministic() {
        let runs = [("a", 1.0), ("b", 0.6), ("c", 0.6), ("d", 0.5), ("e", 0.7)];
        let s = assign(&runs, 2);
        assert_eq!(s, assign(&runs, 2));
        let load = |k| {
            runs.iter()
                .zip(&s)
                .filter(|(_, &x)| x == k)
                .map(|(r, _)| r.1)
                .sum::<f64>()
        };
        assert!((load(0) - load(1)).abs() <= 0.5 + 1e-9, "{s:?}");
        assert!(assign(&runs, 1).iter().all(|&x| x == 0));
    }
}
