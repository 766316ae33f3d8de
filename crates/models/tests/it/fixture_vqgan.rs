//! Meta's VQGAN (taming layout) against the official module on the `chameleon-tiny` fixture:
//! input normalisation, latents, codes, token ids, decoded pixels and Lumina's byte conversion.

use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::read_tensor_data;
use lantern_models::vqgan::{config_from_json_file, from_u8, load, to_u8_truncating};
use lantern_models::ChameleonConfig;

use super::common::{f32s, i64s};

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn vqgan_encodes_and_decodes_like_the_official_module() {
    let dir = lantern_models::fixtures::chameleon_tiny();
    let dev = lantern_models::backend::test_device();
    let cfg = config_from_json_file(&dir.join("vqgan.json")).unwrap();
    let vq = load(&cfg, &dir.join("vqgan.safetensors"), &dev).unwrap();
    let r = read_tensor_data(&dir.join("vq_reference.safetensors")).unwrap();
    let shape = r["image"].shape().to_vec();
    let (b, hh, ww) = (shape[0], shape[2], shape[3]);

    // Bytes [B, H, W, 3] → [B, 3, H, W] in [-1, 1], bit-exact.
    let bytes: Vec<u8> = r["image_uint8"].clone().try_into_vec_as().unwrap();
    let chw: Vec<u8> = (0..b * 3 * hh * ww)
        .map(|i| {
            let (n, c, y, x) = (i / (3 * hh * ww), i / (hh * ww) % 3, i / ww % hh, i % ww);
            bytes[((n * hh + y) * ww + x) * 3 + c]
        })
        .collect();
    let image = from_u8(&chw);
    assert_eq!(image, f32s(&r, "image"));

    let x = Tensor::<4>::from_data(TensorData::new(image, [b, 3, hh, ww]), &dev);
    let z: Vec<f32> = vq
        .encode_latent(x.clone())
        .into_data()
        .try_into_vec_as()
        .unwrap();
    let dz = max_diff(&z, &f32s(&r, "z"));
    assert!(dz < 1e-4, "z: max |Δ| {dz}");

    let codes = vq.encode(x);
    let got: Vec<i64> = codes.clone().into_data().try_into_vec_as().unwrap();
    assert_eq!(got, i64s(&r, "codes"));

    let (_, vocab) = ChameleonConfig::from_json_file(&dir.join("config.json")).unwrap();
    let want_map: Vec<u32> = i64s(&r, "code_to_token")
        .iter()
        .map(|&t| t as u32)
        .collect();
    assert_eq!(vocab.image_ids, want_map);
    let tokens: Vec<i64> = got
        .iter()
        .map(|&c| vocab.image_ids[c as usize] as i64)
        .collect();
    assert_eq!(tokens, i64s(&r, "tokens"));

    let f = cfg.downsample();
    let decoded = vq.decode_grid(codes, [hh / f, ww / f]);
    let decoded: Vec<f32> = decoded.into_data().try_into_vec_as().unwrap();
    let dd = max_diff(&decoded, &f32s(&r, "decoded"));
    assert!(dd < 1e-4, "decoded: max |Δ| {dd}");

    // Lumina's conversion truncates; within ±1 where f32 rounding crosses an integer edge.
    let want_u8: Vec<u8> = r["decoded_uint8"].clone().try_into_vec_as().unwrap();
    let got_u8 = to_u8_truncating(&decoded);
    let mut off = 0;
    for (i, &g) in got_u8.iter().enumerate() {
        let (n, c, y, x) = (i / (3 * hh * ww), i / (hh * ww) % 3, i / ww % hh, i % ww);
        let w = want_u8[((n * hh + y) * ww + x) * 3 + c];
        let d = (g as i32 - w as i32).abs();
        assert!(d <= 1, "pixel {i}: {g} vs {w}");
        off += d as usize;
    }
    assert!(
        off * 100 <= got_u8.len(),
        "{off} of {} bytes off by one",
        got_u8.len()
    );
}

#[test]
fn a_vqgan_config_with_unknown_fields_is_refused_by_name() {
    let tmp = std::env::temp_dir().join(format!("vqgan-bad-{}.json", std::process::id()));
    std::fs::write(
        &tmp,
        r#"{"embed_dim": 8, "n_embed": 16, "codebook": 3, "ddconfig": {}}"#,
    )
    .unwrap();
    let err = config_from_json_file(&tmp).unwrap_err().to_string();
    assert!(
        err.contains("vqgan-bad") && err.contains("codebook"),
        "{err}"
    );
    std::fs::remove_file(&tmp).ok();
}
