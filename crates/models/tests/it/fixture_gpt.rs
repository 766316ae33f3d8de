//! The GPT reproduces the official LlamaGen code on the tiny fixtures: full-forward logits and
//! greedy CFG generations through the KV-cache decode path, from `.pt` and `.safetensors`.

use crate::common::*;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::gpt::repeated_tokens;
use lantern_models::{Condition, Gpt, GptConfig, Visibility};

/// Classes of the fixture's greedy generations (fixture README: `generate()` for classes [3, 5]).
const GREEDY_CLASSES: [usize; 2] = [3, 5];

fn load(kind: &str, ext: &str) -> Gpt {
    let cfg = GptConfig::from_json_file(&fixture(&format!("gpt_{kind}.json"))).unwrap();
    Gpt::load(
        &cfg,
        &fixture(&format!("gpt_{kind}.{ext}")),
        &lantern_models::backend::test_device(),
    )
    .unwrap()
}

fn tokens_tensor(values: Vec<i64>, shape: [usize; 2]) -> Tensor<2, Int> {
    Tensor::from_data(
        TensorData::new(values, shape),
        &lantern_models::backend::test_device(),
    )
}

/// Greedy CFG generation through prefill + one-token KV-cache steps, as `generate()` does.
fn greedy(gpt: &Gpt, cond: Condition, cfg_scale: f32) -> Vec<Vec<i64>> {
    let b = cond.batch();
    let guided = cfg_scale > 1.0;
    let cond = if guided {
        gpt.cfg_condition(&cond).unwrap()
    } else {
        cond
    };
    let rows = cond.batch();
    let mut cache = gpt.new_cache(rows, 0);
    let mut logits = gpt.prefill(&cond, &mut cache).unwrap().logits;
    let mut out = vec![Vec::new(); b];
    for k in 0..gpt.config().block_size {
        let v = logits.dims()[2];
        let l: Vec<f32> = logits.into_data().try_into_vec_as().unwrap();
        let next: Vec<i64> = (0..b)
            .map(|i| {
                let c = &l[i * v..(i + 1) * v];
                let row: Vec<f32> = if guided {
                    let u = &l[(b + i) * v..(b + i + 1) * v];
                    c.iter()
                        .zip(u)
                        .map(|(c, u)| u + (c - u) * cfg_scale)
                        .collect()
                } else {
                    c.to_vec()
                };
                let mut best = 0;
                for (j, x) in row.iter().enumerate() {
                    if *x > row[best] {
                        best = j;
                    }
                }
                best as i64
            })
            .collect();
        for (o, t) in out.iter_mut().zip(&next) {
            o.push(*t);
        }
        if k + 1 == gpt.config().block_size {
            break;
        }
        let toks: Vec<i64> = (0..rows).map(|r| next[r % b]).collect();
        let step = gpt.extend(
            tokens_tensor(toks, [rows, 1]),
            &[gpt.position_of_token(k)],
            &Visibility::causal(1),
            &mut cache,
        );
        cache.commit_all();
        logits = step.logits;
    }
    out
}

#[test]
fn c2i_full_forward_logits_match_reference() {
    let r = reference("gpt_c2i_reference.safetensors");
    let labels: Vec<usize> = i64s(&r, "labels").iter().map(|&l| l as usize).collect();
    let tshape = shape(&r, "tokens");
    for ext in ["pt", "safetensors"] {
        let gpt = load("c2i", ext);
        let tokens = tokens_tensor(i64s(&r, "tokens"), [tshape[0], tshape[1]]);
        let out = gpt
            .forward_full(&Condition::Classes(labels.clone()), tokens)
            .unwrap();
        assert_eq!(out.logits.dims().to_vec(), shape(&r, "logits"));
        let got: Vec<f32> = out.logits.into_data().try_into_vec_as().unwrap();
        let diff = max_abs_diff(&got, &f32s(&r, "logits"));
        assert!(diff < 1e-4, "{ext}: max |Δlogit| = {diff}");
    }
}

#[test]
fn t2i_full_forward_logits_match_reference() {
    let r = reference("gpt_t2i_reference.safetensors");
    let cshape = shape(&r, "caption");
    let tshape = shape(&r, "tokens");
    for ext in ["pt", "safetensors"] {
        let gpt = load("t2i", ext);
        let caption = Tensor::<3>::from_data(
            TensorData::new(f32s(&r, "caption"), [cshape[0], cshape[1], cshape[2]]),
            &lantern_models::backend::test_device(),
        );
        let cond = Condition::Captions {
            embeddings: caption,
            valid: None,
        };
        let tokens = tokens_tensor(i64s(&r, "tokens"), [tshape[0], tshape[1]]);
        let out = gpt.forward_full(&cond, tokens).unwrap();
        assert_eq!(out.logits.dims().to_vec(), shape(&r, "logits"));
        let got: Vec<f32> = out.logits.into_data().try_into_vec_as().unwrap();
        let diff = max_abs_diff(&got, &f32s(&r, "logits"));
        assert!(diff < 1e-4, "{ext}: max |Δlogit| = {diff}");
    }
}

#[test]
fn c2i_greedy_cfg_generations_match_reference() {
    let r = reference("gpt_c2i_reference.safetensors");
    for ext in ["pt", "safetensors"] {
        let gpt = load("c2i", ext);
        for (key, scale) in [("greedy_cfg1", 1.0), ("greedy_cfg4", 4.0)] {
            let want = i64s(&r, key);
            let got = greedy(&gpt, Condition::Classes(GREEDY_CLASSES.to_vec()), scale);
            assert_eq!(got.concat(), want, "{ext} {key}");
        }
    }
}

#[test]
fn t2i_greedy_cfg3_generation_matches_reference() {
    let r = reference("gpt_t2i_reference.safetensors");
    let cshape = shape(&r, "caption");
    for ext in ["pt", "safetensors"] {
        let gpt = load("t2i", ext);
        let caption = Tensor::<3>::from_data(
            TensorData::new(f32s(&r, "caption"), [cshape[0], cshape[1], cshape[2]]),
            &lantern_models::backend::test_device(),
        );
        let cond = Condition::Captions {
            embeddings: caption,
            valid: None,
        };
        let got = greedy(&gpt, cond, 3.0);
        assert_eq!(got.concat(), i64s(&r, "greedy_cfg3"), "{ext}");
    }
}

#[test]
fn repeated_tokens_builds_cfg_rows() {
    let t = repeated_tokens(&[7, 9], 2, &lantern_models::backend::test_device());
    let v: Vec<i64> = t.into_data().try_into_vec_as().unwrap();
    assert_eq!(v, vec![7, 9, 7, 9]);
}
