//! `lantern sweep CONFIG` and `lantern report DIR`.

use std::io::IsTerminal;
use std::path::PathBuf;

use lantern_harness::config::SweepConfig;
use lantern_harness::report::write_report;
use lantern_harness::runner::{run_sweep, SweepOptions};

/// Arguments of `lantern sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// A sweep file (configs/*.toml).
    config: PathBuf,
    /// Where results go (results/<name>/).
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Run on this backend instead of the file's `[runtime] backend` (auto, cpu, wgpu, cuda).
    #[arg(long)]
    backend: Option<String>,
}

/// Arguments of `lantern report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A results folder (results/<name>).
    dir: PathBuf,
}

/// Runs or resumes a sweep and prints where its outputs are.
pub fn sweep(a: SweepArgs) -> Result<(), Box<dyn std::error::Error>> {
    let opts = SweepOptions {
        results_root: a.results,
        progress: std::io::stderr().is_terminal(),
    };
    let mut cfg = SweepConfig::load(&a.config)?;
    if let Some(b) = &a.backend {
        cfg = cfg.with_backend(b)?;
    }
    let out = run_sweep(&cfg, &opts)?;
    println!(
        "{}: {} images generated, {} already recorded; see {}/tables.md",
        out.dir.display(),
        out.generated,
        out.skipped,
        out.dir.display()
    );
    Ok(())
}

/// Rebuilds a results folder's reports.
pub fn report(a: ReportArgs) -> Result<(), Box<dyn std::error::Error>> {
    let summaries = write_report(&a.dir)?;
    println!(
        "{}: {} configurations; see tables.md",
        a.dir.display(),
        summaries.len()
    );
    Ok(())
}
