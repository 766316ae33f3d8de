//! Bad checkpoint files are refused with errors that name the file, the key and both shapes.

use std::path::PathBuf;

use crate::common::*;
use lantern_models::checkpoint::{list_tensors, read_tensor_data, write_safetensors};
use lantern_models::{Gpt, GptConfig, ModelError};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lantern-loader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn c2i_config() -> GptConfig {
    GptConfig::from_json_file(&fixture("gpt_c2i.json")).unwrap()
}

/// Rewrites the fixture without `drop` and with `extra` added.
fn edited_fixture(name: &str, drop: &str, extra: Option<(&str, Vec<usize>)>) -> PathBuf {
    let mut tensors: Vec<_> = read_tensor_data(&fixture("gpt_c2i.safetensors"))
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k != drop)
        .collect();
    if let Some((key, shape)) = extra {
        let n = shape.iter().product();
        tensors.push((
            key.to_string(),
            lantern_models::burn::tensor::TensorData::new(vec![0f32; n], shape),
        ));
    }
    let path = tmp(name);
    write_safetensors(&path, &tensors).unwrap();
    path
}

#[test]
fn missing_and_unexpected_keys_are_named_with_shapes() {
    let cfg = c2i_config();
    let path = edited_fixture(
        "edited.safetensors",
        "norm.weight",
        Some(("bogus.weight", vec![3, 4])),
    );
    let err = Gpt::load(&cfg, &path, &lantern_models::backend::test_device()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ModelError::KeyMismatch { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("missing key 'norm.weight'") && msg.contains(&format!("[{}]", cfg.dim)),
        "{msg}"
    );
    assert!(
        msg.contains("unexpected key 'bogus.weight'") && msg.contains("[3, 4]"),
        "{msg}"
    );
}

#[test]
fn tolerated_buffers_do_not_fail_the_load() {
    let path = edited_fixture("freqs.safetensors", "", Some(("freqs_cis", vec![4, 2, 2])));
    Gpt::load(
        &c2i_config(),
        &path,
        &lantern_models::backend::test_device(),
    )
    .unwrap();
}

#[test]
fn shape_mismatch_names_both_shapes() {
    let mut cfg = c2i_config();
    cfg.vocab_size *= 2;
    let err = Gpt::load(
        &cfg,
        &fixture("gpt_c2i.pt"),
        &lantern_models::backend::test_device(),
    )
    .unwrap_err()
    .to_string();
    let want = format!(
        "shape mismatch for 'output.weight': the model expects [{}, {}], the file has [{}, {}]",
        cfg.vocab_size,
        cfg.dim,
        cfg.vocab_size / 2,
        cfg.dim
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("gpt_c2i.pt"), "{err}");
}

#[test]
fn non_checkpoint_and_missing_files_are_refused_clearly() {
    let err = Gpt::load(
        &c2i_config(),
        &fixture("gpt_c2i.json"),
        &lantern_models::backend::test_device(),
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::NotACheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("gpt_c2i.json"), "{err}");

    let empty = tmp("empty.pt");
    std::fs::write(&empty, b"").unwrap();
    let err = Gpt::load(
        &c2i_config(),
        &empty,
        &lantern_models::backend::test_device(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("empty"), "{err}");

    let nowhere = tmp("does-not-exist.safetensors");
    let err = Gpt::load(
        &c2i_config(),
        &nowhere,
        &lantern_models::backend::test_device(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("does-not-exist.safetensors"), "{err}");

    // A TorchScript archive (`torch.jit.script(nn.Linear(2, 2)).save(..)`, 2.9 kB) is named as
    // such, with the one-line conversion to a state dict.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/torchscript-linear.pt");
    let err = Gpt::load(
        &c2i_config(),
        &script,
        &lantern_models::backend::test_device(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("TorchScript archive") && err.contains("state_dict()"),
        "{err}"
    );
}

#[test]
fn t2i_checkpoint_into_c2i_model_is_refused() {
    let err = Gpt::load(
        &c2i_config(),
        &fixture("gpt_t2i.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing key 'cls_embedding.embedding_table.weight'"),
        "{err}"
    );
    assert!(
        err.contains("unexpected key 'cls_embedding.cap_proj.fc1.weight'"),
        "{err}"
    );
}

#[test]
fn save_reload_round_trip_keeps_official_keys_and_outputs() {
    let cfg = c2i_config();
    let gpt = Gpt::load(
        &cfg,
        &fixture("gpt_c2i.pt"),
        &lantern_models::backend::test_device(),
    )
    .unwrap();
    let path = tmp("roundtrip.safetensors");
    gpt.save(&path).unwrap();
    let mine = list_tensors(&path).unwrap();
    let official = list_tensors(&fixture("gpt_c2i.safetensors")).unwrap();
    assert_eq!(
        mine.iter().map(|(k, v)| (k, &v.0)).collect::<Vec<_>>(),
        official.iter().map(|(k, v)| (k, &v.0)).collect::<Vec<_>>()
    );
    let a = read_tensor_data(&path).unwrap();
    let b = read_tensor_data(&fixture("gpt_c2i.safetensors")).unwrap();
    for (k, d) in &a {
        assert_eq!(d.as_bytes(), b[k].as_bytes(), "{k}");
    }
}
