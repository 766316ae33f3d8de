//! The embedded default end to end: a fresh clone runs every strategy on `checkpoints/tiny` with a
//! trained drafter, decodes images and reports quality for every configuration.

use std::path::{Path, PathBuf};

use lantern_harness::config::SweepConfig;
use lantern_harness::records::read_parquet;
use lantern_harness::runner::{run_sweep, SweepOptions};
use lantern_metrics::inception::{InceptionV3, INCEPTION_LAYOUT};
use lantern_metrics::vgg::{Vgg, VggConfig, VGG_LAYOUT};
use lantern_metrics::ReferenceTokens;
use lantern_models::checkpoint::save_module;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lantern-tiny-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The first `n` images of the shipped reference set, saved under `root` (keeps tests quick).
fn reference_slice(root: &Path, n: usize) -> PathBuf {
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../checkpoints/tiny");
    let mut reference = ReferenceTokens::load(&tiny.join("reference.json")).unwrap();
    reference.tokens.truncate(n);
    reference.labels.truncate(n);
    let file = root.join("reference.json");
    reference.save(&file).unwrap();
    file
}

#[test]
fn every_strategy_runs_on_the_embedded_default_with_quality() {
    let _machine = crate::machine();
    let root = tmp("sweep");
    let reference_file = reference_slice(&root, 64);
    let text = format!(
        r#"
name = "tiny_smoke"
[model]
preset = "tiny"
dtype = "f16"
[data]
classes = [0, 5]
seeds = 2
[timing]
retimes = 0     # not a timing test; the binary's light tests may run beside it
[runtime]
pilot_images = 1
[quality]
reference = "{}"
[[strategy]]
kind = "ar"
[[strategy]]
kind = "sd"
tree = "chain:4"
[[strategy]]
kind = "lantern"
tree = ["chain:4", "auto"]
k = 100
delta = 0.2
[[strategy]]
kind = "lantern++"
k = 100
lambda = 2.0
[[strategy]]
kind = "sjd"
window = 8
"#,
        reference_file.display()
    );
    let cfg = SweepConfig::parse(&text, &root.join("tiny_smoke.toml")).unwrap();
    let out = run_sweep(
        &cfg,
        &SweepOptions {
            results_root: root.clone(),
            progress: false,
            shard: None,
        },
    )
    .unwrap();
    assert_eq!(out.generated, 6 * 2 * 2);
    let summary = read_parquet(&out.dir.join("summary.parquet")).unwrap();
    assert_eq!(summary.height(), 6);
    // The auto tree is the cost model's pick; both LANTERN rows carry a prediction, nothing else.
    let tree = summary.column("tree").unwrap().str().unwrap().clone();
    let predicted = summary
        .column("predicted_speedup")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    let strategy = summary.column("strategy").unwrap().str().unwrap().clone();
    for i in 0..summary.height() {
        let lantern = strategy.get(i) == Some("lantern");
        assert_eq!(predicted.get(i).is_some(), lantern, "row {i}");
        if lantern {
            assert!(predicted.get(i).unwrap() > 0.0);
        }
    }
    assert!((0..tree.len()).any(|i| tree.get(i).is_some_and(|t| t.starts_with("auto→"))));
    let host = summary.column("host_share").unwrap().f64().unwrap().clone();
    assert!((0..host.len()).all(|i| (0.0..1.0).contains(&host.get(i).unwrap())));
    assert!(out.dir.join("predicted_vs_measured.png").is_file());
    assert!(out.dir.join("auto.json").is_file());
    let runs = read_parquet(&out.dir.join("runs.parquet")).unwrap();
    let dtype = runs.column("dtype").unwrap().str().unwrap().clone();
    assert!((0..dtype.len()).all(|i| dtype.get(i) == Some("f16")));
    // The target's regime is recorded for AR and the drafted kinds, not for SJD (4 images).
    let entropy = runs
        .column("target_entropy")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    assert_eq!(entropy.null_count(), 4);
    assert!((0..entropy.len())
        .filter_map(|i| entropy.get(i))
        .all(|h| h > 0.0 && h < 4096f64.ln()));
    // Speedups are ratios of medians inside their bootstrap interval.
    let col = |name: &str| summary.column(name).unwrap().f64().unwrap().clone();
    let (sp, lo, hi) = (col("speedup"), col("speedup_lo"), col("speedup_hi"));
    for i in 0..summary.height() {
        let (v, l, h) = (sp.get(i).unwrap(), lo.get(i).unwrap(), hi.get(i).unwrap());
        assert!(l <= v && v <= h, "row {i}: {l} ≤ {v} ≤ {h}");
    }
    for col in ["fd", "precision", "recall", "class_score"] {
        let c = summary.column(col).unwrap().f64().unwrap().clone();
        assert_eq!(c.null_count(), 0, "{col} computed for every configuration");
        assert!(
            (0..c.len())
                .map(|i| c.get(i))
                .all(|v| v.unwrap().is_finite()),
            "{col}"
        );
    }
    let extractor = summary.column("extractor").unwrap().str().unwrap().clone();
    assert!((0..extractor.len()).all(|i| extractor.get(i) == Some("efficientnet-lite0")));
    let drift = summary
        .column("drift_token_agreement")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    assert_eq!(
        drift.null_count(),
        1,
        "every strategy but AR is compared with AR"
    );
    let tau = summary.column("tau_mean").unwrap().f64().unwrap().clone();
    assert!((0..tau.len())
        .map(|i| tau.get(i))
        .all(|t| t.unwrap() >= 1.0));
    assert!(out.dir.join("samples").is_dir());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn user_given_clip_and_inception_weights_are_quality_spaces() {
    let _machine = crate::machine();
    let clip = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../metrics/tests/data/clip-tiny.safetensors");
    let root = tmp("clip");
    let reference_file = reference_slice(&root, 16);
    let text = format!(
        r#"
name = "tiny_clip"
[model]
preset = "tiny"
[data]
classes = [1]
seeds = 5
[timing]
retimes = 0
[quality]
reference = "{}"
extractor = "clip"
extractor_weights = "{}"
[[strategy]]
kind = "ar"
"#,
        reference_file.display(),
        clip.display()
    );
    let cfg = SweepConfig::parse(&text, &root.join("tiny_clip.toml")).unwrap();
    let opts = SweepOptions {
        results_root: root.clone(),
        progress: false,
        shard: None,
    };
    let out = run_sweep(&cfg, &opts).unwrap();
    let summary = read_parquet(&out.dir.join("summary.parquet")).unwrap();
    let extractor = summary.column("extractor").unwrap().str().unwrap().clone();
    assert_eq!(extractor.get(0), Some("clip:clip-tiny"));
    let fd = summary.column("fd").unwrap().f64().unwrap().clone();
    assert!(fd.get(0).unwrap().is_finite() && fd.get(0).unwrap() > 0.0);
    let tables = std::fs::read_to_string(out.dir.join("tables.md")).unwrap();
    assert!(tables.contains("`clip:clip-tiny` — not FID"), "{tables}");

    // Weights of another network are refused by key, before anything new is generated.
    let effnet = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../checkpoints/extractors/efficientnet-lite0.safetensors");
    let wrong = text
        .replace("name = \"tiny_clip\"", "name = \"tiny_wrong\"")
        .replace("extractor = \"clip\"", "extractor = \"inception-v3-fid\"")
        .replace(&clip.display().to_string(), &effnet.display().to_string());
    let cfg = SweepConfig::parse(&wrong, &root.join("tiny_wrong.toml")).unwrap();
    let err = run_sweep(&cfg, &opts).unwrap_err().to_string();
    for needle in [
        "quality.extractor_weights",
        "efficientnet-lite0.safetensors",
        "Mixed_7c",
    ] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }
    assert!(
        !root.join("tiny_wrong").exists(),
        "nothing written for a refused config"
    );

    // The FID network: a file with its key layout (burn's initial weights) runs as FID.
    let inception = root.join("inception.safetensors");
    save_module(
        &InceptionV3::new(&lantern_models::backend::test_device()),
        &inception,
        &INCEPTION_LAYOUT,
    )
    .unwrap();
    let fid = text
        .replace("name = \"tiny_clip\"", "name = \"tiny_fid\"")
        .replace("extractor = \"clip\"", "extractor = \"inception-v3-fid\"")
        .replace(
            &clip.display().to_string(),
            &inception.display().to_string(),
        );
    // LANTERN's protocol: FID from Inception, precision/recall in VGG16's fc2 space (a narrow
    // VGG16 plan in torchvision's key layout, burn's initial weights).
    let convs = [
        (0, 3, 8),
        (2, 8, 8),
        (5, 8, 8),
        (7, 8, 8),
        (10, 8, 8),
        (12, 8, 8),
        (14, 8, 8),
        (17, 8, 8),
        (19, 8, 8),
        (21, 8, 8),
        (24, 8, 8),
        (26, 8, 8),
        (28, 8, 8),
    ];
    let vgg_config = VggConfig {
        convs: convs.to_vec(),
        fc: [[8 * 49, 16], [16, 16], [16, 10]],
    };
    let vgg = root.join("vgg16.safetensors");
    save_module(
        &Vgg::new(&vgg_config, &lantern_models::backend::test_device()),
        &vgg,
        &VGG_LAYOUT,
    )
    .unwrap();
    let fid = fid.replace(
        "[[strategy]]",
        &format!(
            "pr_extractor = \"vgg16\"\npr_extractor_weights = \"{}\"\n[[strategy]]",
            vgg.display()
        ),
    );
    let cfg = SweepConfig::parse(&fid, &root.join("tiny_fid.toml")).unwrap();
    let out = run_sweep(&cfg, &opts).unwrap();
    let summary = read_parquet(&out.dir.join("summary.parquet")).unwrap();
    let extractor = summary.column("extractor").unwrap().str().unwrap().clone();
    assert_eq!(extractor.get(0), Some("inception-v3-fid:clean"));
    let pr_extractor = summary
        .column("pr_extractor")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    assert_eq!(pr_extractor.get(0), Some("vgg16-fc2"));
    for col in ["fd", "class_score", "precision", "recall"] {
        let v = summary.column(col).unwrap().f64().unwrap().get(0);
        assert!(v.is_some_and(f64::is_finite), "{col}: {v:?}");
    }
    let tables = std::fs::read_to_string(out.dir.join("tables.md")).unwrap();
    assert!(tables.contains("so FD is FID here"), "{tables}");
    assert!(tables.contains("as clean-fid does"), "{tables}");
    assert!(
        tables.contains("k = 3 in the feature space of `vgg16-fc2`"),
        "{tables}"
    );
    let _ = std::fs::remove_dir_all(root);
}
