//! `lantern score` on folders of real photo crops: a folder against itself has FD ≈ 0 and full
//! precision/recall (in the FD's space and in a VGG's); CLIP and HPSv2 scores come per image with
//! captions (CLIPs with the real vocabulary, saved from their initial weights); bad inputs name
//! the file and what is wrong.

use std::path::{Path, PathBuf};
use std::process::Command;

use lantern_metrics::clip::{Activation, Clip, ClipConfig, CLIP_LAYOUT};
use lantern_metrics::vgg::{Vgg, VggConfig, VGG_LAYOUT};
use lantern_models::checkpoint::save_module;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lantern-score-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `n` 48-px crops of the metrics test photos into `dir`, alternating cat and coffee.
fn crops(dir: &Path, n: usize, shift: u32) {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../metrics/tests/data");
    let photos = [
        image::open(data.join("chelsea.jpg")).unwrap().to_rgb8(),
        image::open(data.join("coffee.jpg")).unwrap().to_rgb8(),
    ];
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let (x, y) = (10 + 9 * i as u32 + shift, 5 + 6 * i as u32 + shift);
        let crop = image::imageops::crop_imm(&photos[i % 2], x, y, 48, 48).to_image();
        crop.save(dir.join(format!("img{i}.png"))).unwrap();
    }
}

fn lantern(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .arg("score")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_folder_against_itself_and_against_other_crops() {
    let root = tmp("fd");
    let (a, b) = (root.join("a"), root.join("b"));
    crops(&a, 6, 0);
    crops(&b, 6, 40);
    let out = root.join("self.json");
    let cache = root.join("cache");
    let args = [
        "--images",
        a.to_str().unwrap(),
        "--reference",
        a.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    let (ok, text) = lantern(&args);
    assert!(ok, "{text}");
    assert!(text.contains("reference features cached at"), "{text}");
    // The second run reads the reference features back and gives the same numbers.
    let first = std::fs::read_to_string(&out).unwrap();
    let (ok, text) = lantern(&args);
    assert!(ok && text.contains("reference features from"), "{text}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), first);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["extractor"], "efficientnet-lite0");
    assert_eq!(report["image_count"], 6);
    assert!(report["fd"].as_f64().unwrap().abs() < 1e-2, "{report}");
    assert!(report["fd_ci95"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(report["precision"], 1.0);
    assert_eq!(report["recall"], 1.0);
    let class_score = report["class_score"].as_f64().unwrap();
    assert!((1.0..=6.0).contains(&class_score), "{class_score}");

    let other = root.join("other.json");
    let (ok, text) = lantern(&[
        "--images",
        a.to_str().unwrap(),
        "--reference",
        b.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("FD (efficientnet-lite0) vs 6 reference images"),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&other).unwrap()).unwrap();
    let fd = report["fd"].as_f64().unwrap();
    assert!(fd > 1.0, "other crops are farther: {text}");

    // Precision/recall in a VGG's fc2 space (a narrow VGG16 plan, burn's initial weights).
    let convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
    let config = VggConfig {
        convs: convs
            .iter()
            .map(|&i| (i, if i == 0 { 3 } else { 8 }, 8))
            .collect(),
        fc: [[8 * 49, 16], [16, 16], [16, 10]],
    };
    let vgg = root.join("vgg16.safetensors");
    save_module(
        &Vgg::new(&config, &lantern_models::backend::test_device()),
        &vgg,
        &VGG_LAYOUT,
    )
    .unwrap();
    let (ok, text) = lantern(&[
        "--images",
        a.to_str().unwrap(),
        "--reference",
        a.to_str().unwrap(),
        "--pr-extractor",
        "vgg16",
        "--pr-weights",
        vgg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("(k = 3, vgg16-fc2)"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["extractor"], "efficientnet-lite0");
    assert_eq!(report["pr_extractor"], "vgg16-fc2");
    assert_eq!(
        (report["precision"].as_f64(), report["recall"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    let _ = std::fs::remove_dir_all(root);
}

/// A small CLIP with the real vocabulary (burn's initial weights) in OpenAI's key layout;
/// `vision_heads` 2 of a 160-wide tower are HPSv2's 80-wide heads.
fn small_clip(path: &Path, vision_width: usize, vision_heads: usize) {
    let config = ClipConfig {
        embed_dim: 32,
        image_size: 32,
        patch: 16,
        vision_width,
        vision_layers: 1,
        context: 77,
        vocab: 49_408,
        text_width: 64,
        text_layers: 1,
        vision_heads,
        text_heads: 1,
    };
    let clip = Clip::new(
        &config,
        Activation::QuickGelu,
        &lantern_models::backend::test_device(),
    );
    save_module(&clip, path, &CLIP_LAYOUT).unwrap();
}

#[test]
fn clip_scores_per_image_with_captions() {
    let root = tmp("clip");
    let images = root.join("images");
    crops(&images, 4, 0);
    let captions = root.join("captions.tsv");
    std::fs::write(
        &captions,
        "# file<TAB>caption\nimg0.png\ta cat\nimg1.png\tan espresso\nimg2.png\ta cat\nimg3.png\tcoffee\n",
    )
    .unwrap();
    let weights = root.join("clip-small.safetensors");
    small_clip(&weights, 64, 1);
    let hps = root.join("hps-small.safetensors");
    small_clip(&hps, 160, 2);
    let out = root.join("clip.json");
    let args = [
        "--images",
        images.to_str().unwrap(),
        "--captions",
        captions.to_str().unwrap(),
        "--clip",
        weights.to_str().unwrap(),
        "--hps",
        hps.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, text) = lantern(&args);
    assert!(ok, "{text}");
    assert!(text.contains("CLIP score (clip:clip-small"), "{text}");
    assert!(text.contains("HPSv2 (hpsv2:hps-small"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for key in ["clip", "hps"] {
        let per_image = report[key]["per_image"].as_array().unwrap();
        assert_eq!(per_image.len(), 4);
        assert_eq!(per_image[1]["caption"], "an espresso");
        for p in per_image {
            let s = p["score"].as_f64().unwrap();
            assert!((-1.0..=1.0).contains(&s) && s != 0.0, "{key}: {p}");
        }
    }
    assert_ne!(report["clip"]["mean"], report["hps"]["mean"]);

    // An image without a caption is named.
    std::fs::write(&captions, "img0.png\ta cat\n").unwrap();
    let (ok, text) = lantern(&args);
    assert!(!ok);
    assert!(
        text.contains("no caption for img1.png") && text.contains("captions.tsv"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn bad_inputs_are_named() {
    let root = tmp("bad");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, text) = lantern(&[
        "--images",
        empty.to_str().unwrap(),
        "--reference",
        empty.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("no .png, .jpg or .jpeg files"),
        "{text}"
    );
    crops(&root.join("a"), 3, 0);
    let a = root.join("a");
    let (ok, text) = lantern(&["--images", a.to_str().unwrap()]);
    assert!(!ok && text.contains("--reference"), "{text}");
    let (ok, text) = lantern(&[
        "--images",
        a.to_str().unwrap(),
        "--reference",
        a.to_str().unwrap(),
        "--extractor",
        "inception-v3-fid",
    ]);
    assert!(!ok && text.contains("needs a weights file"), "{text}");
    let (ok, text) = lantern(&["--images", a.to_str().unwrap(), "--extractor", "dinov2"]);
    assert!(!ok && text.contains("efficientnet-lite0"), "{text}");
    let captions = root.join("captions.tsv");
    std::fs::write(&captions, "img0.png\ta cat\n").unwrap();
    let (ok, text) = lantern(&[
        "--images",
        a.to_str().unwrap(),
        "--captions",
        captions.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("--hps"), "{text}");
    let _ = std::fs::remove_dir_all(root);
}
