//! `lantern generate` runs every strategy on the fixture GPT and writes tokens, timings and a PNG
//! through a VQ decoder (a randomly initialised VQ whose codebook matches the GPT's vocabulary:
//! the fixture VQ has another codebook size).

use std::process::Command;

use lantern_models::{GptConfig, VqConfig, VqModel};

#[test]
fn generate_writes_tokens_and_png_for_every_strategy() {
    let fixtures = lantern_models::fixtures::llamagen_tiny();
    let gpt_cfg = GptConfig::from_json_file(&fixtures.join("gpt_c2i.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("lantern-generate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vq_cfg: VqConfig = serde_json::from_str(&format!(
        r#"{{"codebook_size": {}, "codebook_embed_dim": 8, "encoder_ch_mult": [1, 2], "decoder_ch_mult": [1, 2],
            "z_channels": 32, "ch": 32, "num_res_blocks": 1}}"#,
        gpt_cfg.vocab_size
    ))
    .unwrap();
    std::fs::write(dir.join("vq.json"), serde_json::to_string(&vq_cfg).unwrap()).unwrap();
    VqModel::new(&vq_cfg, &lantern_models::backend::test_device())
        .unwrap()
        .save(&dir.join("vq.safetensors"))
        .unwrap();

    for strategy in ["ar", "sd", "lantern", "lantern++", "sjd"] {
        let out = dir.join(strategy);
        let status = Command::new(env!("CARGO_BIN_EXE_lantern"))
            .args([
                "generate",
                "--models",
                "custom",
                "--strategy",
                strategy,
                "--class",
                "3",
            ])
            .args(if strategy.starts_with("lantern") {
                &["--k", "10"][..]
            } else {
                &[]
            })
            .arg("--gpt")
            .arg(fixtures.join("gpt_c2i.safetensors"))
            .arg("--gpt-config")
            .arg(fixtures.join("gpt_c2i.json"))
            .arg("--vq")
            .arg(dir.join("vq.safetensors"))
            .arg("--vq-config")
            .arg(dir.join("vq.json"))
            .args(["--drafter", "random", "--out"])
            .arg(&out)
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "{strategy}");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("class3_seed0.json")).unwrap())
                .unwrap();
        assert_eq!(
            record["tokens"].as_array().unwrap().len(),
            gpt_cfg.block_size,
            "{strategy}"
        );
        assert!(record["tau"].as_f64().unwrap() >= 1.0);
        let png = std::fs::read(out.join("class3_seed0.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{strategy}");
    }
}

#[test]
fn generate_flags_are_read_by_the_sweep_spec() {
    for (args, needles) in [
        (
            &["--strategy", "lantern", "--delta", "1.5"][..],
            &["--delta 1.5", "a number in [0, 1]"][..],
        ),
        (
            &["--strategy", "ar", "--delta", "0.1"],
            &["--delta", "does not apply to kind 'ar'"],
        ),
        (
            &["--strategy", "sjd", "--init", "diagonal"],
            &["--init", "horizontal, vertical, random"],
        ),
        (&["--strategy", "medusa"], &["--strategy", "lantern++"]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lantern"))
            .arg("generate")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for n in needles {
            assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
        }
    }
}
