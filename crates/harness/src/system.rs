//! What the machine is: host, CPU model, cores, the burn version, and the process's peak
//! resident memory; the hardware disclosure of `plan.json` and `tables.md`.

use serde::Serialize;

/// The burn version this binary was built with.
pub const BURN_VERSION: &str = env!("LANTERN_BURN_VERSION");

/// The machine and build a sweep ran on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hardware {
    /// Host name.
    pub host: String,
    /// CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Logical cores the OS offers this process.
    pub cores_available: usize,
    /// Threads the engine uses.
    pub threads_used: usize,
    /// burn backend (`cpu`, `wgpu`, `cuda`, …) and the device it resolved to.
    pub backend: String,
    /// Device description.
    pub device: String,
    /// Engine that runs the models (`host`, `burn`).
    pub engine: String,
    /// Weight storage (`f32`, `bf16`, `f16`).
    pub dtype: String,
    /// burn version.
    pub burn: String,
}

/// Host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`), or `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// CPU model name, or `unknown`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Logical cores available to this process.
pub fn cores_available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Resets the process's resident-memory high-water mark (Linux: `5` to `/proc/self/clear_refs`);
/// false where that is not possible, and then [`peak_rss_mb`] would report the process's peak.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The resident-memory high-water mark (`VmHWM`), MiB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_sees_an_allocation_after_a_reset() {
        if !reset_peak_rss() {
            return; // not Linux: nothing to check
        }
        let before = peak_rss_mb().expect("VmHWM");
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = peak_rss_mb().expect("VmHWM");
        assert!(after >= before + 60.0, "{before} MiB → {after} MiB");
        drop(block);
        assert!(reset_peak_rss());
        assert!(peak_rss_mb().expect("VmHWM") < after - 60.0);
        assert!(!BURN_VERSION.is_empty() && BURN_VERSION != "unknown");
    }
}
