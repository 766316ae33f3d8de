//! CLIP towers reproduce open_clip's `CLIP` (OpenAI layout, QuickGELU) on a tiny random model
//! saved both as safetensors and as a bare `torch.save` state dict, and the tokenizer reproduces
//! open_clip's `SimpleTokenizer` on awkward prompts. References: `tests/data/make_references.py`.

use std::path::PathBuf;

use lantern_metrics::clip::{cosine_rows, Activation, Clip, ClipConfig};
use lantern_metrics::clip_tokenizer::{default_vocab, ClipTokenizer, CONTEXT};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data("clip_reference.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32))
        .collect()
}

/// `make_references.py::pattern`, mapped to [-1, 1].
fn pattern(batch: usize, side: usize) -> Tensor<4> {
    let mut v = Vec::with_capacity(batch * 3 * side * side);
    for b in 0..batch {
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
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
    Tensor::from_data(TensorData::new(v, [batch, 3, side, side]), &Device::default())
}

fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn towers_match_open_clip_from_both_file_formats() {
    let r = reference();
    let batch = r["input"]["batch"].as_u64().unwrap() as usize;
    let side = r["input"]["side"].as_u64().unwrap() as usize;
    let rows: Vec<Vec<u32>> = r["text_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect())
        .collect();
    for file in ["clip-tiny.safetensors", "clip-tiny.pt"] {
        let config = ClipConfig::from_checkpoint(&data(file)).unwrap();
        assert_eq!(config.image_size, side, "{file}");
        assert_eq!(config.context, rows[0].len(), "{file}");
        let (clip, _) = Clip::load(&data(file), Activation::QuickGelu, &Device::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let img: Vec<f32> = clip
            .encode_image(clip.preprocess(pattern(batch, side)))
            .into_data()
            .try_into_vec_as()
            .unwrap();
        let err = rel_err(&img, &floats(&r["image_embeds"]));
        assert!(err < 1e-4, "{file}: image embeddings differ by {err}");
        let txt: Vec<f32> = clip.encode_text(&rows).into_data().try_into_vec_as().unwrap();
        let err = rel_err(&txt, &floats(&r["text_embeds"]));
        assert!(err < 1e-4, "{file}: text embeddings differ by {err}");
    }
    // The other activation is a different network: the test can tell them apart.
    let (gelu, _) = Clip::load(&data("clip-tiny.safetensors"), Activation::Gelu, &Device::default()).unwrap();
    let txt: Vec<f32> = gelu.encode_text(&rows).into_data().try_into_vec_as().unwrap();
    assert!(rel_err(&txt, &floats(&r["text_embeds"])) > 1e-3);
}

#[test]
fn tokenizer_matches_open_clip() {
    let r = reference();
    let tok = ClipTokenizer::load(&default_vocab()).unwrap();
    assert_eq!((tok.sot, tok.eot), (49406, 49407));
    for (prompt, want) in r["prompts"].as_array().unwrap().iter().zip(r["prompt_tokens"].as_array().unwrap()) {
        let prompt = prompt.as_str().unwrap();
        let want: Vec<u32> = want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let got = tok.tokenize(prompt, CONTEXT);
        assert_eq!(got.len(), CONTEXT);
        assert_eq!(&got[..want.len()], &want[..], "prompt {prompt:?}");
        assert!(got[want.len()..].iter().all(|&t| t == 0), "padding of {prompt:?}");
    }
}

#[test]
fn cosine_rows_on_known_pairs() {
    let a = [1.0, 0.0, 3.0, 4.0, 1.0, 1.0];
    let b = [2.0, 0.0, -3.0, -4.0, 1.0, -1.0];
    let c = cosine_rows(&a, &b, 2).unwrap();
    assert_eq!(c, vec![1.0, -1.0, 0.0]);
    assert!(cosine_rows(&a, &b[..4], 2).is_err());
}

#[test]
fn a_non_clip_file_is_refused_by_name() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../checkpoints/extractors/efficientnet-lite0.safetensors");
    let err = ClipConfig::from_checkpoint(&path).unwrap_err().to_string();
    assert!(err.contains("visual.conv1.weight"), "{err}");
    assert!(err.contains("efficientnet-lite0.safetensors"), "{err}");
}
