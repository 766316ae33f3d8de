//! Per-image records: a durable JSONL journal (each finished image is fsync'd before the next
//! starts, so a killed sweep loses nothing) and the `runs.parquet` table built from it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::columns::Config;

/// One generated image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Hash of the resolved run spec and the model identity.
    pub run_id: String,
    /// Human label of the configuration.
    pub label: String,
    /// What the run was configured to do (the configuration columns).
    #[serde(flatten)]
    pub config: Config,
    /// Class label (c2i).
    pub class: Option<u32>,
    /// Prompt index (t2i).
    pub prompt: Option<u32>,
    /// Seed.
    pub seed: u64,
    /// Image tokens.
    pub tokens: Vec<u32>,
    /// Target forwards after the prefill.
    pub steps: u32,
    /// Mean accepted length per target forward (bonus included).
    pub tau: f64,
    /// Milliseconds, prefill through the last token: the mean of `latencies_ms`.
    pub latency_ms: f64,
    /// The latency of every timed generation of this image (`[timing] repeats`; same tokens).
    #[serde(default)]
    pub latencies_ms: Vec<f64>,
    /// Warm-up images each configuration ran before its timed images.
    #[serde(default)]
    pub warmup: Option<u32>,
    /// Milliseconds drafting.
    pub draft_ms: f64,
    /// Milliseconds verifying (target forwards after the prefill, and acceptance).
    pub verify_ms: f64,
    /// Of `draft_ms + verify_ms`, milliseconds inside model forwards (the rest is host work:
    /// sampling, trees, acceptance, copies).
    #[serde(default)]
    pub forward_ms: f64,
    /// Milliseconds of the prefill.
    pub prefill_ms: f64,
    /// Mean over rounds of the exact TVD between what the acceptance rule emits at the first
    /// drafted position and the target there (speculative kinds; see `accept::emitted_tvd`).
    #[serde(default)]
    pub tvd_emitted: Option<f64>,
    /// Mean over rounds of the target's distribution statistics after CFG (entropy, largest
    /// probability, top-10 mass) and of the drafter's single-draft acceptance 1 − TV(p, q) at the
    /// round's first position (AR and the drafted kinds; see `lantern_decoding::regime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime: Option<lantern_decoding::regime::Regime>,
    /// What the machine did during the kept timing (the first repeat's): this process's CPU time
    /// and run-queue wait, steal and CPU pressure (see `quiet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<crate::quiet::Quietness>,
    /// Times the image was re-timed because the machine was disturbed (all repeats together).
    #[serde(default)]
    pub retimed: u32,
    /// Why a kept timing was still disturbed after the last re-timing (`None`: quiet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disturbed: Option<String>,
    /// Milliseconds decoding tokens to pixels (when a tokenizer is loaded).
    pub vq_decode_ms: Option<f64>,
    /// Accepted draft tokens per step.
    pub accepted_per_step: Vec<u32>,
    /// Target forwards, prefill included (NFE), as counted at the model seam.
    #[serde(default)]
    pub target_forwards: Option<u32>,
    /// Drafter forwards (root catch-ups and expansions), as counted at the model seam.
    #[serde(default)]
    pub drafter_forwards: Option<u32>,
    /// Peak resident memory of the process while this image was generated, MiB (Linux: the
    /// high-water mark is reset before each image).
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
    /// Where the LANTERN neighbour table came from (`vq_codebook`, `gpt_tok_embeddings`).
    pub neighbour_source: Option<String>,
    /// Target family: `llamagen`, `lumina-mgpt` or `anole` (absent in records made before
    /// Chameleon-family targets ran: those are LlamaGen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Target model name (file or preset).
    pub gpt_model: String,
    /// Drafter name (`random` = untrained).
    pub drafter_model: Option<String>,
    /// Tokenizer name.
    pub vq_model: Option<String>,
    /// Backend (`cpu`, `wgpu`, `cuda`).
    pub backend: String,
    /// Engine that ran the models (`host`: the CPU fast path; `burn`).
    #[serde(default)]
    pub engine: String,
    /// Weight storage of the target and drafter matrices (`f32`, `bf16`, `f16`).
    #[serde(default)]
    pub dtype: String,
    /// Device description.
    pub device: String,
    /// CPU threads.
    pub threads: u32,
    /// Host name of the machine.
    #[serde(default)]
    pub host: String,
    /// CPU model.
    #[serde(default)]
    pub cpu: String,
    /// burn version the binary was built with.
    #[serde(default)]
    pub burn: String,
    /// Git commit of the code that produced the row (`+dirty` when uncommitted changes existed).
    pub git_commit: String,
}

impl Record {
    /// The key that identifies an image within a sweep.
    pub fn key(&self) -> (String, Option<u32>, Option<u32>, u64) {
        (self.run_id.clone(), self.class, self.prompt, self.seed)
    }
}

/// Append-only JSONL file of records.
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

impl Journal {
    /// Opens (creating) the journal and reads the records already in it. A torn last line (the
    /// process was killed while writing it) is cut off.
    pub fn open(path: &Path) -> std::io::Result<(Self, Vec<Record>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let (records, good) = parse_journal(&text, path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if good < text.len() {
            file.set_len(good as u64)?;
        }
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
            },
            records,
        ))
    }

    /// Appends one record and makes it durable.
    pub fn append(&mut self, r: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Every journal of a results folder: `journal.jsonl` and the shard journals
/// (`journal.shard-I-of-N.jsonl`), each also as a zstd-compressed `….jsonl.zst` (how the
/// committed reference results carry them), in name order.
pub fn journal_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = results_files(dir, "journal", "jsonl")?;
    files.extend(results_files(dir, "journal", "jsonl.zst")?);
    files.sort();
    Ok(files)
}

/// What merging journals found.
#[derive(Debug, Default)]
pub struct Merged {
    /// One record per image, first seen first.
    pub records: Vec<Record>,
    /// Images recorded twice with the same tokens (dropped).
    pub duplicates: usize,
    /// Images recorded twice with different tokens: `run_id class/prompt seed: file, file`.
    pub conflicts: Vec<String>,
}

/// Reads every journal of `dir` and merges them: an image (run id, condition, seed) recorded in
/// several journals is kept once; if its copies disagree on tokens the first is kept and the
/// conflict reported.
pub fn merge_journals(dir: &Path) -> std::io::Result<Merged> {
    let mut merged = Merged::default();
    let mut seen: std::collections::HashMap<_, (usize, PathBuf)> = Default::default();
    for file in journal_files(dir)? {
        for r in read_journal(&file)? {
            match seen.get(&r.key()) {
                Some((i, first)) => {
                    if merged.records[*i].tokens == r.tokens {
                        merged.duplicates += 1;
                    } else {
                        let cond = r.class.or(r.prompt).unwrap_or(0);
                        merged.conflicts.push(format!(
                            "{} condition {cond} seed {}: {} and {} hold different tokens",
                            r.run_id,
                            r.seed,
                            first.display(),
                            file.display()
                        ));
                    }
                }
                None => {
                    seen.insert(r.key(), (merged.records.len(), file.clone()));
                    merged.records.push(r);
                }
            }
        }
    }
    Ok(merged)
}

/// The records of one journal file, plain or zstd-compressed (`.zst`), read-only (a torn last
/// line is skipped).
pub fn read_journal(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = if path.extension().is_some_and(|e| e == "zst") {
        let bytes = zstd::stream::decode_all(std::fs::File::open(path)?)?;
        String::from_utf8(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not UTF-8 JSON lines: {e}", path.display()),
            )
        })?
    } else {
        std::fs::read_to_string(path)?
    };
    Ok(parse_journal(&text, path)?.0)
}

/// The complete lines of a journal's text as records, and the bytes they span (a torn last line,
/// cut by a kill mid-write, is left out).
fn parse_journal(text: &str, path: &Path) -> std::io::Result<(Vec<Record>, usize)> {
    let mut records = Vec::new();
    let mut good = 0;
    for line in text.split_inclusive('\n').take_while(|l| l.ends_with('\n')) {
        let r = serde_json::from_str::<Record>(line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: unreadable record after {} good ones: {e}",
                    path.display(),
                    records.len()
                ),
            )
        })?;
        records.push(r);
        good += line.len();
    }
    Ok((records, good))
}

/// Files of a results folder named `PREFIX….EXT` (`journal….jsonl`, `quality….json`): an
/// unsharded run's and every shard's, in name order.
pub fn results_files(dir: &Path, prefix: &str, ext: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(&format!(".{ext}")))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Keys of the records already done.
pub fn done_keys(records: &[Record]) -> HashSet<(String, Option<u32>, Option<u32>, u64)> {
    records.iter().map(Record::key).collect()
}

fn list_u32(name: &str, rows: impl Iterator<Item = Vec<u32>>) -> Column {
    let inner: Vec<Series> = rows.map(|v| Series::new("".into(), v)).collect();
    Series::new(name.into(), inner).into()
}

/// The records as a DataFrame (one row per image; nulls where a column does not apply), with
/// `equals_ar` (greedy rows: tokens identical to AR's at the same condition; see
/// [`crate::summary::equals_ar`]).
pub fn to_frame(records: &[Record], equals_ar: &[Option<bool>]) -> PolarsResult<DataFrame> {
    let col = |name: &str| PlSmallStr::from(name);
    macro_rules! c {
        ($name:expr, $f:expr) => {
            Column::new(col($name), records.iter().map($f).collect::<Vec<_>>())
        };
    }
    let mut columns = vec![
        c!("run_id", |r| r.run_id.clone()),
        c!("label", |r| r.label.clone()),
    ];
    columns.extend(Config::columns(records.iter().map(|r| &r.config)));
    columns.extend([
        c!("class", |r| r.class),
        c!("prompt", |r| r.prompt),
        c!("seed", |r| r.seed),
        list_u32("tokens", records.iter().map(|r| r.tokens.clone())),
        Column::new(col("equals_ar"), equals_ar.to_vec()),
        c!("steps", |r| r.steps),
        c!("target_forwards", |r| r
            .target_forwards
            .unwrap_or(r.steps + 1)),
        c!("drafter_forwards", |r| r.drafter_forwards),
        c!("tau", |r| r.tau),
        c!("latency_ms", |r| r.latency_ms),
        list_f64(
            "latencies_ms",
            records.iter().map(|r| r.latencies_ms.clone()),
        ),
        c!("warmup", |r| r.warmup),
        c!("draft_ms", |r| r.draft_ms),
        c!("verify_ms", |r| r.verify_ms),
        c!("forward_ms", |r| r.forward_ms),
        c!("prefill_ms", |r| r.prefill_ms),
        c!("tvd_emitted", |r| r.tvd_emitted),
        c!("target_entropy", |r| r.regime.map(|g| g.entropy)),
        c!("target_max_p", |r| r.regime.map(|g| g.max_p)),
        c!("target_top10", |r| r.regime.map(|g| g.top10)),
        c!("draft_accept1", |r| r.regime.and_then(|g| g.accept1)),
        c!("retimed", |r| r.retimed),
        c!("disturbed", |r| r.disturbed.clone()),
        c!("cpu_ms", |r| r.quiet.and_then(|q| q.cpu_ms)),
        c!("runqueue_wait_ms", |r| r.quiet.and_then(|q| q.wait_ms)),
        c!("steal_share", |r| r.quiet.and_then(|q| q.steal)),
        c!("cpu_pressure", |r| r.quiet.and_then(|q| q.pressure)),
        c!("vq_decode_ms", |r| r.vq_decode_ms),
        list_u32(
            "accepted_per_step",
            records.iter().map(|r| r.accepted_per_step.clone()),
        ),
        c!("peak_rss_mb", |r| r.peak_rss_mb),
        c!("neighbour_source", |r| r.neighbour_source.clone()),
        c!("family", |r| r.family.clone()),
        c!("gpt_model", |r| r.gpt_model.clone()),
        c!("drafter_model", |r| r.drafter_model.clone()),
        c!("vq_model", |r| r.vq_model.clone()),
        c!("backend", |r| r.backend.clone()),
        c!("engine", |r| r.engine.clone()),
        c!("dtype", |r| r.dtype.clone()),
        c!("device", |r| r.device.clone()),
        c!("threads", |r| r.threads),
        c!("host", |r| r.host.clone()),
        c!("cpu", |r| r.cpu.clone()),
        c!("burn", |r| r.burn.clone()),
        c!("git_commit", |r| r.git_commit.clone()),
    ]);
    DataFrame::new(records.len(), columns)
}

fn list_f64(name: &str, rows: impl Iterator<Item = Vec<f64>>) -> Column {
    let inner: Vec<Series> = rows.map(|v| Series::new("".into(), v)).collect();
    Series::new(name.into(), inner).into()
}

/// Writes a DataFrame as zstd Parquet, atomically (temp file + rename).
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("parquet.tmp");
    let f = std::fs::File::create(&tmp)?;
    ParquetWriter::new(f)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(std::io::Error::other)?;
    std::fs::rename(tmp, path)
}

/// Reads a Parquet file.
pub fn read_parquet(path: &Path) -> PolarsResult<DataFrame> {
    ParquetReader::new(std::fs::File::open(path).map_err(|e| PolarsError::IO {
        error: std::sync::Arc::new(e),
        msg: Some(path.display().to_string().into()),
    })?)
    .finish()
}
