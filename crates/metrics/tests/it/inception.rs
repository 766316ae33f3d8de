//! The FID Inception-v3 reproduces pytorch-fid's `InceptionV3` (the official definition of the
//! `pt_inception-2015-12-05` network) on deterministic weights: every key name and shape of the
//! official state dict loads unchanged, and the pool3 features, the unbiased logits and the
//! intermediate blocks agree. References: `tests/data/make_references.py`.

use crate::common::{
    floats, host, input, pattern, reference, rel_err, remove, uniform, weights_file,
};
use lantern_metrics::inception::{InceptionExtractor, InceptionV3, Resize, CLASSES, POOL3};
use lantern_metrics::FeatureExtractor;

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

#[test]
fn reproduces_pytorch_fid_on_deterministic_weights() {
    let r = reference("inception_reference.json");
    let path = weights_file(&r["keys"], "inception", None, filler);
    let device = lantern_models::backend::test_device();
    let net = InceptionV3::load(&path, &device).expect("the official key layout loads");
    let (batch, side) = input(&r);
    let out = net.forward_all(Resize::PytorchFid.apply(pattern(batch, side)).unwrap());

    let blocks = r["block_channel_means"].as_array().unwrap();
    for (i, (block, want)) in [out.block0, out.block1, out.block2]
        .into_iter()
        .zip(blocks)
        .enumerate()
    {
        let [_, c, h, w] = block.dims();
        let first = host(
            block
                .slice([0..1, 0..c, 0..h, 0..w])
                .reshape([c, h * w])
                .mean_dim(1),
        );
        let err = rel_err(&first, &floats(want));
        assert!(err < 1e-4, "block {i} channel means differ: {err}");
    }
    let pool3 = host(out.pool3.clone());
    assert_eq!(pool3.len(), batch * POOL3);
    let err = rel_err(&pool3, &floats(&r["pool3"]));
    assert!(err < 1e-4, "pool3 differs from pytorch-fid: {err}");
    let logits = host(net.logits_unbiased(out.pool3));
    assert_eq!(logits.len(), batch * CLASSES);
    let err = rel_err(&logits, &floats(&r["logits_unbiased"]));
    assert!(err < 1e-4, "unbiased logits differ: {err}");

    // The extractor names itself and its resize, and returns the same features.
    let ex = InceptionExtractor::load(&path, Resize::PytorchFid, &device).unwrap();
    assert_eq!(ex.name(), "inception-v3-fid:pytorch-fid");
    let set = ex.features(pattern(batch, side)).unwrap();
    assert!(rel_err(&set.values, &pool3) < 1e-6);

    // clean-fid's preprocessing (8-bit pixels, Pillow bicubic) gives other features, as in Python.
    let clean = InceptionExtractor::load(&path, Resize::Clean, &device).unwrap();
    assert_eq!(clean.name(), "inception-v3-fid:clean");
    let set = clean.features(pattern(batch, side)).unwrap();
    let err = rel_err(&set.values, &floats(&r["pool3_clean"]));
    assert!(err < 1e-4, "clean-mode pool3 differs: {err}");
    assert!(
        rel_err(&set.values, &pool3) > 1e-3,
        "the two resizes differ"
    );
    let ex = clean;
    let (probs, classes) = ex.class_probs(pattern(batch, side)).unwrap().unwrap();
    assert_eq!(classes, CLASSES);
    let total: f32 = probs[..CLASSES].iter().sum();
    assert!((total - 1.0).abs() < 1e-4);
    remove(&path);
}

#[test]
fn a_missing_key_is_named() {
    let r = reference("inception_reference.json");
    let key = "Mixed_7c.branch_pool.conv.weight";
    let path = weights_file(&r["keys"], "inception-broken", Some(key), filler);
    let err = InceptionV3::load(&path, &lantern_models::backend::test_device())
        .expect_err("a file without a key must be refused")
        .to_string();
    assert!(err.contains(key), "{err}");
    assert!(err.contains("Inception"), "{err}");
    remove(&path);
}
