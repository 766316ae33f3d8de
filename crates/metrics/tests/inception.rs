//! The FID Inception-v3 reproduces pytorch-fid's `InceptionV3` (the official definition of the
//! `pt_inception-2015-12-05` network) on deterministic weights: every key name and shape of the
//! official state dict loads unchanged, and the pool3 features, the unbiased logits and the
//! intermediate blocks agree. References: `tests/data/make_references.py`.

use std::path::PathBuf;

use lantern_metrics::inception::{InceptionExtractor, InceptionV3, CLASSES, POOL3};
use lantern_metrics::FeatureExtractor;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::write_safetensors;
use serde_json::Value;

fn reference() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/inception_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `n` numbers in [0, 1): the generator of `make_references.py::uniform`.
fn uniform(key: &str, n: usize) -> Vec<f32> {
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

/// The deterministic weight of one key (`make_references.py::filler`).
fn filler(key: &str, shape: &[usize]) -> Vec<f32> {
    let u = uniform(key, shape.iter().product());
    let map = |f: &dyn Fn(f32) -> f32| u.iter().map(|&v| f(v)).collect();
    if key.ends_with("conv.weight") || key == "fc.weight" {
        let fan_in: usize = shape[1..].iter().product();
        let scale = (6.0f64 / fan_in as f64).sqrt() as f32;
        map(&|v| (v * 2.0 - 1.0) * scale)
    } else if key.ends_with("bn.weight") || key.ends_with("running_var") {
        map(&|v| v + 0.5)
    } else {
        map(&|v| (v * 2.0 - 1.0) * 0.1)
    }
}

/// `make_references.py::pattern`, mapped to [-1, 1].
fn pattern(batch: usize, side: usize) -> Tensor<4> {
    let mut data = Vec::with_capacity(batch * 3 * side * side);
    for b in 0..batch {
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let (b, c, y, x) = (b as f64, c as f64, y as f64, x as f64);
                    let v = 0.5
                        + 0.5
                            * (0.37 * y + 0.23 * x + 1.3 * c + 2.1 * b).sin()
                            * (0.11 * x * (c + 1.0) - 0.07 * y).cos();
                    data.push(v as f32 * 2.0 - 1.0);
                }
            }
        }
    }
    Tensor::from_data(
        TensorData::new(data, [batch, 3, side, side]),
        &Device::default(),
    )
}

/// Writes the reference's keys with deterministic values, leaving out `skip`.
fn weights_file(reference: &Value, name: &str, skip: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lantern-inception-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tensors: Vec<(String, TensorData)> = reference["keys"]
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
            (k.clone(), TensorData::new(filler(k, &shape), shape))
        })
        .collect();
    let path = dir.join(name);
    write_safetensors(&path, &tensors).unwrap();
    path
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// Largest |a − b| relative to the largest |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn reproduces_pytorch_fid_on_deterministic_weights() {
    let reference = reference();
    let path = weights_file(&reference, "inception.safetensors", None);
    let device = Device::default();
    let net = InceptionV3::load(&path, &device).expect("the official key layout loads");
    let batch = reference["input"]["batch"].as_u64().unwrap() as usize;
    let side = reference["input"]["side"].as_u64().unwrap() as usize;
    let out = net.forward_all(pattern(batch, side));

    for (i, (block, want)) in [out.block0, out.block1, out.block2]
        .into_iter()
        .zip(rows(&reference["block_channel_means"]))
        .enumerate()
    {
        let [_, c, h, w] = block.dims();
        let first = block.slice([0..1]).reshape([c, h * w]).mean_dim(1);
        let got: Vec<f32> = first.into_data().try_into_vec_as().unwrap();
        let err = rel_err(&got, &want);
        assert!(err < 1e-4, "block {i} channel means differ: {err}");
    }
    let pool3: Vec<f32> = out.pool3.clone().into_data().try_into_vec_as().unwrap();
    let want: Vec<f32> = rows(&reference["pool3"]).concat();
    assert_eq!(pool3.len(), batch * POOL3);
    let err = rel_err(&pool3, &want);
    assert!(err < 1e-4, "pool3 differs from pytorch-fid: {err}");
    let logits: Vec<f32> = net
        .logits_unbiased(out.pool3)
        .into_data()
        .try_into_vec_as()
        .unwrap();
    let want: Vec<f32> = rows(&reference["logits_unbiased"]).concat();
    assert_eq!(logits.len(), batch * CLASSES);
    let err = rel_err(&logits, &want);
    assert!(err < 1e-4, "unbiased logits differ: {err}");

    // The extractor names itself and returns the same features.
    let ex = InceptionExtractor::load(&path, &device).unwrap();
    assert_eq!(ex.name(), "inception-v3-fid");
    let set = ex.features(pattern(batch, side)).unwrap();
    assert!(rel_err(&set.values, &pool3) < 1e-6);
    let (probs, classes) = ex.class_probs(pattern(batch, side)).unwrap().unwrap();
    assert_eq!(classes, CLASSES);
    let total: f32 = probs[..CLASSES].iter().sum();
    assert!((total - 1.0).abs() < 1e-4);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn a_missing_key_is_named() {
    let reference = reference();
    let key = "Mixed_7c.branch_pool.conv.weight";
    let path = weights_file(&reference, "broken.safetensors", Some(key));
    let err = InceptionV3::load(&path, &Device::default())
        .err()
        .expect("a file without a key must be refused")
        .to_string();
    assert!(err.contains(key), "{err}");
    assert!(err.contains("Inception"), "{err}");
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}
