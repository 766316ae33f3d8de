//! Integration tests of `lantern-cli`, one binary (one release link against burn and polars):
//! the `lantern` command end to end (generate, resume, score, the shipped configs' run ids).

mod generate;
mod resume;
mod run_ids;
mod score;
