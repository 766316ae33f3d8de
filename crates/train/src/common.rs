//! Pieces every training stage shares: learning-rate schedule, loss logs and resumable state.

use std::io::Write;
use std::path::{Path, PathBuf};

use lantern_models::burn::optim::{AdamWConfig, ModuleOptimizer};

/// Linear warm-up to `peak` over `warmup` steps, then cosine decay to `peak / 10` at `total`.
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    let floor = peak / 10.0;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
}

/// AdamW with LlamaGen's betas (0.9, 0.95) and the given weight decay.
pub fn adamw(weight_decay: f32) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.95)
        .with_weight_decay(weight_decay)
        .init()
}

/// Appends rows to a CSV loss log (header written once).
pub struct LossLog {
    file: std::fs::File,
}

impl LossLog {
    /// Opens `path`, writing `header` if the file is new.
    pub fn open(path: &Path, header: &str) -> std::io::Result<Self> {
        let new = !path.is_file();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if new {
            writeln!(file, "{header}")?;
        }
        Ok(Self { file })
    }

    /// Appends one row.
    pub fn row(&mut self, values: &[String]) -> std::io::Result<()> {
        writeln!(self.file, "{}", values.join(","))?;
        self.file.flush()
    }
}

/// Where a stage keeps its resumable state: the weights and the step reached. (Optimizer moments
/// are keyed by parameter ids that do not survive a reload, so a resumed run restarts them.)
pub struct Resume {
    /// The stage's state folder.
    pub dir: PathBuf,
}

impl Resume {
    /// The state folder `out/<stage>.state`.
    pub fn new(out: &Path, stage: &str) -> Self {
        Self {
            dir: out.join(format!("{stage}.state")),
        }
    }

    /// The step reached by a previous run (0 if none).
    pub fn step(&self) -> usize {
        std::fs::read_to_string(self.dir.join("step"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Weights of the previous run.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// After optimiser step `step` (0-based) of `total`: every `every` steps and at the end, writes
    /// the weights with `save` and then records the step.
    pub fn checkpoint<E: std::fmt::Display>(
        &self,
        step: usize,
        total: usize,
        every: usize,
        save: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), String> {
        if (step + 1).is_multiple_of(every) || step + 1 == total {
            save(&self.model_path()).map_err(|e| e.to_string())?;
            self.save(step + 1).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Records the step after the caller wrote `model_path()` (the step file is written last, so
    /// a torn checkpoint is never taken for a complete one).
    pub fn save(&self, step: usize) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join("step.tmp");
        std::fs::write(&tmp, step.to_string())?;
        std::fs::rename(tmp, self.dir.join("step"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_a_tenth() {
        assert!((learning_rate(0, 100, 10, 1.0) - 0.1).abs() < 1e-12);
        assert!((learning_rate(9, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((learning_rate(10, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((learning_rate(100, 100, 10, 1.0) - 0.1).abs() < 1e-12);
        assert!(learning_rate(55, 100, 10, 1.0) < 1.0);
    }
}
