//! Integration tests of `lantern-harness`, one binary (one release link against burn and polars):
//! configs, run ids, shards, quality, t2i prompt sets and the embedded default, end to end.

mod disturbance;
mod quality;
mod shards;
mod sweep;
mod t2i;
mod tiny;
