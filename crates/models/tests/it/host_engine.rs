//! The host engine (the CPU fast path) against the official references and against the burn
//! model it is built from: fixture logits and greedy CFG generations, tree forwards with pending
//! levels and compaction, caption padding, grouped-query heads, the drafter, and reduced-precision
//! weights.

use crate::common::*;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::{Distribution, TensorData};
use lantern_models::cpu::{HostCondition, HostDrafter, HostGpt, HostKvCache, WeightDtype};
use lantern_models::gpt::repeated_tokens;
use lantern_models::{Condition, Drafter, DrafterConfig, Gpt, GptConfig, KvCache, Visibility};

fn load(kind: &str) -> Gpt {
    let cfg = GptConfig::from_json_file(&fixture(&format!("gpt_{kind}.json"))).unwrap();
    Gpt::load(
        &cfg,
        &fixture(&format!("gpt_{kind}.safetensors")),
        &lantern_models::backend::test_device(),
    )
    .unwrap()
}

fn vec3(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_into_vec_as().unwrap()
}

/// The t2i reference caption as a host condition and as a burn one.
fn caption(r: &std::collections::BTreeMap<String, TensorData>) -> (HostCondition, Condition) {
    let s = shape(r, "caption");
    let e = f32s(r, "caption");
    let burn = Condition::Captions {
        embeddings: Tensor::from_data(
            TensorData::new(e.clone(), [s[0], s[1], s[2]]),
            &lantern_models::backend::test_device(),
        ),
        valid: None,
    };
    let host = HostCondition::Captions {
        embeddings: e,
        tokens: s[1],
        dim: s[2],
        valid: None,
    };
    (host, burn)
}

/// Logits of `[cls; tokens]` through prefill + one causal extend: positions `T−1 ..`.
fn host_sequence_logits(gpt: &HostGpt, cond: &HostCondition, tokens: &[u32]) -> Vec<f32> {
    let mut cache = gpt.new_cache(cond.batch(), 0);
    let first = gpt.prefill(cond, &mut cache).unwrap();
    assert_eq!(cond.batch(), 1, "one row keeps the layout simple");
    let positions: Vec<usize> = (0..tokens.len())
        .map(|k| gpt.position_of_token(k))
        .collect();
    let rest = gpt.extend(
        tokens,
        &positions,
        &Visibility::causal(tokens.len()),
        &mut cache,
    );
    [first.logits, rest.logits].concat()
}

#[test]
fn host_logits_match_the_official_reference() {
    let c2i = reference("gpt_c2i_reference.safetensors");
    let t2i = reference("gpt_t2i_reference.safetensors");
    for (kind, r) in [("c2i", &c2i), ("t2i", &t2i)] {
        let gpt = HostGpt::from_burn(&load(kind), WeightDtype::F32);
        let (v, t) = (gpt.config().vocab_size, gpt.config().cls_token_num);
        let ts = shape(r, "tokens");
        let tokens: Vec<u32> = i64s(r, "tokens").iter().map(|&x| x as u32).collect();
        let want = f32s(r, "logits");
        let rows = ts[0];
        let per = want.len() / rows;
        for row in 0..rows {
            let cond = match kind {
                "c2i" => HostCondition::Classes(vec![i64s(r, "labels")[row] as usize]),
                _ => caption(r).0,
            };
            let got = host_sequence_logits(&gpt, &cond, &tokens[row * ts[1]..(row + 1) * ts[1]]);
            let want_row = &want[row * per + (t - 1) * v..(row + 1) * per];
            let diff = max_abs_diff(&got, want_row);
            assert!(diff < 1e-4, "{kind} row {row}: max |Δlogit| = {diff}");
        }
    }
}

/// Greedy CFG generation through the host cache, as the official `generate()` with top_k = 1.
fn host_greedy(gpt: &HostGpt, cond: &HostCondition, scale: f32) -> Vec<i64> {
    let b = cond.batch();
    let guided = scale > 1.0;
    let rows_cond = if guided {
        gpt.cfg_condition(cond).unwrap()
    } else {
        cond.clone()
    };
    let rows = rows_cond.batch();
    let v = gpt.config().vocab_size;
    let n = gpt.config().block_size;
    let mut cache: HostKvCache = gpt.new_cache(rows, 0);
    let mut logits = gpt.prefill(&rows_cond, &mut cache).unwrap().logits;
    let mut out = vec![Vec::new(); b];
    for k in 0..n {
        let next: Vec<u32> = (0..b)
            .map(|i| {
                let c = &logits[i * v..(i + 1) * v];
                let row: Vec<f32> = if guided {
                    let u = &logits[(b + i) * v..(b + i + 1) * v];
                    c.iter().zip(u).map(|(c, u)| u + (c - u) * scale).collect()
                } else {
                    c.to_vec()
                };
                (0..v).fold(0, |best, j| if row[j] > row[best] { j } else { best }) as u32
            })
            .collect();
        for (o, &t) in out.iter_mut().zip(&next) {
            o.push(t as i64);
        }
        if k + 1 == n {
            break;
        }
        // The host extend feeds the same tokens to every row: decode one image at a time.
        assert!(next.iter().all(|&t| t == next[0]) || b == 1);
        logits = gpt
            .extend(
                &[next[0]],
                &[gpt.position_of_token(k)],
                &Visibility::causal(1),
                &mut cache,
            )
            .logits;
        cache.commit_all();
    }
    out.concat()
}

#[test]
fn host_greedy_cfg_generations_match_the_official_reference() {
    let c2i = reference("gpt_c2i_reference.safetensors");
    let gpt = HostGpt::from_burn(&load("c2i"), WeightDtype::F32);
    let n = gpt.config().block_size;
    for (key, scale) in [("greedy_cfg1", 1.0), ("greedy_cfg4", 4.0)] {
        let want = i64s(&c2i, key);
        for (i, class) in [3usize, 5].into_iter().enumerate() {
            let got = host_greedy(&gpt, &HostCondition::Classes(vec![class]), scale);
            assert_eq!(got, want[i * n..(i + 1) * n], "{key} class {class}");
        }
    }
    let t2i = reference("gpt_t2i_reference.safetensors");
    let gpt = HostGpt::from_burn(&load("t2i"), WeightDtype::F32);
    assert_eq!(
        host_greedy(&gpt, &caption(&t2i).0, 3.0),
        i64s(&t2i, "greedy_cfg3")
    );
}

/// A host forward and a burn forward of the same tree after the same committed prefix.
struct Pair<'a> {
    burn: &'a Gpt,
    host: &'a HostGpt,
    bc: KvCache,
    hc: HostKvCache,
}

impl Pair<'_> {
    fn extend(&mut self, tokens: &[u32], positions: &[usize], vis: &Visibility) -> f32 {
        let rows = self.bc.batch();
        let b = self.burn.extend(
            repeated_tokens(tokens, rows, &self.burn.device()),
            positions,
            vis,
            &mut self.bc,
        );
        let h = self.host.extend(tokens, positions, vis, &mut self.hc);
        max_abs_diff(&vec3(b.logits), &h.logits).max(max_abs_diff(&vec3(b.hidden), &h.hidden))
    }

    fn commit(&mut self, keep: &[usize]) {
        self.bc.commit(keep);
        self.hc.commit(keep);
    }
}

/// Random trees with a pending level, partial commits and further decoding: host = burn.
fn check_trees(burn: &Gpt, host: &HostGpt, cond: (Condition, HostCondition), seed: u64) {
    let mut rng = TestRng(seed);
    let cfg = burn.config().clone();
    let v = cfg.vocab_size;
    let rows = cond.0.batch();
    let mut p = Pair {
        burn,
        host,
        bc: burn.new_cache(rows, 32),
        hc: host.new_cache(rows, 32),
    };
    let a = vec3(burn.prefill(&cond.0, &mut p.bc).unwrap().logits);
    let b = host.prefill(&cond.1, &mut p.hc).unwrap().logits;
    assert!(max_abs_diff(&a, &b) < 1e-4, "prefill");
    let mut committed = 0;
    while committed + 6 < cfg.block_size {
        let n = 1 + rng.below(5);
        let parents: Vec<Option<usize>> = (0..n)
            .map(|i| (i > 0 && rng.below(4) > 0).then(|| rng.below(i)))
            .collect();
        let tokens: Vec<u32> = (0..n).map(|_| rng.below(v) as u32).collect();
        let depth = |mut i: usize| {
            let mut d = 0;
            while let Some(q) = parents[i] {
                d += 1;
                i = q;
            }
            d
        };
        let pos: Vec<usize> = (0..n)
            .map(|i| burn.position_of_token(committed + depth(i)))
            .collect();
        let diff = p.extend(&tokens, &pos, &Visibility::tree(&parents));
        assert!(diff < 1e-4, "tree of {n}: |Δ| = {diff}");
        // A second level under node 0 that sees the pending level.
        let diff = p.extend(
            &[rng.below(v) as u32],
            &[burn.position_of_token(committed + 1)],
            &Visibility::tree_after(n, &[vec![0]], &[None]),
        );
        assert!(diff < 1e-4, "pending level: |Δ| = {diff}");
        let keep = if rng.below(2) == 0 {
            vec![0]
        } else {
            vec![0, n]
        };
        p.commit(&keep);
        committed += keep.len();
    }
}

#[test]
fn host_tree_forwards_equal_burn_with_cfg_rows() {
    let gpt = load("c2i");
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    let burn_cond = gpt.cfg_condition(&Condition::Classes(vec![3])).unwrap();
    let host_cond = host
        .cfg_condition(&HostCondition::Classes(vec![3]))
        .unwrap();
    check_trees(&gpt, &host, (burn_cond, host_cond), 5);
}

#[test]
fn host_equals_burn_with_caption_padding() {
    let gpt = load("t2i");
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    let t2i = reference("gpt_t2i_reference.safetensors");
    let (hc, bc) = caption(&t2i);
    let t = gpt.config().cls_token_num;
    // Left padding as sample_t2i.py makes it: the first 100 slots are padding.
    let valid: Vec<bool> = (0..t).map(|s| s >= 100).collect();
    let bc = match gpt.cfg_condition(&bc).unwrap() {
        Condition::Captions { embeddings, .. } => Condition::Captions {
            embeddings,
            valid: Some(vec![valid.clone(); 2]),
        },
        _ => unreachable!(),
    };
    let hc = match host.cfg_condition(&hc).unwrap() {
        HostCondition::Captions {
            embeddings,
            tokens,
            dim,
            ..
        } => HostCondition::Captions {
            embeddings,
            tokens,
            dim,
            valid: Some(vec![valid; 2]),
        },
        _ => unreachable!(),
    };
    check_trees(&gpt, &host, (bc, hc), 9);
}

#[test]
fn host_equals_burn_with_grouped_query_heads() {
    let mut cfg = GptConfig::with_shape(2, 8, 64);
    cfg.n_kv_head = Some(2);
    cfg.vocab_size = 300;
    cfg.block_size = 36;
    cfg.num_classes = 5;
    cfg.multiple_of = 32;
    let gpt = Gpt::new(&cfg, &lantern_models::backend::test_device()).unwrap();
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    check_trees(
        &gpt,
        &host,
        (Condition::Classes(vec![1]), HostCondition::Classes(vec![1])),
        13,
    );
}

#[test]
fn host_drafter_equals_burn_on_tree_levels() {
    let target = load("c2i");
    let cfg = DrafterConfig::for_target(target.config());
    let dev = lantern_models::backend::test_device();
    dev.seed(3);
    let drafter = Drafter::new(&cfg, &dev)
        .unwrap()
        .with_embedding(target.token_embeddings().clone());
    let host = HostDrafter::from_burn(&drafter, WeightDtype::F32);
    let h = cfg.hidden_size;
    let mut bc = drafter.new_cache(2, 32);
    let mut hc = host.new_cache(2, 32);
    // Catch-up (causal), then a level of two children of the last element, then a level under
    // them (seeing their pending ancestors), then commit and catch up again.
    let steps: Vec<(Vec<u32>, Vec<usize>, Visibility, bool)> = vec![
        (vec![4, 9, 1], vec![0, 1, 2], Visibility::causal(3), true),
        (
            vec![7, 8],
            vec![3, 3],
            Visibility::tree(&[None, None]),
            false,
        ),
        (
            vec![2, 3, 5],
            vec![4, 4, 4],
            Visibility::tree_after(2, &[vec![0], vec![0], vec![1]], &[None, None, None]),
            false,
        ),
    ];
    for (round, (tokens, pos, vis, commit)) in steps.into_iter().enumerate() {
        let n = tokens.len();
        let feats = Tensor::<3>::random([2, n, h], Distribution::Normal(0.0, 1.0), &dev);
        let a = vec3(drafter.extend(
            feats.clone(),
            repeated_tokens(&tokens, 2, &dev),
            &pos,
            &vis,
            &mut bc,
        ));
        let b = host.extend(&vec3(feats), &tokens, &pos, &vis, &mut hc);
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-4, "round {round}: |Δ| = {diff}");
        if commit {
            bc.commit_all();
            hc.commit_all();
        }
    }
}

#[test]
fn reduced_precision_weights_change_logits_by_a_bounded_amount() {
    let r = reference("gpt_c2i_reference.safetensors");
    let gpt = load("c2i");
    let tokens: Vec<u32> = i64s(&r, "tokens").iter().map(|&x| x as u32).collect();
    let n = shape(&r, "tokens")[1];
    let cond = HostCondition::Classes(vec![i64s(&r, "labels")[0] as usize]);
    let f32_logits = host_sequence_logits(
        &HostGpt::from_burn(&gpt, WeightDtype::F32),
        &cond,
        &tokens[..n],
    );
    for dtype in [WeightDtype::Bf16, WeightDtype::F16] {
        let host = HostGpt::from_burn(&gpt, dtype);
        assert_eq!(host.dtype(), dtype);
        let got = host_sequence_logits(&host, &cond, &tokens[..n]);
        let diff = max_abs_diff(&got, &f32_logits);
        // bf16 keeps 8 mantissa bits (relative step 2^-8), f16 11: on these unit-scale random
        // weights the logit change stays well inside a few steps but is never zero.
        let bound = match dtype {
            WeightDtype::Bf16 => 0.1,
            _ => 0.02,
        };
        println!("{}: max |Δlogit| vs f32 = {diff:.2e}", dtype.name());
        assert!(diff > 0.0 && diff < bound, "{dtype:?}: {diff}");
    }
}
