//! `lantern sweep CONFIG` and `lantern report DIR`.

use std::io::IsTerminal;
use std::path::PathBuf;

use lantern_harness::config::SweepConfig;
use lantern_harness::report::write_report;
use lantern_harness::runner::{run_sweep, SweepOptions};
use lantern_harness::shard::Shard;

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
    /// GPU index for cuda and tch-cuda (instead of `[runtime] device`).
    #[arg(long)]
    device: Option<usize>,
    /// Run shard I of N (0-based) of the configurations into its own journal; merge the shards
    /// with `lantern report DIR`. Without it, a Slurm array task's SLURM_ARRAY_TASK_ID and
    /// SLURM_ARRAY_TASK_COUNT choose the shard.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Override a config key, validated like the file and recorded in plan.json (repeatable):
    /// `--set model.gpt=/ckpt/gpt.pt --set data.seeds=4`; an empty value removes the key.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Arguments of `lantern report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A results folder (results/<name>): its journal.jsonl and every shard's
    /// journal.shard-I-of-N.jsonl are merged.
    dir: PathBuf,
}

/// Runs or resumes a sweep and prints where its outputs are.
pub fn sweep(a: SweepArgs) -> Result<(), Box<dyn std::error::Error>> {
    let shard = match &a.shard {
        Some(s) => Some(Shard::parse(s)?),
        None => Shard::from_slurm(|k| std::env::var(k).ok())?,
    };
    let opts = SweepOptions {
        results_root: a.results,
        progress: std::io::stderr().is_terminal(),
        shard,
    };
    let mut cfg = SweepConfig::load_with(&a.config, &a.set)?;
    if let Some(b) = &a.backend {
        cfg = cfg.with_backend(b)?;
    }
    if let Some(d) = a.device {
        cfg.runtime.device = d;
    }
    let out = run_sweep(&cfg, &opts)?;
    match shard {
        Some(s) => println!(
            "{}: shard {}/{}: {} images generated, {} already recorded; when every shard is done: lantern report {}",
            out.dir.display(),
            s.index,
            s.count,
            out.generated,
            out.skipped,
            out.dir.display()
        ),
        None => println!(
            "{}: {} images generated, {} already recorded; see {}/tables.md",
            out.dir.display(),
            out.generated,
            out.skipped,
            out.dir.display()
        ),
    }
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
