//! Was the machine quiet while an image was timed? Counters read before and after each timed
//! generation (Linux `/proc`; elsewhere they are absent and nothing is flagged):
//!
//! - **run-queue wait** of this process's threads (`/proc/self/task/*/schedstat`): time they were
//!   runnable but another task held the CPU — the direct cost of a neighbour;
//! - **CPU time** of those threads, beside the wall time;
//! - **steal** (`/proc/stat`): time a hypervisor gave this machine's CPUs to another guest;
//! - **CPU pressure** (`/proc/pressure/cpu`, `some`): share of the time some task waited for a CPU.
//!
//! [`Rule`] says when a timing counts as disturbed; the runner then re-times the image (same
//! tokens: the random stream is per image) a bounded number of times and records what it kept.

use serde::{Deserialize, Serialize};

/// Raw counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counters {
    /// Nanoseconds this process's threads ran on a CPU (`None` without schedstat).
    pub on_cpu_ns: Option<u64>,
    /// Nanoseconds they waited on a run queue.
    pub wait_ns: Option<u64>,
    /// Steal ticks (USER_HZ) summed over the machine's CPUs.
    pub steal_ticks: Option<u64>,
    /// Microseconds some task waited for a CPU (PSI `some total`).
    pub pressure_us: Option<u64>,
}

/// Reads the counters now.
pub fn read() -> Counters {
    let (on_cpu_ns, wait_ns) = match schedstat() {
        Some((c, w)) => (Some(c), Some(w)),
        None => (None, None),
    };
    Counters {
        on_cpu_ns,
        wait_ns,
        steal_ticks: steal(),
        pressure_us: pressure(),
    }
}

/// Sums `/proc/self/task/*/schedstat`: (on-CPU ns, run-queue wait ns).
fn schedstat() -> Option<(u64, u64)> {
    let mut total = (0u64, 0u64);
    let mut any = false;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut f = text.split_whitespace().map(|v| v.parse::<u64>().ok());
        if let (Some(Some(c)), Some(Some(w))) = (f.next(), f.next()) {
            total = (total.0 + c, total.1 + w);
            any = true;
        }
    }
    any.then_some(total)
}

/// The `steal` column of `/proc/stat`'s `cpu` line.
fn steal() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace().nth(8)?.parse().ok()
}

/// `total=` of `/proc/pressure/cpu`'s `some` line.
fn pressure() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let line = text.lines().find(|l| l.starts_with("some"))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// What the machine did during one timed generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quietness {
    /// Wall milliseconds of the generation.
    pub wall_ms: f64,
    /// Milliseconds this process's threads ran on a CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    /// Milliseconds they waited for a CPU held by another task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<f64>,
    /// Share of the machine's CPU time stolen by the hypervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal: Option<f64>,
    /// Share of the wall time some task on the machine waited for a CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<f64>,
}

impl Quietness {
    /// The difference of two readings `wall_ms` apart on a machine with `cores` CPUs.
    pub fn between(a: &Counters, b: &Counters, wall_ms: f64, cores: usize) -> Self {
        let diff = |x: Option<u64>, y: Option<u64>| Some(y?.saturating_sub(x?) as f64);
        let wall = wall_ms.max(1e-9);
        Self {
            wall_ms,
            cpu_ms: diff(a.on_cpu_ns, b.on_cpu_ns).map(|ns| ns / 1e6),
            wait_ms: diff(a.wait_ns, b.wait_ns).map(|ns| ns / 1e6),
            // USER_HZ is 100 on every Linux ABI: one tick is 10 ms.
            steal: diff(a.steal_ticks, b.steal_ticks)
                .map(|t| (t * 10.0 / (wall * cores.max(1) as f64)).min(1.0)),
            pressure: diff(a.pressure_us, b.pressure_us).map(|us| (us / 1e3 / wall).min(1.0)),
        }
    }

    /// Run-queue wait as a share of the wall time.
    pub fn wait_share(&self) -> Option<f64> {
        self.wait_ms.map(|w| w / self.wall_ms.max(1e-9))
    }
}

/// When a timed generation counts as disturbed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// Largest run-queue wait of this process's threads, as a share of the wall time.
    pub max_wait_share: f64,
    /// Largest share of the machine's CPU time stolen.
    pub max_steal: f64,
    /// Largest latency per target forward relative to the configuration's median so far …
    pub max_over_median: f64,
    /// … once it has this many undisturbed images.
    pub min_images: usize,
}

/// The rule the runner applies.
pub const RULE: Rule = Rule {
    max_wait_share: 0.10,
    max_steal: 0.05,
    max_over_median: 2.0,
    min_images: 4,
};

impl Rule {
    /// Why `q` is disturbed (`None`: quiet), given the image's target forwards and the
    /// configuration's undisturbed latencies per target forward so far. The stall rule judges
    /// the latency per forward: an image whose content takes more rounds (a low τ) is slower
    /// by its work, not by a neighbour, and re-timing it would find it as slow again.
    pub fn verdict(
        &self,
        q: &Quietness,
        forwards: usize,
        quiet_ms_per_forward: &[f64],
    ) -> Option<String> {
        if let Some(w) = q.wait_share().filter(|&w| w > self.max_wait_share) {
            return Some(format!("run-queue wait {:.0}% of wall", 100.0 * w));
        }
        if let Some(s) = q.steal.filter(|&s| s > self.max_steal) {
            return Some(format!("steal {:.0}%", 100.0 * s));
        }
        if quiet_ms_per_forward.len() >= self.min_images {
            let m = lantern_metrics::stats::median(quiet_ms_per_forward);
            let per_forward = q.wall_ms / forwards.max(1) as f64;
            if per_forward > self.max_over_median * m {
                return Some(format!(
                    "latency per target forward {:.1}× the median",
                    per_forward / m
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(wall_ms: f64, wait_ms: f64) -> Quietness {
        Quietness {
            wall_ms,
            cpu_ms: Some(wall_ms),
            wait_ms: Some(wait_ms),
            steal: Some(0.0),
            pressure: Some(0.0),
        }
    }

    #[test]
    fn differences_of_counters_become_shares() {
        let a = Counters {
            on_cpu_ns: Some(1_000_000),
            wait_ns: Some(0),
            steal_ticks: Some(100),
            pressure_us: Some(5_000),
        };
        let b = Counters {
            on_cpu_ns: Some(201_000_000),
            wait_ns: Some(50_000_000),
            steal_ticks: Some(102),
            pressure_us: Some(105_000),
        };
        let q = Quietness::between(&a, &b, 200.0, 2);
        assert_eq!(q.cpu_ms, Some(200.0));
        assert_eq!(q.wait_share(), Some(0.25));
        assert_eq!(q.steal, Some(20.0 / 400.0));
        assert_eq!(q.pressure, Some(0.5));
        let none = Quietness::between(&Counters::default(), &b, 200.0, 2);
        assert_eq!(
            (none.cpu_ms, none.wait_share(), none.steal),
            (None, None, None)
        );
    }

    #[test]
    fn the_rule_flags_waits_steal_and_stalls_but_not_a_quiet_image() {
        // Four quiet images of 100 forwards each: about 1 ms per forward.
        let history = [1.00, 1.04, 0.98, 1.01];
        assert_eq!(RULE.verdict(&quiet(102.0, 3.0), 100, &history), None);
        let waited = RULE.verdict(&quiet(150.0, 40.0), 100, &history).unwrap();
        assert!(waited.contains("run-queue wait 27%"), "{waited}");
        let stolen = Quietness {
            steal: Some(0.2),
            ..quiet(120.0, 0.0)
        };
        assert!(RULE
            .verdict(&stolen, 100, &history)
            .unwrap()
            .contains("steal"));
        // A stall invisible to the counters: judged against the configuration's own median …
        let stall = RULE.verdict(&quiet(260.0, 0.0), 100, &history).unwrap();
        assert!(stall.contains("2.6×"), "{stall}");
        // … only once it has enough images to have one …
        assert_eq!(RULE.verdict(&quiet(260.0, 0.0), 100, &history[..3]), None);
        // … and per target forward: an image that took 2.6× the rounds (a low τ) is not stalled.
        assert_eq!(RULE.verdict(&quiet(260.0, 0.0), 260, &history), None);
        // Without counters (not Linux) only the stall rule applies.
        let blind = Quietness {
            wall_ms: 102.0,
            ..Quietness::default()
        };
        assert_eq!(RULE.verdict(&blind, 100, &history), None);
    }
}
