//! Shared helpers for the fixture tests: where the fixtures live and how to read them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::read_tensor_data;

/// The LlamaGen fixture folder ([`lantern_models::fixtures::llamagen_tiny`]).
pub fn fixture_dir() -> PathBuf {
    let dir = lantern_models::fixtures::llamagen_tiny();
    assert!(
        dir.join("gpt_c2i.json").is_file(),
        "fixtures not found at {} (LANTERN_FIXTURES names the folder holding llamagen-tiny/)",
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

/// A tiny deterministic generator for test inputs (SplitMix64).
pub struct TestRng(pub u64);

impl TestRng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
