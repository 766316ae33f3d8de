//! Decoding for visual AR models: sampling warpers and CFG, latent-neighbour tables, acceptance
//! rules over probability rows (exact speculative sampling, greedy, LANTERN's δ relaxation,
//! LANTERN++'s λ bound), draft trees (chain, static choice lists, EAGLE-2 dynamic), and the
//! strategies that drive a target and a drafter (AR, SD, LANTERN, LANTERN++) or no drafter at all
//! (the SJD family: SJD, SCD, GSD).
//!
//! Acceptance and tree logic never touch burn tensors: they take `&[f32]` rows and return
//! decisions, so they are exact, cheap and testable without a model. [`engine`] adapts the burn
//! models and the host engine (the CPU fast path) to the [`model::Models`] seam the strategies drive.

pub mod accept;
pub mod cost;
pub mod counted;
pub mod embeddings;
pub mod engine;
pub mod model;
pub mod neighbours;
pub mod regime;
pub mod rng;
pub mod sampling;
pub mod spec;
pub mod strategy;
pub mod tree;
pub mod tree_shape;
