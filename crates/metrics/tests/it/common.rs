//! Helpers shared by the reference tests: the deterministic weight generator and test images of
//! `tests/data/make_references.py`, JSON readers and a relative error.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::write_safetensors;
use serde_json::Value;

/// A file under `tests/data`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A reference JSON under `tests/data`.
pub fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data(name)).unwrap()).unwrap()
}

fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `n` numbers in [0, 1): splitmix64 of FNV-1a(key) + i, top 24 bits (`uniform` in Python).
pub fn uniform(key: &str, n: usize) -> Vec<f32> {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let seed = fnv1a(key);
    (0..n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(GOLDEN));
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// Writes every key of `keys` (`{name: shape}`) with `fill(name, shape)` as a safetensors file
/// in a fresh temporary directory named after `tag`, leaving out `skip`.
pub fn weights_file(
    keys: &Value,
    tag: &str,
    skip: Option<&str>,
    fill: fn(&str, &[usize]) -> Vec<f32>,
) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lantern-metrics-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tensors: Vec<(String, TensorData)> = keys
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, shape)| {
            let shape: Vec<usize> = shape
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (k.clone(), TensorData::new(fill(k, &shape), shape))
        })
        .collect();
    let path = dir.join(format!("{tag}.safetensors"));
    write_safetensors(&path, &tensors).unwrap();
    path
}

/// Removes the temporary directory of a [`weights_file`].
pub fn remove(path: &Path) {
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// `make_references.py::pattern`, mapped to [-1, 1]: `[batch, 3, side, side]`.
pub fn pattern(batch: usize, side: usize) -> Tensor<4> {
    pattern_rect(batch, side, side)
}

/// `make_references.py::pattern(batch, h, w)`, mapped to [-1, 1]: `[batch, 3, h, w]`.
pub fn pattern_rect(batch: usize, side: usize, width: usize) -> Tensor<4> {
    let mut v = Vec::with_capacity(batch * 3 * side * width);
    for b in 0..batch {
        for c in 0..3 {
            for y in 0..side {
                for x in 0..width {
                    let (b, c, y, x) = (b as f64, c as f64, y as f64, x as f64);
                    let p = 0.5
                        + 0.5
                            * (0.37 * y + 0.23 * x + 1.3 * c + 2.1 * b).sin()
                            * (0.11 * x * (c + 1.0) - 0.07 * y).cos();
                    v.push(p as f32 * 2.0 - 1.0);
                }
            }
        }
    }
    Tensor::from_data(
        TensorData::new(v, [batch, 3, side, width]),
        &lantern_models::backend::test_device(),
    )
}

/// The `batch` and `side` of a reference's input.
pub fn input(r: &Value) -> (usize, usize) {
    let get = |k: &str| r["input"][k].as_u64().unwrap() as usize;
    (get("batch"), get("side"))
}

/// The reference's input images: `pattern_rect(batch, side, width or side)`.
pub fn input_images(r: &Value) -> Tensor<4> {
    let (batch, side) = input(r);
    let width = r["input"]["width"].as_u64().map_or(side, |w| w as usize);
    pattern_rect(batch, side, width)
}

/// A JSON array of rows (or of numbers), flattened.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| match r.as_array() {
            Some(row) => row.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            None => vec![r.as_f64().unwrap() as f32],
        })
        .collect()
}

/// Largest |a − b| relative to the largest |b|.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Host values of a tensor.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as().unwrap()
}
