//! Integration tests of `lantern-metrics`, one binary (one release link against burn): feature
//! extractors and metrics against the references of `tests/data/make_references.py`.

mod clip;
mod common;
mod efficientnet;
mod inception;
mod resize;
mod vgg;
