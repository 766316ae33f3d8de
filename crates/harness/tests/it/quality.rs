//! Quality pass: drift from AR and set metrics against a reference, on the fixture tokenizer.

use lantern_harness::quality::{compute, Scorers};
use lantern_harness::records::Record;
use lantern_metrics::{FeatureExtractor, ReferenceTokens, VqEncoderExtractor};
use lantern_models::bundle::vq_config;
use lantern_models::VqModel;

fn fixture_vq() -> VqModel {
    let dir = lantern_models::fixtures::llamagen_tiny();
    let cfg = vq_config(&dir.join("vq.json").display().to_string()).unwrap();
    VqModel::load(
        &cfg,
        &dir.join("vq.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap()
}

fn record(run_id: &str, strategy: &str, seed: u64, tokens: Vec<u32>) -> Record {
    serde_json::from_value(serde_json::json!({
        "run_id": run_id, "label": run_id, "strategy": strategy, "tree": null, "k": null,
        "delta": null, "lambda": null, "window": null, "official_compat": null, "auto_added": false,
        "temperature": 1.0, "top_k": 0, "top_p": 1.0, "cfg": 3.0, "class": 1, "prompt": null,
        "seed": seed, "tokens": tokens, "steps": 16, "tau": 1.0, "latency_ms": 1.0, "draft_ms": 0.0,
        "verify_ms": 1.0, "prefill_ms": 0.1, "vq_decode_ms": null, "accepted_per_step": [],
        "neighbour_source": null, "gpt_model": "g", "drafter_model": null, "vq_model": null,
        "backend": "cpu", "device": "cpu", "threads": 1, "git_commit": "x"
    }))
    .unwrap()
}

#[test]
fn drift_and_set_metrics_of_constructed_runs() {
    let _machine = crate::machine();
    let vq = fixture_vq();
    let codes = vq.config().codebook_size as u32;
    let (grid, n) = (4usize, 12u64);
    let image = |s: u64| -> Vec<u32> {
        (0..16)
            .map(|i| ((s * 7 + i * 5 + s * i) as u32) % codes)
            .collect()
    };
    // `same` repeats AR's tokens; `half` changes every odd position.
    let mut records = Vec::new();
    for s in 0..n {
        records.push(record("ar", "ar", s, image(s)));
        records.push(record("same", "sd", s, image(s)));
        let half: Vec<u32> = image(s)
            .iter()
            .enumerate()
            .map(|(i, &t)| if i % 2 == 1 { (t + 1) % codes } else { t })
            .collect();
        records.push(record("half", "lantern", s, half));
    }
    let reference = ReferenceTokens {
        source: "the AR images".into(),
        grid,
        labels: vec![1; n as usize],
        tokens: (0..n).map(image).collect(),
    };
    let extractor = VqEncoderExtractor::new(vq.clone(), "fixture");
    let cache = std::env::temp_dir().join(format!("lantern-quality-{}", std::process::id()));
    let scorers = Scorers {
        reference: Some(&reference),
        extractor: Some(&extractor as &dyn FeatureExtractor),
        tokenizer: "fixture-vq",
        ..Scorers::default()
    };
    let q = compute(&records, &vq, [grid, grid], &scorers, &cache, 3).unwrap();
    assert_eq!(q.extractor.as_deref(), Some("vq-encoder:fixture"));
    assert_eq!(q.pr_space(), Some("vq-encoder:fixture"));
    assert!(
        reference
            .feature_cache(&cache, &extractor.name(), "vq-encoder:fixture|fixture-vq")
            .is_file(),
        "reference features cached"
    );

    let ar = q.run("ar").unwrap();
    assert_eq!(ar.drift_images, 0, "AR is not compared with itself");
    assert!(
        ar.fd.unwrap().abs() < 1e-3,
        "AR images are the reference: FD {:?}",
        ar.fd
    );
    assert_eq!((ar.precision, ar.recall), (Some(1.0), Some(1.0)));

    let same = q.run("same").unwrap();
    assert_eq!(same.drift_images, n as usize);
    assert_eq!(same.drift_token_agreement, Some(1.0));
    assert!(same.drift_psnr_db.unwrap().is_infinite());

    let half = q.run("half").unwrap();
    assert_eq!(half.drift_token_agreement, Some(0.5));
    assert!(half.drift_psnr_db.unwrap().is_finite());
    assert!(
        half.fd.unwrap() > ar.fd.unwrap() + 1e-3,
        "{:?} vs {:?}",
        half.fd,
        ar.fd
    );
    let _ = std::fs::remove_dir_all(cache);
}
