//! Integration tests of `lantern-models`, one binary (one release link against burn): GPT, VQ,
//! drafter and tree verification against the official-code fixtures, the host engine, loader errors.

mod common;
mod drafter;
mod fixture_chameleon;
mod fixture_gpt;
mod fixture_vq;
mod fixture_vqgan;
mod host_engine;
mod loader_errors;
mod tree_verify;
