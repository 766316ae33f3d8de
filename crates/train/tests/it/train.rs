//! Training: image folders load as classes and crop deterministically; each stage trains on a
//! toy set with the fixture tokenizer's shapes, lowers its loss, resumes where it stopped, and
//! writes weights its loader reads back.

use std::path::{Path, PathBuf};

use lantern_decoding::rng::Rng;
use lantern_models::bundle::vq_config;
use lantern_models::{DrafterConfig, Gpt, GptConfig, VqConfig, VqModel};
use lantern_train::data::{ImageSet, Split};
use lantern_train::drafter::DrafterTrainConfig;
use lantern_train::gpt::GptTrainConfig;
use lantern_train::vq::VqTrainConfig;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lantern-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A smooth colour pattern, different per `seed`.
fn write_photo(path: &Path, w: u32, h: u32, seed: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = |k: u32| ((x * (k + seed) + y * (3 + k)) % 256) as u8;
        image::Rgb([v(1), v(2), v(5)])
    });
    img.save(path).unwrap();
}

fn fixture_vq_config() -> VqConfig {
    let dir = lantern_models::fixtures::llamagen_tiny();
    vq_config(&dir.join("vq.json").display().to_string()).unwrap()
}

fn rows(csv: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn photos_and_class_folders_load_and_crop_deterministically() {
    let flat = tmp("flat");
    write_photo(&flat.join("b.png"), 40, 30, 1);
    write_photo(&flat.join("a.png"), 30, 50, 2);
    let set = ImageSet::load(&flat, 24).unwrap();
    assert_eq!(set.classes, ["a", "b"]);
    assert!(set
        .images
        .iter()
        .all(|(_, i)| i.width().min(i.height()) == 24));
    let (c1, l1) = set.crop(16, &mut Rng::new(5));
    let (c2, l2) = set.crop(16, &mut Rng::new(5));
    assert_eq!((c1.clone(), l1), (c2, l2));
    assert_eq!(c1.len(), 3 * 16 * 16);
    assert!(c1.iter().all(|v| (-1.0..=1.0).contains(v)));

    let nested = tmp("nested");
    for (class, n) in [("cat", 2), ("dog", 1)] {
        std::fs::create_dir_all(nested.join(class)).unwrap();
        for i in 0..n {
            write_photo(&nested.join(class).join(format!("{i}.png")), 32, 32, i + 7);
        }
    }
    let set = ImageSet::load(&nested, 32).unwrap();
    assert_eq!(set.classes, ["cat", "dog"]);
    assert_eq!(
        set.images.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        [0, 0, 1]
    );

    let empty = tmp("empty");
    let err = ImageSet::load(&empty, 32).err().unwrap();
    assert!(err.contains("no .png/.jpg images"), "{err}");
}

#[test]
fn three_stages_train_resume_and_reload() {
    let data = tmp("data");
    for i in 0..3 {
        write_photo(&data.join(format!("p{i}.png")), 48, 40, i * 3 + 1);
    }
    let set = ImageSet::load(&data, 32).unwrap();
    let out = tmp("out");
    let vq_cfg = fixture_vq_config();
    let crop = 8u32;

    // VQ: two steps, then resumed to four.
    let mut tc = VqTrainConfig {
        steps: 2,
        batch: 4,
        crop,
        window: crop / 2,
        eval_crop: crop,
        lr: 1e-3,
        beta: 0.25,
        seed: 1,
        checkpoint_every: 1,
        restart_every: 1,
    };
    let split = || Split {
        train: &set,
        heldout: &set,
    };
    lantern_train::vq::train(split(), &vq_cfg, &tc, &out, false).unwrap();
    tc.steps = 4;
    let report = lantern_train::vq::train(split(), &vq_cfg, &tc, &out, false).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("vq.state/step")).unwrap(),
        "4"
    );
    let steps: Vec<f64> = rows(&out.join("vq_loss.csv"))
        .iter()
        .map(|r| r[0])
        .collect();
    assert_eq!(
        steps,
        [0.0, 1.0, 3.0],
        "first run logs 0 and its last step 1; the resumed run 3"
    );
    assert!(report.mse.is_finite() && report.codebook_usage > 0.0);
    let vq = VqModel::load(
        &vq_cfg,
        &out.join("vq.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap();

    // GPT: a one-layer target on the toy tokens; the loss falls.
    let grid = crop as usize / vq_cfg.downsample();
    let mut g = GptConfig::with_shape(1, 2, 32);
    g.vocab_size = vq_cfg.codebook_size;
    g.block_size = grid * grid;
    g.num_classes = set.classes.len();
    let gt = GptTrainConfig {
        steps: 30,
        batch: 4,
        crop,
        lr: 1e-2,
        weight_decay: 0.0,
        seed: 2,
        checkpoint_every: 10,
    };
    let report = lantern_train::gpt::train(split(), &vq, &g, &gt, &out, false).unwrap();
    let losses = rows(&out.join("gpt_loss.csv"));
    assert!(losses.last().unwrap()[1] < losses[0][1], "{losses:?}");
    assert_eq!(
        report.max_prob_histogram.iter().sum::<u64>() as usize,
        report.positions
    );
    assert!(report.f16_max_logit_diff.unwrap() < 0.05, "{report:?}");
    let gpt = Gpt::load(
        &g,
        &out.join("gpt.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap();

    // Drafter: trains against the target's features and reloads.
    let dcfg = DrafterConfig::for_target(&g);
    let dt = DrafterTrainConfig {
        steps: 20,
        batch: 4,
        crop,
        lr: 1e-2,
        p_weight: 0.1,
        noise: 0.2,
        uncond_rate: 0.1,
        seed: 3,
        checkpoint_every: 10,
    };
    let report =
        lantern_train::drafter::train(split(), &vq, &gpt, &dcfg, &dt, &out, false).unwrap();
    let losses = rows(&out.join("drafter_loss.csv"));
    assert!(
        losses.last().unwrap()[2] < losses[0][2],
        "feature loss falls: {losses:?}"
    );
    assert!((0.0..=1.0).contains(&report.top1_agreement) && report.mean_tvd <= 1.0);
    lantern_models::Drafter::load(
        &dcfg,
        &out.join("drafter.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap();
}
