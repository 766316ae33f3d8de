//! `lantern inspect FILE`: the tensors of a checkpoint.

use std::path::PathBuf;

use lantern_models::checkpoint::{detect_format, list_tensors};

/// Arguments of `lantern inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// A `.pt`/`.pth`/`.bin` or `.safetensors` file.
    file: PathBuf,
}

/// Prints format, tensor names, shapes and dtypes.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let format = detect_format(&args.file)?;
    let tensors = list_tensors(&args.file)?;
    let params: usize = tensors
        .values()
        .map(|(s, _)| s.iter().product::<usize>())
        .sum();
    println!(
        "{}: {format:?}, {} tensors, {params} values",
        args.file.display(),
        tensors.len()
    );
    for (k, (shape, dtype)) in tensors {
        println!("  {k:<60} {dtype:?} {shape:?}");
    }
    Ok(())
}
