//! `lantern`: generate images with AR, speculative, LANTERN, LANTERN++ and SJD decoding, run
//! sweeps, train the embedded default and drafters, score image folders, and inspect checkpoints.

mod bench;
mod generate;
mod inspect;
mod models;
mod score;
mod sweep;
mod train;

use clap::{Parser, Subcommand};

/// Relaxed speculative decoding for visual autoregressive models.
#[derive(Parser)]
#[command(name = "lantern", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate images with one strategy and write tokens, PNGs and per-image timings.
    Generate(Box<generate::Args>),
    /// Run a sweep file: every configuration × condition × seed, resumable; then report.
    Sweep(sweep::SweepArgs),
    /// Rebuild runs.parquet, summary.parquet, tables.md and plots of a results folder.
    Report(sweep::ReportArgs),
    /// Print the headline tables of results folders one after the other (e.g. the reference
    /// experiments/results/NAME and your results/NAME); writes nothing.
    Compare(sweep::CompareArgs),
    /// Train the embedded default, or an EAGLE drafter for a LlamaGen target.
    Train(train::Args),
    /// List the tensors of a checkpoint file (after removing a state-dict wrapper).
    Inspect(inspect::Args),
    /// Time the engine: AR step, tree verifies of 1–64 tokens and drafter passes, against the
    /// AR step and the machine's floor.
    Bench(Box<bench::Args>),
    /// Score a folder of images: FD/FID, precision/recall, class score against a reference
    /// folder, and CLIP score against captions.
    Score(Box<score::Args>),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate::run(*args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Report(args) => sweep::report(args),
        Command::Compare(args) => sweep::compare(args),
        Command::Train(args) => train::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Score(args) => score::run(*args),
        Command::Bench(args) => bench::run(*args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
