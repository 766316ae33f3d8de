//! Chameleon-family generation on the `chameleon-tiny` fixture: greedy AR under Lumina-mGPT's
//! convention (size tokens, EOL per row, `<eoss>`, separate-sequence CFG) and Anole's (LANTERN's
//! two-way CFG) gives the official code's tokens; greedy SJD equals greedy AR over the same rows.

use std::path::PathBuf;

use lantern_decoding::embeddings::Tables;
use lantern_decoding::engine::ChameleonModels;
use lantern_decoding::model::{ImageCondition, Models};
use lantern_decoding::rng::Rng;
use lantern_decoding::sampling::{Sampling, WarpOrder};
use lantern_decoding::strategy::{generate, Jacobi, JacobiInit, JacobiMethod, Strategy};
use lantern_models::chameleon::layout::{Convention, ImageLayout};
use lantern_models::chameleon::load::load;
use lantern_models::checkpoint::read_tensor_data;
use lantern_models::cpu::{HostChameleon, WeightDtype};

fn dir() -> PathBuf {
    lantern_models::fixtures::chameleon_tiny()
}

fn generation() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("generation.json")).unwrap()).unwrap()
}

fn ids(key: &str) -> Vec<u32> {
    let r = read_tensor_data(&dir().join("lm_reference.safetensors")).unwrap();
    r[key]
        .clone()
        .try_into_vec_as::<i64>()
        .unwrap()
        .into_iter()
        .map(|t| t as u32)
        .collect()
}

fn greedy(cfg_scale: f32) -> Sampling {
    Sampling {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        cfg_scale,
        cfg_interval: None,
        warp_order: WarpOrder::TopKThenTopP,
        temperature_rule: Default::default(),
    }
}

fn host() -> HostChameleon {
    let model = load(&dir(), &lantern_models::backend::test_device()).unwrap();
    HostChameleon::from_burn(&model, WeightDtype::F32)
}

fn layout(model: &HostChameleon, convention: Convention, key: &str) -> ImageLayout {
    let hw = &generation()[key];
    ImageLayout {
        convention,
        h: hw[0].as_u64().unwrap() as usize,
        w: hw[1].as_u64().unwrap() as usize,
        vocab: model.vocab().clone(),
    }
}

fn run(models: &mut dyn Models, strategy: &Strategy, s: &Sampling, prompt: &[u32]) -> Vec<u32> {
    let cond = ImageCondition::Prompt(prompt.to_vec());
    generate(models, strategy, s, &Tables::NONE, &cond, &Rng::new(0))
        .unwrap()
        .tokens
}

#[test]
fn lumina_greedy_generation_matches_the_official_processors_with_and_without_cfg() {
    let model = host();
    let layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    let prompt = ids("prompt_ids");
    assert!(
        prompt.ends_with(&layout.header()),
        "the prompt ends with [boi, h, w]"
    );
    let scale = generation()["cfg_scale"].as_f64().unwrap() as f32;
    for (s, key) in [(scale, "greedy_cfg"), (1.0, "greedy_nocfg")] {
        let mut m = ChameleonModels::new(&model, layout.clone(), 1);
        let codes = run(&mut m, &Strategy::Ar, &greedy(s), &prompt);
        assert_eq!(layout.sequence(&codes), ids(key), "{key}");
    }
}

#[test]
fn anole_greedy_generation_matches_lanterns_two_way_cfg() {
    let model = host();
    let layout = layout(&model, Convention::Anole, "anole_latent_hw");
    let prompt = ids("anole_prompt_ids");
    assert!(prompt.ends_with(&layout.header()));
    let scale = generation()["cfg_scale"].as_f64().unwrap() as f32;
    let mut m = ChameleonModels::new(&model, layout.clone(), 1);
    let codes = run(&mut m, &Strategy::Ar, &greedy(scale), &prompt);
    assert_eq!(layout.sequence(&codes), ids("anole_greedy_cfg"));
}

#[test]
fn greedy_sjd_over_rows_that_end_in_eol_equals_greedy_ar() {
    let model = host();
    let layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    let prompt = ids("prompt_ids");
    let s = greedy(generation()["cfg_scale"].as_f64().unwrap() as f32);
    let mut ar = ChameleonModels::new(&model, layout.clone(), 1);
    let want = run(&mut ar, &Strategy::Ar, &s, &prompt);
    // A window longer than a row: every verify crosses at least one forced EOL.
    let window = layout.w + 2;
    let sjd = Strategy::Jacobi(Jacobi {
        window,
        init: JacobiInit::Random,
        method: JacobiMethod::Sjd,
    });
    let mut m = ChameleonModels::new(&model, layout, window);
    assert_eq!(run(&mut m, &sjd, &s, &prompt), want);
}

/// The target's probability of each top-2 sequence of `n` tokens (tokens outside the top 2 of a
/// step have probability 0 under `s`), by exact enumeration: every prefix is one full forward of
/// the explicit token sequence (EOLs written out) on both CFG branches, independent of how
/// [`ChameleonModels`] expands trees.
fn joint(
    model: &HostChameleon,
    layout: &ImageLayout,
    s: &Sampling,
    prompt: &[u32],
) -> std::collections::BTreeMap<Vec<u32>, f64> {
    use lantern_models::Visibility;
    let v = model.config().vocab_size;
    // Image-token logits after `ids`, from one forward over a fresh cache.
    let last = |ids: &[u32]| -> Vec<f32> {
        let n = ids.len();
        let mut cache = model.new_cache(1, n);
        let pos: Vec<usize> = (0..n).collect();
        let out = model.extend(ids, &pos, &Visibility::causal(n), &mut cache);
        let row = &out.logits[(n - 1) * v..n * v];
        layout
            .vocab
            .image_ids
            .iter()
            .map(|&id| row[id as usize])
            .collect()
    };
    let dist = |prefix: &[u32]| -> Vec<f32> {
        let mut body = layout.sequence(prefix);
        body.pop(); // <eoss>
        let cond = last(&[prompt, &body[..]].concat());
        let uncond = last(&[&layout.uncond_prefix()[..], &body[..]].concat());
        s.dist(&cond, Some(&uncond), prefix.len())
    };
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![(Vec::new(), 1.0f64)];
    while let Some((prefix, p)) = stack.pop() {
        if prefix.len() == layout.tokens() {
            out.insert(prefix, p);
            continue;
        }
        for (t, &q) in dist(&prefix).iter().enumerate() {
            if q > 0.0 {
                let mut next = prefix.clone();
                next.push(t as u32);
                stack.push((next, p * q as f64));
            }
        }
    }
    out
}

#[test]
fn sampled_sjd_across_forced_eols_reproduces_the_targets_joint_distribution() {
    // One latent column: a forced EOL follows every image token, inside every Jacobi window.
    // Power: 2000 sequences over 8 outcomes; at the test's α a wrong row (an EOL's logits read
    // as an image token's, or a dropped unconditional step) moves far more than the noise.
    const TRIALS: u64 = 2000;
    let model = host();
    let mut layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    (layout.h, layout.w) = (3, 1);
    let prompt = layout.prompt(&ids("prompt_ids")[1..3]);
    let s = Sampling {
        temperature: 1.0,
        top_k: 2,
        ..greedy(generation()["cfg_scale"].as_f64().unwrap() as f32)
    };
    let want = joint(&model, &layout, &s, &prompt);
    assert_eq!(want.len(), 8);
    let sjd = Strategy::Jacobi(Jacobi {
        window: 3,
        init: JacobiInit::Random,
        method: JacobiMethod::Sjd,
    });
    let mut m = ChameleonModels::new(&model, layout, 3);
    let cond = ImageCondition::Prompt(prompt);
    let mut counts: std::collections::BTreeMap<Vec<u32>, u64> = Default::default();
    for trial in 0..TRIALS {
        let g = generate(
            &mut m,
            &sjd,
            &s,
            &Tables::NONE,
            &cond,
            &Rng::new(9).fork(trial),
        )
        .unwrap();
        *counts.entry(g.tokens).or_default() += 1;
    }
    assert!(
        counts.keys().all(|k| want.contains_key(k)),
        "a sequence outside the top-2 support"
    );
    let c: Vec<u64> = want
        .keys()
        .map(|k| counts.get(k).copied().unwrap_or(0))
        .collect();
    let p: Vec<f64> = want.values().copied().collect();
    let (stat, dof) = crate::common::chi_square(&c, &p);
    let crit = crate::common::chi_square_critical(dof);
    assert!(stat < crit, "chi-square {stat:.1} ≥ {crit:.1} (dof {dof})");
}
