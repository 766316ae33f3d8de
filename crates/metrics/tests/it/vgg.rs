//! The VGG precision/recall network reproduces torchvision's `VGG` fed as LANTERN's
//! `eval_prec_recall.py` feeds it (8-bit images, PIL bilinear resize to 224, ImageNet
//! normalisation, fc2 before its ReLU), at reduced widths on deterministic weights; the real
//! vgg16's key layout reads as VGG16. References: `tests/data/make_references.py`.

use std::collections::BTreeMap;

use crate::common::{
    floats, host, input, pattern, reference, rel_err, remove, uniform, weights_file,
};
use lantern_metrics::vgg::{preprocess, Vgg, VggConfig, VggExtractor};
use lantern_metrics::FeatureExtractor;
use serde_json::Value;

/// The deterministic weight of one key (`make_references.py::vgg_filler`).
fn filler(key: &str, shape: &[usize]) -> Vec<f32> {
    let u = uniform(key, shape.iter().product());
    let scale = if key.ends_with("weight") {
        let fan_in: usize = shape[1..].iter().product();
        (6.0f64 / fan_in as f64).sqrt() as f32
    } else {
        0.1
    };
    u.iter().map(|&v| (v * 2.0 - 1.0) * scale).collect()
}

fn shapes(keys: &Value) -> BTreeMap<String, Vec<usize>> {
    keys.as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            let s = s.as_array().unwrap();
            (
                k.clone(),
                s.iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            )
        })
        .collect()
}

#[test]
fn reproduces_torchvision_as_lantern_feeds_it() {
    let r = reference("vgg_reference.json");
    let path = weights_file(&r["keys"], "vgg", None, filler);
    let device = lantern_models::backend::test_device();
    let (batch, side) = input(&r);

    let x = preprocess(pattern(batch, side)).unwrap();
    assert_eq!(x.dims(), [batch, 3, 224, 224]);
    let [b, c, h, w] = x.dims();
    let means = host(x.clone().reshape([b * c, h * w]).mean_dim(1));
    assert!(
        rel_err(&means, &floats(&r["input_mean"])) < 1e-5,
        "preprocessing differs from PIL + ToTensor + Normalize"
    );

    let (net, config) = Vgg::load(&path, &device).expect("torchvision's key layout loads");
    assert_eq!(config.depth(), 16);
    let fc2 = net.fc2(x);
    let err = rel_err(&host(fc2.clone()), &floats(&r["fc2"]));
    assert!(err < 1e-4, "fc2 differs from torchvision: {err}");
    let err = rel_err(&host(net.logits(fc2)), &floats(&r["logits"]));
    assert!(err < 1e-4, "logits differ from torchvision: {err}");

    let ex = VggExtractor::load(&path, &device).unwrap();
    assert_eq!(ex.name(), "vgg16-fc2");
    let (set, probs) = ex.features_and_probs(pattern(batch, side)).unwrap();
    assert_eq!((set.count(), set.dim), (batch, 40));
    assert!(rel_err(&set.values, &floats(&r["fc2"])) < 1e-4);
    let (p, classes) = probs.unwrap();
    assert_eq!(classes, 10);
    assert!((p[..classes].iter().sum::<f32>() - 1.0).abs() < 1e-5);
    remove(&path);
}

#[test]
fn the_real_vgg16_layout_reads_as_vgg16() {
    let r = reference("vgg_reference.json");
    let config = VggConfig::from_shapes(&shapes(&r["vgg16_keys"])).unwrap();
    assert_eq!(config.depth(), 16);
    assert_eq!(config.fc, [[25088, 4096], [4096, 4096], [4096, 1000]]);
    let pools: Vec<usize> = config
        .convs
        .windows(2)
        .filter(|p| p[1].0 - p[0].0 == 3)
        .map(|p| p[0].0 + 2)
        .collect();
    assert_eq!(
        pools,
        [4, 9, 16, 23],
        "pools between the blocks (and one after)"
    );
}

#[test]
fn other_files_are_refused_by_name() {
    let r = reference("vgg_reference.json");
    let mut keys = shapes(&r["vgg16_keys"]);
    keys.insert("features.1.running_mean".into(), vec![64]);
    let err = VggConfig::from_shapes(&keys).unwrap_err();
    assert!(err.contains("batch-norm"), "{err}");

    let path = weights_file(
        &r["keys"],
        "vgg-broken",
        Some("classifier.3.weight"),
        filler,
    );
    let err = Vgg::load(&path, &lantern_models::backend::test_device())
        .expect_err("a file without fc2 must be refused")
        .to_string();
    assert!(err.contains("classifier.3.weight"), "{err}");
    remove(&path);
}
