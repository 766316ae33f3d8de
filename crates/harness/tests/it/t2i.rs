//! Text-conditional sweeps: a prompt set of captions and precomputed embeddings drives the
//! fixture's t2i GPT, every image gets a CLIP score against "A photo depicts " + its caption and
//! an HPSv2 score against the caption, and mismatched inputs are refused before anything is
//! generated.

use std::path::{Path, PathBuf};

use lantern_harness::config::SweepConfig;
use lantern_harness::records::read_parquet;
use lantern_harness::runner::{run_sweep, SweepOptions};
use lantern_metrics::clip::{Activation, Clip, ClipConfig, CLIP_LAYOUT};
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::{save_module, write_safetensors};
use lantern_models::{GptConfig, VqConfig, VqModel};

fn fixtures() -> PathBuf {
    lantern_models::fixtures::llamagen_tiny()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lantern-t2i-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A prompt set of `captions` with deterministic embeddings `[N, tokens, dim]` and a mask that
/// pads the first quarter of each caption.
fn prompt_set(dir: &Path, captions: &[&str], tokens: usize, dim: usize) -> PathBuf {
    let n = captions.len();
    let emb: Vec<f32> = (0..n * tokens * dim)
        .map(|i| ((i as f32) * 0.37).sin() * 0.5)
        .collect();
    let mask: Vec<u8> = (0..n * tokens)
        .map(|i| u8::from(i % tokens >= tokens / 4))
        .collect();
    let file = dir.join(format!("emb{dim}.safetensors"));
    write_safetensors(
        &file,
        &[
            ("embeddings".into(), TensorData::new(emb, [n, tokens, dim])),
            ("mask".into(), TensorData::new(mask, [n, tokens])),
        ],
    )
    .unwrap();
    let manifest = dir.join(format!("prompts{dim}.json"));
    let json =
        serde_json::json!({"captions": captions, "embeddings": file.file_name().unwrap().to_str()});
    std::fs::write(&manifest, json.to_string()).unwrap();
    manifest
}

/// A VQ whose codebook matches the GPT's vocabulary (burn's initial weights).
fn vq(dir: &Path, codes: usize) -> (PathBuf, PathBuf) {
    let cfg: VqConfig = serde_json::from_str(&format!(
        r#"{{"codebook_size": {codes}, "codebook_embed_dim": 8, "encoder_ch_mult": [1, 2], "decoder_ch_mult": [1, 2],
            "z_channels": 32, "ch": 32, "num_res_blocks": 1}}"#
    ))
    .unwrap();
    let json = dir.join("vq.json");
    std::fs::write(&json, serde_json::to_string(&cfg).unwrap()).unwrap();
    let weights = dir.join("vq.safetensors");
    VqModel::new(&cfg, &lantern_models::backend::test_device())
        .unwrap()
        .save(&weights)
        .unwrap();
    (weights, json)
}

/// A small CLIP with the real 49,408-token vocabulary in OpenAI's key layout.
fn clip(dir: &Path, vocab: usize) -> PathBuf {
    clip_with(dir, vocab, 64, 1, "clip")
}

/// A small CLIP of `vision_width` with `vision_heads` heads (HPSv2's are 80 wide).
fn clip_with(
    dir: &Path,
    vocab: usize,
    vision_width: usize,
    vision_heads: usize,
    tag: &str,
) -> PathBuf {
    let config = ClipConfig {
        embed_dim: 32,
        image_size: 32,
        patch: 16,
        vision_width,
        vision_layers: 1,
        context: 77,
        vocab,
        text_width: 64,
        text_layers: 1,
        vision_heads,
        text_heads: 1,
    };
    let path = dir.join(format!("{tag}-{vocab}.safetensors"));
    let model = Clip::new(
        &config,
        Activation::Gelu,
        &lantern_models::backend::test_device(),
    );
    save_module(&model, &path, &CLIP_LAYOUT).unwrap();
    path
}

#[test]
fn prompt_sweeps_record_prompts_and_clip_scores() {
    let _machine = crate::machine();
    let fx = fixtures();
    let gpt_json = fx.join("gpt_t2i.json");
    let gpt = GptConfig::from_json_file(&gpt_json).unwrap();
    let root = tmp("sweep");
    let (vq_weights, vq_json) = vq(&root, gpt.vocab_size);
    let captions = [
        "a red fox in the snow",
        "two dogs playing frisbee",
        "a bowl of soup",
    ];
    let manifest = prompt_set(&root, &captions, gpt.cls_token_num, gpt.caption_dim);
    let clip_weights = clip(&root, 49_408);
    let hps_weights = clip_with(&root, 49_408, 160, 2, "hps");
    let text = format!(
        r#"
name = "t2i"
[model]
gpt = "{}"
gpt_config = "{}"
vq = "{}"
vq_config = "{}"
drafter = "random"
[data]
prompts = "{}"
prompt_limit = 2
seeds = 2
[quality]
clip_weights = "{}"
hps_weights = "{}"
[[strategy]]
kind = "ar"
[[strategy]]
kind = "lantern"
tree = "chain:2"
k = 10
delta = 0.2
"#,
        fx.join("gpt_t2i.safetensors").display(),
        gpt_json.display(),
        vq_weights.display(),
        vq_json.display(),
        manifest.display(),
        clip_weights.display(),
        hps_weights.display()
    );
    let opts = SweepOptions {
        results_root: root.join("results"),
        progress: false,
        shard: None,
    };
    let cfg = SweepConfig::parse(&text, &root.join("t2i.toml")).unwrap();
    let out = run_sweep(&cfg, &opts).unwrap();
    assert_eq!(
        out.generated,
        2 * 2 * 2,
        "2 strategies × 2 prompts × 2 seeds"
    );
    let runs = read_parquet(&out.dir.join("runs.parquet")).unwrap();
    let prompt = runs.column("prompt").unwrap().u32().unwrap().clone();
    assert_eq!(prompt.null_count(), 0);
    let max = (0..prompt.len()).filter_map(|i| prompt.get(i)).max();
    assert_eq!(max, Some(1), "prompt_limit = 2 keeps prompts 0 and 1");
    let summary = read_parquet(&out.dir.join("summary.parquet")).unwrap();
    let clip_score = summary.column("clip_score").unwrap().f64().unwrap().clone();
    assert_eq!(
        clip_score.null_count(),
        0,
        "every configuration has a CLIP score"
    );
    for i in 0..clip_score.len() {
        let c = clip_score.get(i).unwrap();
        assert!(
            c.abs() <= 1.0 && c != 0.0,
            "a cosine of real embeddings: {c}"
        );
    }
    for col in ["clip_score", "hps_score"] {
        let per_image = runs.column(col).unwrap().f64().unwrap().clone();
        assert_eq!(per_image.null_count(), 0, "{col} for every image");
        assert_eq!(per_image.len(), runs.height());
    }
    let hps = summary.column("hps_score").unwrap().f64().unwrap().clone();
    assert_eq!(
        hps.null_count(),
        0,
        "every configuration has an HPSv2 score"
    );
    for i in 0..hps.len() {
        let (h, c) = (hps.get(i).unwrap(), clip_score.get(i).unwrap());
        assert!(
            h.abs() <= 1.0 && h != c,
            "HPSv2 is its own model: {h} vs {c}"
        );
    }
    let quality = std::fs::read_to_string(out.dir.join("quality.json")).unwrap();
    assert!(quality.contains("\"clip:clip-49408\""), "{quality}");
    assert!(quality.contains("\"hpsv2:hps-49408\""), "{quality}");
    let tables = std::fs::read_to_string(out.dir.join("tables.md")).unwrap();
    assert!(
        tables.contains("CLIP score (95% CI)") && tables.contains("A photo depicts"),
        "{tables}"
    );
    assert!(
        tables.contains("HPSv2 (95% CI)") && tables.contains("bare caption"),
        "{tables}"
    );

    // A re-run resumes (nothing new); a changed caption makes new runs.
    assert_eq!(run_sweep(&cfg, &opts).unwrap().generated, 0);
    let edited = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("a red fox", "a grey fox");
    std::fs::write(&manifest, edited).unwrap();
    assert_eq!(run_sweep(&cfg, &opts).unwrap().generated, 8);

    // Inputs that do not fit are refused before anything is written.
    let refused = |text: String, needles: &[&str]| {
        let cfg = SweepConfig::parse(&text, &root.join("bad.toml")).unwrap();
        let err = run_sweep(&cfg, &opts).unwrap_err().to_string();
        for n in needles {
            assert!(err.contains(n), "{n:?} missing from {err}");
        }
        assert!(!opts.results_root.join("bad").exists());
    };
    let wrong_dim = prompt_set(&root, &captions, gpt.cls_token_num, gpt.caption_dim + 1);
    refused(
        text.replace("name = \"t2i\"", "name = \"bad\"").replace(
            &manifest.display().to_string(),
            &wrong_dim.display().to_string(),
        ),
        &[
            "data.prompts",
            "caption_dim",
            &format!("{}", gpt.caption_dim + 1),
        ],
    );
    let small_vocab = clip(&root, 1000);
    refused(
        text.replace("name = \"t2i\"", "name = \"bad\"").replace(
            &clip_weights.display().to_string(),
            &small_vocab.display().to_string(),
        ),
        &["quality.clip_weights", "1000 token ids"],
    );
    refused(
        text.replace("name = \"t2i\"", "name = \"bad\"")
            .replace(
                &format!("prompts = \"{}\"\nprompt_limit = 2", manifest.display()),
                "classes = [1]",
            )
            .replace(
                &format!(
                    "[quality]\nclip_weights = \"{}\"\nhps_weights = \"{}\"",
                    clip_weights.display(),
                    hps_weights.display()
                ),
                "[quality]",
            ),
        &["data.classes", "text-conditional"],
    );
    let _ = std::fs::remove_dir_all(root);
}
