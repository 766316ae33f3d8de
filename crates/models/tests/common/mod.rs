//! Shared helpers for the fixture tests: where the fixtures live and how to read them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::read_tensor_data;

/// The fixture folder: `$LANTERN_FIXTURES`, else `../shared/fixtures/llamagen-tiny` beside the repo.
pub fn fixture_dir() -> PathBuf {
    let dir = std::env::var_os("LANTERN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/llamagen-tiny")
        });
    assert!(
        dir.join("gpt_c2i.json").is_file(),
        "fixtures not found at {} (set LANTERN_FIXTURES)",
        dir.display()
    );
    dir
}

/// A fixture file by name.
pub fn fixture(name: &str) -> PathBuf {
    fixture_dir().join(name)
}

/// Every tensor of a reference file.
pub fn reference(name: &str) -> BTreeMap<String, TensorData> {
    read_tensor_data(&fixture(name)).unwrap()
}

/// A reference tensor as f32 values.
pub fn f32s(r: &BTreeMap<String, TensorData>, key: &str) -> Vec<f32> {
    r[key].clone().try_into_vec_as::<f32>().unwrap()
}

/// A reference tensor as i64 values.
pub fn i64s(r: &BTreeMap<String, TensorData>, key: &str) -> Vec<i64> {
    r[key].clone().try_into_vec_as::<i64>().unwrap()
}

/// A reference tensor's shape.
pub fn shape(r: &BTreeMap<String, TensorData>, key: &str) -> Vec<usize> {
    r[key].shape().to_vec()
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
