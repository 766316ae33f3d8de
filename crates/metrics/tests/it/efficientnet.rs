//! The shipped EfficientNet-Lite0 weights classify real photos correctly (a functional check of
//! the architecture, SAME padding, batch norm and preprocessing), and the extractor's features are
//! finite with the documented width.

use std::path::PathBuf;

use lantern_metrics::efficientnet::{EfficientNetExtractor, EfficientNetLite0};
use lantern_metrics::FeatureExtractor;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn weights() -> PathBuf {
    root().join("checkpoints/extractors/efficientnet-lite0.safetensors")
}

/// A test photo as `[1, 3, H, W]` in [-1, 1].
fn photo(name: &str) -> Tensor<4> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let img = image::open(&path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let data: Vec<f32> = (0..3)
        .flat_map(|c| img.pixels().map(move |p| p[c] as f32 / 127.5 - 1.0))
        .collect();
    Tensor::from_data(
        TensorData::new(data, [1, 3, h as usize, w as usize]),
        &lantern_models::backend::test_device(),
    )
}

fn top1(net: &EfficientNetLite0, x: Tensor<4>) -> usize {
    let logits: Vec<f32> = net.forward(x).1.into_data().try_into_vec_as().unwrap();
    (0..logits.len()).fold(0, |best, i| if logits[i] > logits[best] { i } else { best })
}

#[test]
fn classifies_the_cat_and_the_espresso() {
    let net = EfficientNetLite0::load(&weights(), &lantern_models::backend::test_device()).unwrap();
    // ImageNet 281–285 are domestic cats; 967 espresso, 968 cup.
    let cat = top1(&net, photo("chelsea.jpg"));
    assert!((281..=285).contains(&cat), "chelsea classified as {cat}");
    let coffee = top1(&net, photo("coffee.jpg"));
    assert!(
        [967, 968].contains(&coffee),
        "coffee classified as {coffee}"
    );
    // Small generated images are resized to 224 first, so a 64-px copy still reads as a cat.
    let small = lantern_models::burn::tensor::module::interpolate(
        photo("chelsea.jpg"),
        lantern_models::burn::tensor::ops::InterpolateOptions::new(
            lantern_models::burn::tensor::ops::InterpolateMode::Bilinear,
        )
        .with_align_corners(false)
        .with_output_size([64, 64]),
    );
    assert!((281..=285).contains(&top1(&net, small)));
}

#[test]
fn extractor_gives_finite_1280_wide_features_and_probabilities() {
    let x =
        EfficientNetExtractor::load(&weights(), &lantern_models::backend::test_device()).unwrap();
    let images = Tensor::cat(vec![photo("chelsea.jpg"), photo("coffee.jpg")], 0);
    let f = x.features(images.clone()).unwrap();
    assert_eq!(
        (f.count(), f.dim, f.extractor.as_str()),
        (2, 1280, "efficientnet-lite0")
    );
    let (p, classes) = x.class_probs(images).unwrap().unwrap();
    assert_eq!((p.len(), classes), (2000, 1000));
    for row in p.chunks(1000) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn a_wrong_file_is_refused_with_the_key_that_does_not_fit() {
    let gpt = root().join("checkpoints/tiny/vq.safetensors");
    let fixture = lantern_models::fixtures::llamagen_tiny();
    let wrong = if gpt.is_file() {
        gpt
    } else {
        fixture.join("vq.safetensors")
    };
    let err = EfficientNetLite0::load(&wrong, &lantern_models::backend::test_device())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("_conv_stem.weight") || err.contains("EfficientNet"),
        "{err}"
    );
}
