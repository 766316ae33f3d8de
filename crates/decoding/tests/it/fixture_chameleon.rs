//! Chameleon-family generation on the `chameleon-tiny` fixture: greedy AR under Lumina-mGPT's
//! convention (size tokens, EOL per row, `<eoss>`, separate-sequence CFG) and Anole's (LANTERN's
//! two-way CFG) gives the official code's tokens; greedy SJD equals greedy AR over the same rows;
//! exact SD with LANTERN's drafter is lossless across forced EOLs, and LANTERN over the VQGAN's
//! codebook decides as exact SD does at a zero budget.

use std::path::PathBuf;

use lantern_decoding::embeddings::Tables;
use lantern_decoding::engine::ChameleonModels;
use lantern_decoding::model::{ImageCondition, Models};
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::rng::Rng;
use lantern_decoding::sampling::{Sampling, WarpOrder};
use lantern_decoding::strategy::{generate, Jacobi, JacobiInit, JacobiMethod, Strategy};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::chameleon::layout::{Convention, ImageLayout};
use lantern_models::chameleon::load::load;
use lantern_models::checkpoint::read_tensor_data;
use lantern_models::cpu::{HostChameleon, WeightDtype};
use lantern_models::{Chameleon, KvCache, Visibility};

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

/// Greedy generation on the burn model (the GPU path), the official conventions written out in
/// the test: each branch its own sequence and cache from position 0, an EOL fed after every row,
/// CFG on raw logits, argmax over the image ids. Returns the codes.
fn burn_greedy(model: &Chameleon, layout: &ImageLayout, prompt: &[u32], scale: f32) -> Vec<u32> {
    let (dev, v) = (model.device(), model.config().vocab_size);
    let mut branches = vec![prompt.to_vec()];
    if scale != 1.0 {
        branches.push(layout.uncond_prefix());
    }
    let room = prompt.len() + layout.offset_of(layout.tokens()) + 2;
    let mut caches: Vec<KvCache> = branches.iter().map(|_| model.new_cache(1, room)).collect();
    let mut lens = vec![0usize; branches.len()];
    // Feeds `tokens` to branch b; returns the logits of its last position.
    let mut feed = |b: usize, tokens: &[u32]| -> Vec<f32> {
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let t = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, tokens.len()]), &dev);
        let positions: Vec<usize> = (lens[b]..lens[b] + tokens.len()).collect();
        let out = model.extend(
            t,
            &positions,
            &Visibility::causal(tokens.len()),
            &mut caches[b],
        );
        caches[b].commit_all();
        lens[b] += tokens.len();
        let all: Vec<f32> = out
            .logits
            .into_data()
            .convert::<f32>()
            .try_into_vec_as()
            .unwrap();
        all[(tokens.len() - 1) * v..].to_vec()
    };
    let mut last: Vec<Vec<f32>> = (0..branches.len())
        .map(|b| feed(b, &branches[b].clone()))
        .collect();
    let mut codes = Vec::new();
    for k in 0..layout.tokens() {
        let score = |id: u32| {
            let c = last[0][id as usize];
            last.get(1)
                .map_or(c, |u| u[id as usize] + scale * (c - u[id as usize]))
        };
        let ids = &layout.vocab.image_ids;
        let code = (0..ids.len()).fold(0, |best, c| {
            if score(ids[c]) > score(ids[best]) {
                c
            } else {
                best
            }
        });
        codes.push(code as u32);
        let mut next = vec![ids[code]];
        if layout.eol_after(k) && k + 1 < layout.tokens() {
            next.push(layout.vocab.eol);
        }
        last = (0..branches.len()).map(|b| feed(b, &next)).collect();
    }
    codes
}

#[test]
fn burn_greedy_generation_matches_the_official_outputs_for_both_conventions() {
    let model = load(&dir(), &lantern_models::backend::test_device()).unwrap();
    let host = HostChameleon::from_burn(&model, WeightDtype::F32);
    let scale = generation()["cfg_scale"].as_f64().unwrap() as f32;
    let lumina = layout(&host, Convention::Lumina, "lumina_latent_hw");
    for (s, key) in [(scale, "greedy_cfg"), (1.0, "greedy_nocfg")] {
        let codes = burn_greedy(&model, &lumina, &ids("prompt_ids"), s);
        assert_eq!(lumina.sequence(&codes), ids(key), "{key} on burn");
    }
    let anole = layout(&host, Convention::Anole, "anole_latent_hw");
    let codes = burn_greedy(&model, &anole, &ids("anole_prompt_ids"), scale);
    assert_eq!(
        anole.sequence(&codes),
        ids("anole_greedy_cfg"),
        "Anole on burn"
    );
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
        fresh: Default::default(),
        method: JacobiMethod::Sjd,
        official_compat: false,
    });
    let mut m = ChameleonModels::new(&model, layout, window);
    assert_eq!(run(&mut m, &sjd, &s, &prompt), want);
}

#[test]
fn sjds_official_cfg_keeps_the_prompts_last_token_in_the_unconditional_branch() {
    let model = host();
    let layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    let prompt = ids("prompt_ids");
    let uncond_logits = |quirk: bool| {
        let mut m = ChameleonModels::new(&model, layout.clone(), 1);
        if quirk {
            assert!(m.use_sjd_unconditional_prompt());
        }
        let l = m
            .begin(&ImageCondition::Prompt(prompt.clone()), true)
            .unwrap();
        l.row(0).1.unwrap().to_vec()
    };
    // SJD's uncond row is the prompt masked but for its last token: [eot, boi, h, w] from
    // position 0 (reference/chameleon.md §11), here fed to the model directly.
    let tail = &prompt[prompt.len() - layout.header().len() - 1..];
    assert_eq!(tail[0], model.vocab().eot);
    let mut cache = model.new_cache(1, tail.len());
    let pos: Vec<usize> = (0..tail.len()).collect();
    let full = model.extend(tail, &pos, &Visibility::causal(tail.len()), &mut cache);
    let v = model.config().vocab_size;
    let want: Vec<f32> = layout
        .vocab
        .image_ids
        .iter()
        .map(|&id| full.logits[(tail.len() - 1) * v + id as usize])
        .collect();
    assert_eq!(uncond_logits(true), want);
    assert_ne!(
        uncond_logits(false),
        want,
        "Lumina's own uncond branch starts at boi"
    );
    // Greedy SJD under the option still equals greedy AR under it; Anole has no such convention.
    let s = greedy(generation()["cfg_scale"].as_f64().unwrap() as f32);
    let mut ar = ChameleonModels::new(&model, layout.clone(), 1);
    ar.use_sjd_unconditional_prompt();
    let want = run(&mut ar, &Strategy::Ar, &s, &prompt);
    let sjd = Strategy::Jacobi(Jacobi {
        window: layout.w + 2,
        init: JacobiInit::Random,
        fresh: Default::default(),
        method: JacobiMethod::Sjd,
        official_compat: true,
    });
    let mut m = ChameleonModels::new(&model, layout.clone(), layout.w + 2);
    m.use_sjd_unconditional_prompt();
    assert_eq!(run(&mut m, &sjd, &s, &prompt), want);
    let anole = self::layout(&model, Convention::Anole, "anole_latent_hw");
    assert!(!ChameleonModels::new(&model, anole, 1).use_sjd_unconditional_prompt());
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
        fresh: Default::default(),
        method: JacobiMethod::Sjd,
        official_compat: false,
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

/// A drafter folder in LANTERN's key layout built from the fixture target: its layer 0, its
/// embeddings, and `fc = [I | ½·I]` (token embedding plus half the feature).
fn drafter() -> lantern_models::cpu::HostChameleonDrafter {
    use lantern_models::burn::tensor::TensorData;
    use lantern_models::chameleon::load::load_drafter;
    use lantern_models::checkpoint::write_safetensors;
    // One folder per call: tests run in parallel, and each removes its folder when loaded.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!("cham-dec-drafter-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let hf = read_tensor_data(&dir().join("model.safetensors")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    config["num_hidden_layers"] = 1.into();
    let d = config["hidden_size"].as_u64().unwrap() as usize;
    std::fs::write(tmp.join("config.json"), config.to_string()).unwrap();
    let mut fc = vec![0f32; d * 2 * d];
    for i in 0..d {
        fc[i * 2 * d + i] = 1.0;
        fc[i * 2 * d + d + i] = 0.5;
    }
    let mut tensors: Vec<(String, TensorData)> = hf
        .iter()
        .filter(|(k, _)| k.starts_with("model.layers.0."))
        .map(|(k, t)| (k.trim_start_matches("model.").to_string(), t.clone()))
        .collect();
    tensors.push((
        "embed_tokens.weight".into(),
        hf["model.embed_tokens.weight"].clone(),
    ));
    tensors.push(("fc.weight".into(), TensorData::new(fc, [d, 2 * d])));
    tensors.push(("fc.bias".into(), TensorData::new(vec![0f32; d], [d])));
    write_safetensors(&tmp.join("model.safetensors"), &tensors).unwrap();
    let burn = load_drafter(&tmp, &lantern_models::backend::test_device()).unwrap();
    std::fs::remove_dir_all(&tmp).ok();
    lantern_models::cpu::HostChameleonDrafter::from_burn(&burn, WeightDtype::F32)
}

fn exact_sd(tree: lantern_decoding::strategy::TreeShape) -> Strategy {
    speculative(tree, lantern_decoding::accept::Relax::Exact)
}

/// Speculative decoding on `tree` under `relax`, principled residuals.
fn speculative(
    tree: lantern_decoding::strategy::TreeShape,
    relax: lantern_decoding::accept::Relax,
) -> Strategy {
    Strategy::Speculative(lantern_decoding::strategy::Speculative {
        tree,
        relax,
        residuals: lantern_decoding::accept::Residuals::Principled,
    })
}

#[test]
fn greedy_exact_sd_with_lanterns_drafter_equals_greedy_ar_across_row_ends() {
    use lantern_decoding::strategy::TreeShape;
    let model = host();
    let d = drafter();
    let layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    let prompt = ids("prompt_ids");
    let s = greedy(generation()["cfg_scale"].as_f64().unwrap() as f32);
    let mut ar = ChameleonModels::new(&model, layout.clone(), 1);
    let want = run(&mut ar, &Strategy::Ar, &s, &prompt);
    for tree in [
        TreeShape::chain(layout.w + 1),
        TreeShape::Dynamic {
            top_k: 3,
            depth: 4,
            total_tokens: 10,
        },
    ] {
        let st = exact_sd(tree);
        let mut m = ChameleonModels::new(&model, layout.clone(), st.max_tree())
            .with_drafter(&d, st.max_drafted());
        let cond = ImageCondition::Prompt(prompt.clone());
        let g = generate(&mut m, &st, &s, &Tables::NONE, &cond, &Rng::new(0)).unwrap();
        assert_eq!(g.tokens, want, "{st:?}");
        assert!(g.steps.iter().any(|s| s.drafted > 0), "{st:?} drafted");
    }
}

#[test]
fn sampled_exact_sd_across_forced_eols_reproduces_the_targets_joint_distribution() {
    // As the SJD test: one latent column, so every drafted level crosses a forced EOL; drafts
    // come from the drafter built on the target's layer 0.
    const TRIALS: u64 = 2000;
    let model = host();
    let d = drafter();
    let mut layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    (layout.h, layout.w) = (3, 1);
    let prompt = layout.prompt(&ids("prompt_ids")[1..3]);
    let s = Sampling {
        temperature: 1.0,
        top_k: 2,
        ..greedy(generation()["cfg_scale"].as_f64().unwrap() as f32)
    };
    let want = joint(&model, &layout, &s, &prompt);
    let st = exact_sd(lantern_decoding::strategy::TreeShape::chain(2));
    let mut m =
        ChameleonModels::new(&model, layout, st.max_tree()).with_drafter(&d, st.max_drafted());
    let cond = ImageCondition::Prompt(prompt);
    let mut counts: std::collections::BTreeMap<Vec<u32>, u64> = Default::default();
    let mut accepted = 0;
    for trial in 0..TRIALS {
        let g = generate(
            &mut m,
            &st,
            &s,
            &Tables::NONE,
            &cond,
            &Rng::new(11).fork(trial),
        )
        .unwrap();
        accepted += g.steps.iter().map(|s| s.accepted).sum::<usize>();
        *counts.entry(g.tokens).or_default() += 1;
    }
    assert!(accepted > 0, "some drafts are accepted");
    assert!(counts.keys().all(|k| want.contains_key(k)));
    let c: Vec<u64> = want
        .keys()
        .map(|k| counts.get(k).copied().unwrap_or(0))
        .collect();
    let p: Vec<f64> = want.values().copied().collect();
    let (stat, dof) = crate::common::chi_square(&c, &p);
    let crit = crate::common::chi_square_critical(dof);
    assert!(stat < crit, "chi-square {stat:.1} ≥ {crit:.1} (dof {dof})");
}

#[test]
fn drafter_rows_equal_a_full_drafter_pass_over_the_explicit_sequence() {
    use lantern_decoding::tree::DraftTree;
    use lantern_models::Visibility;
    let model = host();
    let d = drafter();
    let layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    let prompt = ids("prompt_ids");
    let (v, width) = (model.config().vocab_size, model.config().hidden_size);
    let cols = |logits: &[f32], row: usize| -> Vec<f32> {
        let r = &logits[row * v..(row + 1) * v];
        layout
            .vocab
            .image_ids
            .iter()
            .map(|&id| r[id as usize])
            .collect()
    };
    // Full passes: target features of every position of `seq`, then the drafter over the
    // elements (feature j, token j + 1), the last token being `root`'s id.
    let expected = |prefix: &[u32], codes: &[u32], root: u32| -> Vec<f32> {
        let mut body = layout.sequence(codes);
        body.pop();
        let seq = [prefix, &body[..]].concat();
        let n = seq.len();
        let pos: Vec<usize> = (0..n).collect();
        let mut cache = model.new_cache(1, n);
        let hidden = model
            .extend(&seq, &pos, &Visibility::causal(n), &mut cache)
            .hidden;
        let mut next = seq[1..].to_vec();
        next.push(layout.vocab.image_ids[root as usize]);
        let mut dc = d.new_cache(1, n + 1);
        let out = d.extend(&hidden, &next, &pos, &Visibility::causal(n), &mut dc);
        dc.commit_all();
        let last = out[(n - 1) * width..].to_vec();
        let k = codes.len();
        let last = if layout.eol_after(k) && k + 1 < layout.tokens() {
            d.extend(
                &last,
                &[layout.vocab.eol],
                &[n],
                &Visibility::causal(1),
                &mut dc,
            )
        } else {
            last
        };
        cols(&model.logits(&last), 0)
    };
    let s = greedy(generation()["cfg_scale"].as_f64().unwrap() as f32);
    // Commit a row and a bit (crossing one EOL), then draft from a root that ends the next row
    // and from one that does not.
    let codes: Vec<u32> = (0..layout.w as u32 + 1).map(|i| (i * 7 + 3) % 50).collect();
    for extra in [layout.w - 2, 0] {
        let codes: Vec<u32> = codes
            .iter()
            .copied()
            .chain((0..extra as u32).map(|i| i + 9))
            .collect();
        let mut m = ChameleonModels::new(&model, layout.clone(), 1).with_drafter(&d, 8);
        m.begin(&ImageCondition::Prompt(prompt.clone()), s.uses_cfg())
            .unwrap();
        for &c in &codes {
            m.verify(&DraftTree::root(c)).unwrap();
            m.accept(&[0]);
        }
        let root = 17;
        let got = m.draft_root(root).unwrap();
        let (cond, uncond) = got.row(0);
        let want_c = expected(&prompt, &codes, root);
        let want_u = expected(&layout.uncond_prefix(), &codes, root);
        let diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        };
        assert!(
            diff(cond, &want_c) < 1e-4,
            "cond, {} committed",
            codes.len()
        );
        assert!(
            diff(uncond.unwrap(), &want_u) < 1e-4,
            "uncond, {} committed",
            codes.len()
        );
    }
}

/// The latent-neighbour table of the fixture's VQGAN: its raw codebook rows (strategies see VQ
/// codes, so no id offset enters), one row per image code of the target's vocabulary.
fn vqgan_neighbours(model: &HostChameleon, k: usize) -> NeighbourTable {
    use lantern_models::vqgan::{config_from_json_file, load};
    let cfg = config_from_json_file(&dir().join("vqgan.json")).unwrap();
    let vq = load(
        &cfg,
        &dir().join("vqgan.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap();
    let codebook = vq.codebook();
    let [codes, dim] = codebook.dims();
    assert_eq!(
        codes,
        model.vocab().codebook_size(),
        "one code per image id"
    );
    let rows = codebook.into_data().try_into_vec_as::<f32>().unwrap();
    NeighbourTable::build(&rows, codes, dim, k)
}

#[test]
fn lantern_over_the_vqgan_codebook_decides_like_exact_sd_at_zero_budget() {
    use lantern_decoding::accept::Relax;
    use lantern_decoding::strategy::TreeShape;
    let model = host();
    let d = drafter();
    let layout = layout(&model, Convention::Lumina, "lumina_latent_hw");
    let k = layout.vocab.codebook_size() - 1;
    let table = vqgan_neighbours(&model, k);
    let tables = Tables::neighbours(Some(&table));
    // top-k 2 leaves zero-mass codes that a zero budget may still merge: the LANTERN path runs,
    // and must decide as the exact one does. A chain longer than a row crosses EOLs.
    let s = Sampling {
        temperature: 1.0,
        top_k: 2,
        ..greedy(generation()["cfg_scale"].as_f64().unwrap() as f32)
    };
    let cond = ImageCondition::Prompt(ids("prompt_ids"));
    let with = |relax: Relax| speculative(TreeShape::chain(layout.w + 1), relax);
    let exact = with(Relax::Exact);
    let mut m = ChameleonModels::new(&model, layout.clone(), exact.max_tree())
        .with_drafter(&d, exact.max_drafted());
    let mut run = |st: &Strategy, seed: u64| {
        generate(&mut m, st, &s, &tables, &cond, &Rng::new(5).fork(seed)).unwrap()
    };
    let (zero, relaxed) = (
        with(Relax::Tvd { k, delta: 0.0 }),
        with(Relax::Tvd { k, delta: 0.5 }),
    );
    for seed in 0..4 {
        assert_eq!(
            run(&exact, seed).tokens,
            run(&zero, seed).tokens,
            "seed {seed}"
        );
        let g = run(&relaxed, seed);
        assert_eq!(g.tokens.len(), layout.h * layout.w);
        assert!(g.steps.iter().any(|s| s.drafted > 0), "seed {seed} drafted");
    }
}
