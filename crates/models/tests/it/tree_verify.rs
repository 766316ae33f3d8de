//! Tree verification equals sequential decoding: logits at every tree node equal those of
//! decoding its root-to-node path one token at a time, and after compacting an accepted path,
//! decoding continues exactly as if the path had been decoded plainly.

use crate::common::*;
use lantern_models::burn::prelude::*;
use lantern_models::gpt::repeated_tokens;
use lantern_models::{Condition, Gpt, GptConfig, KvCache, Visibility};

fn load_c2i() -> Gpt {
    let cfg = GptConfig::from_json_file(&fixture("gpt_c2i.json")).unwrap();
    Gpt::load(
        &cfg,
        &fixture("gpt_c2i.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap()
}

fn host(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_into_vec_as().unwrap()
}

/// Prefill [cond; uncond] for class 3 and decode `prefix` tokens one at a time.
fn start(gpt: &Gpt, prefix: &[u32], extra: usize) -> KvCache {
    let cond = gpt.cfg_condition(&Condition::Classes(vec![3])).unwrap();
    let mut cache = gpt.new_cache(2, extra);
    gpt.prefill(&cond, &mut cache).unwrap();
    for (k, &t) in prefix.iter().enumerate() {
        step(gpt, &mut cache, t, k);
    }
    cache
}

/// Decodes one token at image index `k` and commits it; returns its logits `[2, V]` flattened.
fn step(gpt: &Gpt, cache: &mut KvCache, token: u32, k: usize) -> Vec<f32> {
    let dev = gpt.device();
    let out = gpt.extend(
        repeated_tokens(&[token], 2, &dev),
        &[gpt.position_of_token(k)],
        &Visibility::causal(1),
        cache,
    );
    cache.commit_all();
    host(out.logits)
}

/// Node `i`'s path from the tree root level down to itself.
fn path(parents: &[Option<usize>], mut i: usize) -> Vec<usize> {
    let mut p = vec![i];
    while let Some(q) = parents[i] {
        p.push(q);
        i = q;
    }
    p.reverse();
    p
}

#[test]
fn tree_logits_equal_sequential_decoding_and_compaction_continues_exactly() {
    let gpt = load_c2i();
    let cfg = gpt.config().clone();
    let v = cfg.vocab_size;
    let mut rng = TestRng(7);
    let prefix_len = (cfg.block_size / 4).max(1);
    let prefix: Vec<u32> = (0..prefix_len).map(|_| rng.below(v) as u32).collect();
    let n = 12.min(cfg.block_size - prefix_len - 1).max(2);
    for trial in 0..3 {
        // Random tree in topological order: node 0 is a root; others hang under earlier nodes
        // or start a new root.
        let parents: Vec<Option<usize>> = (0..n)
            .map(|i| {
                if i == 0 || rng.below(5) == 0 {
                    None
                } else {
                    Some(rng.below(i))
                }
            })
            .collect();
        let tokens: Vec<u32> = (0..n).map(|_| rng.below(v) as u32).collect();
        let depth = |i: usize| path(&parents, i).len() - 1;
        let positions: Vec<usize> = (0..n)
            .map(|i| gpt.position_of_token(prefix_len + depth(i)))
            .collect();

        let mut tree_cache = start(&gpt, &prefix, n + 8);
        let out = gpt.extend(
            repeated_tokens(&tokens, 2, &gpt.device()),
            &positions,
            &Visibility::tree(&parents),
            &mut tree_cache,
        );
        let tree_logits = host(out.logits); // [2, n, V]

        let mut seq_cache = start(&gpt, &prefix, n + 8);
        for i in 0..n {
            let mut last = Vec::new();
            for (d, &node) in path(&parents, i).iter().enumerate() {
                last = step(&gpt, &mut seq_cache, tokens[node], prefix_len + d);
            }
            seq_cache.truncate(cfg.cls_token_num + prefix_len);
            for row in 0..2 {
                let tree_row = &tree_logits[(row * n + i) * v..(row * n + i + 1) * v];
                let seq_row = &last[row * v..(row + 1) * v];
                let diff = max_abs_diff(tree_row, seq_row);
                assert!(
                    diff < 1e-4,
                    "trial {trial}, node {i}, row {row}: |Δ| = {diff}"
                );
            }
        }

        // Accept the deepest path, compact, and keep decoding two more tokens.
        let leaf = (0..n).max_by_key(|&i| depth(i)).unwrap();
        let accepted = path(&parents, leaf);
        tree_cache.commit(&accepted);
        let mut plain = start(&gpt, &prefix, n + 8);
        for (d, &node) in accepted.iter().enumerate() {
            step(&gpt, &mut plain, tokens[node], prefix_len + d);
        }
        assert_eq!(tree_cache.len(), plain.len());
        for extra in 0..2 {
            let k = prefix_len + accepted.len() + extra;
            if k >= cfg.block_size {
                break;
            }
            let t = rng.below(v) as u32;
            let a = step(&gpt, &mut tree_cache, t, k);
            let b = step(&gpt, &mut plain, t, k);
            let diff = max_abs_diff(&a, &b);
            assert!(diff < 1e-4, "trial {trial}: after compaction |Δ| = {diff}");
        }
    }
}

#[test]
fn chain_of_pending_levels_equals_one_tree_forward() {
    // Two forwards (a level, then its children seeing the pending level) give the same logits
    // as one forward over the whole tree, which is how the drafter expands trees level by level.
    let gpt = load_c2i();
    let v = gpt.config().vocab_size;
    let prefix = [1u32, 2];
    let tokens = [5u32, 6, 7, 8];
    let parents = [None, None, Some(0), Some(1)];
    let pos = |d: usize| gpt.position_of_token(prefix.len() + d);
    let dev = gpt.device();

    let mut one = start(&gpt, &prefix, 16);
    let all = host(
        gpt.extend(
            repeated_tokens(&tokens, 2, &dev),
            &[pos(0), pos(0), pos(1), pos(1)],
            &Visibility::tree(&parents),
            &mut one,
        )
        .logits,
    );

    let mut two = start(&gpt, &prefix, 16);
    gpt.extend(
        repeated_tokens(&tokens[..2], 2, &dev),
        &[pos(0), pos(0)],
        &Visibility::tree(&parents[..2]),
        &mut two,
    );
    let second = host(
        gpt.extend(
            repeated_tokens(&tokens[2..], 2, &dev),
            &[pos(1), pos(1)],
            &Visibility::tree_after(2, &[vec![0], vec![1]], &[None, None]),
            &mut two,
        )
        .logits,
    );
    for row in 0..2 {
        for i in 0..2 {
            let a = &all[(row * 4 + 2 + i) * v..(row * 4 + 3 + i) * v];
            let b = &second[(row * 2 + i) * v..(row * 2 + i + 1) * v];
            assert!(max_abs_diff(a, b) < 1e-4);
        }
    }
}

#[test]
fn cached_decoding_equals_full_forward() {
    let gpt = load_c2i();
    let cfg = gpt.config().clone();
    let v = cfg.vocab_size;
    let mut rng = TestRng(11);
    let tokens: Vec<u32> = (0..cfg.block_size - 1)
        .map(|_| rng.below(v) as u32)
        .collect();
    let full = gpt
        .forward_full(
            &Condition::Classes(vec![3]),
            repeated_tokens(&tokens, 1, &gpt.device()),
        )
        .unwrap();
    let full = host(full.logits);
    let mut cache = gpt.new_cache(1, 0);
    gpt.prefill(&Condition::Classes(vec![3]), &mut cache)
        .unwrap();
    for (k, &t) in tokens.iter().enumerate() {
        let out = gpt.extend(
            repeated_tokens(&[t], 1, &gpt.device()),
            &[gpt.position_of_token(k)],
            &Visibility::causal(1),
            &mut cache,
        );
        cache.commit_all();
        let row = &full[(cfg.cls_token_num + k) * v..(cfg.cls_token_num + k + 1) * v];
        assert!(max_abs_diff(&host(out.logits), row) < 1e-4, "token {k}");
    }
}
