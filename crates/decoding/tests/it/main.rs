//! Integration tests of `lantern-decoding`, one binary (one release link against burn): acceptance
//! rules, emitted distributions, draft trees, losslessness (chi-square) and every strategy on the
//! fixture model.

mod acceptance;
mod common;
mod emitted;
mod fixture_chameleon;
mod fixture_strategies;
mod lossless;
mod trees;
