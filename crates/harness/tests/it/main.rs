//! Integration tests of `lantern-harness`, one binary (one release link against burn and polars):
//! configs, run ids, shards, quality, t2i prompt sets and the embedded default, end to end.

mod chameleon;
mod disturbance;
mod quality;
mod shards;
mod sweep;
mod t2i;
mod tiny;

/// Every test of this binary runs a sweep and loads the machine (the embedded default, the CPU
/// hog, the fixtures' sweeps): they run one at a time, since side by side each would be the
/// other's disturbance (a fixture sweep beside the auto-beside-a-hog test once moved a fixed
/// tree's speedup by 11%).
fn machine() -> std::sync::MutexGuard<'static, ()> {
    static MACHINE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}
