//! CLIP towers reproduce open_clip's `CLIP` (OpenAI layout, QuickGELU): a tiny random model saved
//! both as safetensors and as a bare `torch.save` state dict, and a model with the real
//! 49,408-token vocabulary on deterministic weights scored end to end (tokenizer, both towers,
//! cosine). The tokenizer reproduces open_clip's `SimpleTokenizer` on awkward prompts.
//! References: `tests/data/make_references.py`.

use crate::common::{
    data, floats, host, input, input_images, pattern, reference, rel_err, remove, uniform,
    weights_file,
};
use lantern_metrics::clip::{
    cosine_rows, normalise, Activation, Clip, ClipConfig, ClipScorer, Preprocess,
};
use lantern_metrics::clip_tokenizer::{default_vocab, ClipTokenizer, CONTEXT};
use lantern_metrics::FeatureExtractor;

fn id_rows(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

#[test]
fn towers_match_open_clip_from_both_file_formats() {
    let r = reference("clip_reference.json");
    let (batch, side) = input(&r);
    let rows = id_rows(&r["text_ids"]);
    for file in ["clip-tiny.safetensors", "clip-tiny.pt"] {
        let config = ClipConfig::from_checkpoint(&data(file)).unwrap();
        assert_eq!(config.image_size, side, "{file}");
        assert_eq!(config.context, rows[0].len(), "{file}");
        let (clip, _) = Clip::load(
            &data(file),
            Activation::QuickGelu,
            &lantern_models::backend::test_device(),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let img = host(clip.encode_image(normalise((pattern(batch, side) + 1.0) * 0.5)));
        let err = rel_err(&img, &floats(&r["image_embeds"]));
        assert!(err < 1e-4, "{file}: image embeddings differ by {err}");
        let txt = host(clip.encode_text(&rows));
        let err = rel_err(&txt, &floats(&r["text_embeds"]));
        assert!(err < 1e-4, "{file}: text embeddings differ by {err}");
    }
    // The other activation is a different network: the test can tell them apart.
    let path = data("clip-tiny.safetensors");
    let (gelu, _) = Clip::load(
        &path,
        Activation::Gelu,
        &lantern_models::backend::test_device(),
    )
    .unwrap();
    let txt = host(gelu.encode_text(&rows));
    assert!(rel_err(&txt, &floats(&r["text_embeds"])) > 1e-3);
}

/// `make_references.py::clip_filler`.
fn clip_filler(key: &str, shape: &[usize]) -> Vec<f32> {
    let u = uniform(key, shape.iter().product());
    let map = |f: &dyn Fn(f32) -> f32| u.iter().map(|&v| f(v * 2.0 - 1.0)).collect();
    if shape.len() >= 2 {
        map(&|v| v * 0.1)
    } else if key.contains("ln") && key.ends_with("weight") {
        map(&|v| v * 0.1 + 1.0)
    } else {
        map(&|v| v * 0.05)
    }
}

fn captions(r: &serde_json::Value) -> Vec<String> {
    r["captions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn clip_score_matches_open_clip_end_to_end() {
    let r = reference("clip_score_reference.json");
    let path = weights_file(&r["keys"], "clip-score", None, clip_filler);
    let scorer = ClipScorer::load(
        &path,
        &default_vocab(),
        Activation::QuickGelu,
        "det",
        &lantern_models::backend::test_device(),
    )
    .unwrap();
    // 70 × 90 images: OpenAI's resize of the short side and centre crop, on the saved bytes.
    let captions = captions(&r);
    let scores = scorer.score(input_images(&r), &captions).unwrap();
    for (got, want) in scores.iter().zip(floats(&r["scores"])) {
        assert!((got - want).abs() < 1e-5, "score {got} vs open_clip {want}");
    }
    let features = scorer.features(input_images(&r)).unwrap();
    assert_eq!(scorer.name(), "clip:det");
    assert!(rel_err(&features.values, &floats(&r["image_embeds"])) < 1e-4);
    assert!(scorer.score(input_images(&r), &captions[..1]).is_err());
    remove(&path);
}

#[test]
fn hps_matches_its_own_code_end_to_end() {
    let r = reference("hps_reference.json");
    // 90 × 70 images: HPSv2's longest-side resize and padding, on the saved bytes.
    let x = Preprocess::LongestSidePad
        .apply(input_images(&r), 64)
        .unwrap();
    let [b, c, h, w] = x.dims();
    let means = host(x.reshape([b * c, h * w]).mean_dim(1));
    let err = rel_err(&means, &floats(&r["input_mean"]));
    assert!(err < 1e-5, "preprocessing differs from HPSv2's: {err}");

    let path = weights_file(&r["keys"], "hps", None, clip_filler);
    let scorer = ClipScorer::load_hps(
        &path,
        &default_vocab(),
        "det",
        &lantern_models::backend::test_device(),
    )
    .unwrap();
    assert_eq!(scorer.score_name(), "hpsv2:det");
    let scores = scorer.score(input_images(&r), &captions(&r)).unwrap();
    for (got, want) in scores.iter().zip(floats(&r["scores"])) {
        assert!(
            (got - want).abs() < 1e-5,
            "HPS {got} vs HPSv2's code {want}"
        );
    }
    // Read as OpenAI's layout (64-wide heads), the 160-wide tower does not divide: refused.
    let err = ClipScorer::load(
        &path,
        &default_vocab(),
        Activation::Gelu,
        "det",
        &lantern_models::backend::test_device(),
    )
    .err()
    .expect("64-wide heads do not fit")
    .to_string();
    assert!(err.contains("64-wide heads"), "{err}");
    remove(&path);
}

#[test]
fn tokenizer_matches_open_clip() {
    let r = reference("clip_reference.json");
    let tok = ClipTokenizer::load(&default_vocab()).unwrap();
    assert_eq!((tok.sot, tok.eot), (49406, 49407));
    let prompts = r["prompts"].as_array().unwrap();
    for (prompt, want) in prompts.iter().zip(id_rows(&r["prompt_tokens"])) {
        let prompt = prompt.as_str().unwrap();
        let got = tok.tokenize(prompt, CONTEXT);
        assert_eq!(got.len(), CONTEXT);
        assert_eq!(&got[..want.len()], &want[..], "prompt {prompt:?}");
        assert!(
            got[want.len()..].iter().all(|&t| t == 0),
            "padding of {prompt:?}"
        );
    }
}

#[test]
fn cosine_rows_on_known_pairs() {
    let a = [1.0, 0.0, 3.0, 4.0, 1.0, 1.0];
    let b = [2.0, 0.0, -3.0, -4.0, 1.0, -1.0];
    assert_eq!(cosine_rows(&a, &b, 2).unwrap(), vec![1.0, -1.0, 0.0]);
    assert!(cosine_rows(&a, &b[..4], 2).is_err());
}

#[test]
fn a_non_clip_file_is_refused_by_name() {
    let path = data("../../../../checkpoints/extractors/efficientnet-lite0.safetensors");
    let err = ClipConfig::from_checkpoint(&path).unwrap_err().to_string();
    assert!(err.contains("visual.conv1.weight"), "{err}");
    assert!(err.contains("efficientnet-lite0.safetensors"), "{err}");
}
