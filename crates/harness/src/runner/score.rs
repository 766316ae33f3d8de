//! Stage records → quality: the journal's images decoded and scored against the reference set
//! (FD, precision/recall, class score, drift; CLIP and HPSv2 for prompts) into `quality.json`.

use std::path::Path;

use super::load::Loaded;
use super::{shard_file, HarnessError, PlanInputs, SweepOptions};
use crate::config::SweepConfig;
use crate::quality;

/// Scores the images of `journal` (nothing when the sweep has no quality pass).
pub(super) fn score(
    cfg: &SweepConfig,
    inputs: &PlanInputs,
    loaded: &Loaded,
    journal: &Path,
    dir: &Path,
    opts: &SweepOptions,
) -> Result<(), HarnessError> {
    let (Some((reference, extractor, pr_extractor)), Some(vq)) = (&loaded.quality, loaded.set.vq())
    else {
        return Ok(());
    };
    let records = crate::records::read_journal(journal)?;
    if opts.progress {
        let pr = pr_extractor.as_ref().map_or(String::new(), |x| {
            format!(", precision/recall by {}", x.name())
        });
        eprintln!(
            "quality: decoding {} images, features by {}{pr}",
            records.len(),
            extractor.name()
        );
    }
    let tokenizer = inputs
        .paths
        .vq
        .as_deref()
        .map_or(String::new(), lantern_models::checkpoint::file_fingerprint);
    let scorers = quality::Scorers {
        reference: reference.as_ref(),
        extractor: Some(extractor.as_ref()),
        pr_extractor: pr_extractor.as_deref(),
        captions: inputs
            .prompts
            .as_ref()
            .map_or(&[], |p| p.captions.as_slice()),
        clip: loaded.clip.as_ref(),
        hps: loaded.hps.as_ref(),
        tokenizer: &tokenizer,
    };
    let q = quality::compute(
        &records,
        vq,
        loaded.set.image_grid(),
        &scorers,
        &opts.results_root.join(".cache"),
        cfg.quality.k as usize,
    )
    .map_err(|e| std::io::Error::other(format!("quality: {e}")))?;
    quality::save(dir, &shard_file("quality", "json", opts.shard), &q)?;
    Ok(())
}
