//! The VQ tokenizer reproduces the official code on the tiny fixture: codes identical, decodes
//! within 1e-4, from `.pt` and `.safetensors`.

use crate::common::*;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::{VqConfig, VqModel};

fn load(ext: &str) -> VqModel {
    let cfg = VqConfig::from_json_file(&fixture("vq.json")).unwrap();
    VqModel::load(
        &cfg,
        &fixture(&format!("vq.{ext}")),
        &lantern_models::backend::test_device(),
    )
    .unwrap()
}

#[test]
fn encode_gives_reference_codes_and_decode_matches() {
    let r = reference("vq_reference.safetensors");
    let s = shape(&r, "image");
    let image = Tensor::<4>::from_data(
        TensorData::new(f32s(&r, "image"), [s[0], s[1], s[2], s[3]]),
        &lantern_models::backend::test_device(),
    );
    for ext in ["pt", "safetensors"] {
        let vq = load(ext);
        let grid = s[2] / vq.config().downsample();
        let codes = vq.encode(image.clone());
        assert_eq!(codes.dims(), [s[0], grid * grid]);
        let got: Vec<i64> = codes.into_data().try_into_vec_as().unwrap();
        assert_eq!(got, i64s(&r, "codes"), "{ext}: codes");

        let want_codes = Tensor::<2, Int>::from_data(
            TensorData::new(i64s(&r, "codes"), [s[0], grid * grid]),
            &lantern_models::backend::test_device(),
        );
        let decoded = vq.decode_code(want_codes, grid);
        assert_eq!(decoded.dims().to_vec(), shape(&r, "decoded"));
        let got: Vec<f32> = decoded.into_data().try_into_vec_as().unwrap();
        let diff = max_abs_diff(&got, &f32s(&r, "decoded"));
        assert!(diff < 1e-4, "{ext}: max |Δpixel| = {diff}");
    }
}
