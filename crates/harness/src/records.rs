//! Per-image records: a durable JSONL journal (each finished image is fsync'd before the next
//! starts, so a killed sweep loses nothing) and the `runs.parquet` table built from it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// One generated image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Hash of the resolved run spec and the model identity.
    pub run_id: String,
    /// Human label of the configuration.
    pub label: String,
    /// Strategy kind.
    pub strategy: String,
    /// Tree shape as configured (`auto` records the budget it chose, e.g. `auto→dynamic@16`).
    pub tree: Option<String>,
    /// Neighbours per token.
    pub k: Option<u32>,
    /// LANTERN's δ.
    pub delta: Option<f32>,
    /// LANTERN++'s λ.
    pub lambda: Option<f32>,
    /// SJD window.
    pub window: Option<u32>,
    /// Official residual quirks used (speculative kinds).
    pub official_compat: Option<bool>,
    /// LANTERN's rule when not the paper's (`bounded`).
    #[serde(default)]
    pub relax: Option<String>,
    /// How fresh Jacobi positions start (sjd, scd, gsd).
    #[serde(default)]
    pub init: Option<String>,
    /// SCD's coupling.
    #[serde(default)]
    pub coupling: Option<String>,
    /// GSD's group rule, e.g. `G=7 p<0.15 d<q0.01` (`d<q…`: a quantile of pair distances).
    #[serde(default)]
    pub grouping: Option<String>,
    /// AR baseline added because the sweep had none.
    pub auto_added: bool,
    /// Sampling temperature.
    pub temperature: f32,
    /// Top-k filter.
    pub top_k: u32,
    /// Top-p filter.
    pub top_p: f32,
    /// CFG scale.
    pub cfg: f32,
    /// Order of top-k and top-p.
    #[serde(default)]
    pub warp_order: String,
    /// `fixed` or `entropy` (entropy-aware temperature, `temperature` = T0).
    #[serde(default)]
    pub temperature_rule: String,
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
    /// Milliseconds, prefill through the last token.
    pub latency_ms: f64,
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
    /// Milliseconds decoding tokens to pixels (when a tokenizer is loaded).
    pub vq_decode_ms: Option<f64>,
    /// Accepted draft tokens per step.
    pub accepted_per_step: Vec<u32>,
    /// Where the LANTERN neighbour table came from (`vq_codebook`, `gpt_tok_embeddings`).
    pub neighbour_source: Option<String>,
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
        let mut records = Vec::new();
        let mut good = 0;
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => {
                    records.push(r);
                    good += line.len();
                }
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{}: unreadable record after {} good ones: {e}",
                            path.display(),
                            records.len()
                        ),
                    ))
                }
            }
        }
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

/// Keys of the records already done.
pub fn done_keys(records: &[Record]) -> HashSet<(String, Option<u32>, Option<u32>, u64)> {
    records.iter().map(Record::key).collect()
}

fn list_u32(name: &str, rows: impl Iterator<Item = Vec<u32>>) -> Column {
    let inner: Vec<Series> = rows.map(|v| Series::new("".into(), v)).collect();
    Series::new(name.into(), inner).into()
}

/// The records as a DataFrame (one row per image; nulls where a column does not apply).
pub fn to_frame(records: &[Record]) -> PolarsResult<DataFrame> {
    let col = |name: &str| PlSmallStr::from(name);
    macro_rules! c {
        ($name:expr, $f:expr) => {
            Column::new(col($name), records.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new(
        records.len(),
        vec![
            c!("run_id", |r| r.run_id.clone()),
            c!("label", |r| r.label.clone()),
            c!("strategy", |r| r.strategy.clone()),
            c!("tree", |r| r.tree.clone()),
            c!("k", |r| r.k),
            c!("delta", |r| r.delta),
            c!("lambda", |r| r.lambda),
            c!("window", |r| r.window),
            c!("official_compat", |r| r.official_compat),
            c!("relax", |r| r.relax.clone()),
            c!("init", |r| r.init.clone()),
            c!("coupling", |r| r.coupling.clone()),
            c!("grouping", |r| r.grouping.clone()),
            c!("auto_added", |r| r.auto_added),
            c!("temperature", |r| r.temperature),
            c!("top_k", |r| r.top_k),
            c!("top_p", |r| r.top_p),
            c!("cfg", |r| r.cfg),
            c!("warp_order", |r| r.warp_order.clone()),
            c!("temperature_rule", |r| r.temperature_rule.clone()),
            c!("class", |r| r.class),
            c!("prompt", |r| r.prompt),
            c!("seed", |r| r.seed),
            list_u32("tokens", records.iter().map(|r| r.tokens.clone())),
            c!("steps", |r| r.steps),
            c!("tau", |r| r.tau),
            c!("latency_ms", |r| r.latency_ms),
            c!("draft_ms", |r| r.draft_ms),
            c!("verify_ms", |r| r.verify_ms),
            c!("forward_ms", |r| r.forward_ms),
            c!("prefill_ms", |r| r.prefill_ms),
            c!("tvd_emitted", |r| r.tvd_emitted),
            c!("vq_decode_ms", |r| r.vq_decode_ms),
            list_u32(
                "accepted_per_step",
                records.iter().map(|r| r.accepted_per_step.clone()),
            ),
            c!("neighbour_source", |r| r.neighbour_source.clone()),
            c!("gpt_model", |r| r.gpt_model.clone()),
            c!("drafter_model", |r| r.drafter_model.clone()),
            c!("vq_model", |r| r.vq_model.clone()),
            c!("backend", |r| r.backend.clone()),
            c!("engine", |r| r.engine.clone()),
            c!("dtype", |r| r.dtype.clone()),
            c!("device", |r| r.device.clone()),
            c!("threads", |r| r.threads),
            c!("git_commit", |r| r.git_commit.clone()),
        ],
    )
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
