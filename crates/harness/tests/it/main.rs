//! Integration tests of `lantern-harness`, one binary (one release link against burn and polars):
//! configs, run ids, shards, quality, t2i prompt sets and the embedded default, end to end.

mod disturbance;
mod quality;
mod shards;
mod sweep;
mod t2i;
mod tiny;

/// Tests that load the machine (sweeps on the embedded default, the CPU hog) run one at a time:
/// side by side each would be the other's disturbance.
fn machine() -> std::sync::MutexGuard<'static, ()> {
    static MACHINE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}
