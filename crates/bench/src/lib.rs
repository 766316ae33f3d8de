//! Shared setup for the benchmarks: model shapes, random trees and a committed prefix.

use lantern_models::gpt::repeated_tokens;
use lantern_models::{Condition, Gpt, GptConfig, KvCache, Visibility};

/// A named model shape to benchmark.
pub struct Shape {
    /// Label used in benchmark ids.
    pub name: &'static str,
    /// The configuration (random weights are used).
    pub config: GptConfig,
}

/// The shapes of the issue: the tiny fixture's (read from its JSON) and GPT-B.
pub fn shapes() -> Vec<Shape> {
    let fixture = lantern_models::fixtures::llamagen_tiny().join("gpt_c2i.json");
    let mut out = Vec::new();
    match GptConfig::from_json_file(&fixture) {
        Ok(config) => out.push(Shape {
            name: "fixture",
            config,
        }),
        Err(e) => eprintln!("skipping the fixture shape: {e}"),
    }
    out.push(Shape {
        name: "GPT-B",
        config: GptConfig::preset("GPT-B").expect("preset"),
    });
    out
}

/// A model of `config` and a cache with `prefix` committed image tokens for `batch` rows.
pub fn model_with_prefix(
    config: &GptConfig,
    batch: usize,
    prefix: usize,
    extra: usize,
) -> (Gpt, KvCache) {
    let device = lantern_models::backend::default_device();
    let gpt = Gpt::new(config, &device).expect("valid config");
    let mut cache = gpt.new_cache(batch, extra);
    let cond = Condition::Classes(vec![0; batch]);
    gpt.prefill(&cond, &mut cache).expect("prefill");
    let tokens: Vec<u32> = (0..prefix)
        .map(|i| (i * 7919 % config.vocab_size) as u32)
        .collect();
    if prefix > 0 {
        let positions: Vec<usize> = (0..prefix).map(|k| gpt.position_of_token(k)).collect();
        gpt.extend(
            repeated_tokens(&tokens, batch, &device),
            &positions,
            &Visibility::causal(prefix),
            &mut cache,
        );
        cache.commit_all();
    }
    (gpt, cache)
}

/// A deterministic random tree of `n` nodes (parents precede children), with depth-based positions.
pub fn random_tree(n: usize, seed: u64) -> (Vec<Option<usize>>, Vec<usize>) {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut parents = Vec::with_capacity(n);
    let mut depth = Vec::with_capacity(n);
    for i in 0..n {
        if i == 0 {
            parents.push(None);
            depth.push(0);
        } else {
            let p = next() % i;
            parents.push(Some(p));
            depth.push(depth[p] + 1);
        }
    }
    (parents, depth)
}
