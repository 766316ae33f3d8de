//! The experiment runner: sweep files → run plans → per-image records (JSONL journal, Parquet)
//! → summaries, paper-style tables and plots.

pub mod agreement;
pub mod auto;
pub mod captions;
pub mod columns;
pub mod config;
pub mod extractors;
pub mod headline;
pub mod images;
pub mod plan;
pub mod plots;
pub mod prompts;
pub mod quality;
pub mod quiet;
pub mod records;
pub mod report;
pub mod runner;
pub mod shard;
pub mod summary;
pub mod system;
