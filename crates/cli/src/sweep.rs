//! `lantern sweep CONFIG` and `lantern report DIR`.

use std::io::IsTerminal;
use std::path::PathBuf;

use lantern_harness::agreement;
use lantern_harness::config::SweepConfig;
use lantern_harness::report::{read_report, write_report};
use lantern_harness::runner::{plan_sweep, run_sweep, SweepOptions};
use lantern_harness::shard::Shard;

/// Arguments of `lantern sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// A sweep file (configs/*.toml).
    config: PathBuf,
    /// Where results go (results/<name>/).
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Run on this backend instead of the file's `[runtime] backend` (auto, cpu, wgpu, cuda,
    /// tch-cpu, tch-cuda; GPU backends as built).
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
    /// Print the plan (model identity, every configuration with its run id and shard) as JSON
    /// and stop: nothing is loaded beyond the model's JSON config, nothing is written.
    #[arg(long)]
    dry_run: bool,
}

/// Arguments of `lantern report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A results folder (results/<name>): its journal.jsonl and every shard's
    /// journal.shard-I-of-N.jsonl are merged.
    dir: PathBuf,
    /// Also write every plot as SVG beside its PNG.
    #[arg(long)]
    svg: bool,
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
    if a.dry_run {
        let (plan, _) = plan_sweep(&cfg, shard)?;
        let shown = serde_json::json!({
            "name": cfg.name(),
            "config": cfg.file.display().to_string(),
            "overrides": cfg.overrides,
            "identity": plan.identity,
            "shard": plan.shard,
            "runs": plan.runs,
        });
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
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
        None => {
            print!("{}", out.headline.as_deref().unwrap_or_default());
            println!(
                "\n{} images generated, {} already recorded in {}",
                out.generated,
                out.skipped,
                out.dir.display()
            );
            print_paths(&out.dir);
        }
    }
    Ok(())
}

/// Where a results folder's report files are.
fn print_paths(dir: &std::path::Path) {
    let d = dir.display();
    println!("tables (every column, CIs, notes): {d}/tables.md");
    println!(
        "plots: {d}/*.png   records: {d}/runs.parquet, {d}/summary.parquet, {d}/journal.jsonl"
    );
}

/// Rebuilds a results folder's reports and prints its headline table.
pub fn report(a: ReportArgs) -> Result<(), Box<dyn std::error::Error>> {
    let report = write_report(&a.dir, a.svg)?;
    print!("{}", report.headline());
    println!(
        "\n{} configurations in {}",
        report.summaries.len(),
        a.dir.display()
    );
    print_paths(&a.dir);
    Ok(())
}

/// Arguments of `lantern compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Results folders whose headline tables are shown one after the other, e.g.
    /// experiments/results/lantern_k (the reference) and results/lantern_k (yours).
    #[arg(required = true, num_args = 1..)]
    dirs: Vec<PathBuf>,
    /// With two folders of one sweep (e.g. a quiet run and one beside a neighbour): also each
    /// configuration's speedup in both, whether they agree within noise, and how far each run's
    /// `auto` is from its best fixed tree.
    #[arg(long)]
    speedups: bool,
}

/// Prints the headline table of each folder, with the machine its records came from; writes
/// nothing.
pub fn compare(a: CompareArgs) -> Result<(), Box<dyn std::error::Error>> {
    if a.speedups && a.dirs.len() != 2 {
        return Err(format!(
            "--speedups compares exactly two results folders ({} given)",
            a.dirs.len()
        )
        .into());
    }
    let reports = a
        .dirs
        .iter()
        .map(|d| read_report(d))
        .collect::<Result<Vec<_>, _>>()?;
    for (dir, report) in a.dirs.iter().zip(&reports) {
        let machines: std::collections::BTreeSet<String> = report
            .records
            .iter()
            .map(|r| format!("{} ({}, {} threads)", r.cpu, r.backend, r.threads))
            .collect();
        let machines: Vec<String> = machines.into_iter().collect();
        println!(
            "== {}: {} images on {}",
            dir.display(),
            report.records.len(),
            machines.join("; ")
        );
        print!("{}", report.headline());
        println!();
    }
    if a.speedups {
        let names: Vec<String> = a.dirs.iter().map(|d| d.display().to_string()).collect();
        print!(
            "{}",
            agreement::render(
                (&names[0], &names[1]),
                &reports[0].summaries,
                &reports[1].summaries
            )
        );
    }
    Ok(())
}
