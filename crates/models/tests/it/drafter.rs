//! The EAGLE drafter: LANTERN's key layout, save/load round trip, and cached stepping equal to
//! the full causal forward.

use crate::common::*;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::{Distribution, TensorData};
use lantern_models::checkpoint::list_tensors;
use lantern_models::{Drafter, DrafterConfig, Gpt, GptConfig, Visibility};

fn config() -> DrafterConfig {
    let target = GptConfig::from_json_file(&fixture("gpt_c2i.json")).unwrap();
    DrafterConfig::for_target(&target)
}

#[test]
fn saved_drafter_has_lanterns_key_layout() {
    let cfg = config();
    let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
    let drafter = Drafter::new(&cfg, &lantern_models::backend::test_device()).unwrap();
    let path = std::env::temp_dir().join(format!("drafter-{}.safetensors", std::process::id()));
    drafter.save(&path).unwrap();
    let keys: Vec<(String, Vec<usize>)> = list_tensors(&path)
        .unwrap()
        .into_iter()
        .map(|(k, (s, _))| (k, s))
        .collect();
    let want: Vec<(String, Vec<usize>)> = vec![
        ("embed_tokens.weight", vec![cfg.vocab_size, h]),
        ("fc.bias", vec![h]),
        ("fc.weight", vec![h, 2 * h]),
        ("layers.0.mlp.down_proj.weight", vec![h, f]),
        ("layers.0.mlp.gate_proj.weight", vec![f, h]),
        ("layers.0.mlp.up_proj.weight", vec![f, h]),
        ("layers.0.post_attention_layernorm.weight", vec![h]),
        ("layers.0.self_attn.k_proj.weight", vec![h, h]),
        ("layers.0.self_attn.o_proj.weight", vec![h, h]),
        ("layers.0.self_attn.q_proj.weight", vec![h, h]),
        ("layers.0.self_attn.v_proj.weight", vec![h, h]),
    ]
    .into_iter()
    .map(|(k, s)| (k.to_string(), s))
    .collect();
    assert_eq!(keys, want);

    let reloaded = Drafter::load(&cfg, &path, &lantern_models::backend::test_device()).unwrap();
    let dev = lantern_models::backend::test_device();
    let feats = Tensor::<3>::random([1, 3, h], Distribution::Normal(0.0, 1.0), &dev);
    let toks = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &dev);
    let a: Vec<f32> = drafter
        .forward_full(feats.clone(), toks.clone())
        .into_data()
        .try_into_vec_as()
        .unwrap();
    let b: Vec<f32> = reloaded
        .forward_full(feats, toks)
        .into_data()
        .try_into_vec_as()
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn cached_drafter_steps_equal_full_forward() {
    let cfg = config();
    let dev = lantern_models::backend::test_device();
    let target = Gpt::load(
        &GptConfig::from_json_file(&fixture("gpt_c2i.json")).unwrap(),
        &fixture("gpt_c2i.safetensors"),
        &dev,
    )
    .unwrap();
    let drafter = Drafter::new(&cfg, &dev)
        .unwrap()
        .with_embedding(target.token_embeddings().clone());
    let s = 6;
    let h = cfg.hidden_size;
    let feats = Tensor::<3>::random([2, s, h], Distribution::Normal(0.0, 1.0), &dev);
    let ids: Vec<i64> = (0..2 * s as i64)
        .map(|i| (i * 7) % cfg.vocab_size as i64)
        .collect();
    let toks = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, s]), &dev);
    let full: Vec<f32> = drafter
        .forward_full(feats.clone(), toks.clone())
        .into_data()
        .try_into_vec_as()
        .unwrap();

    // Two elements at once, then one at a time.
    let mut cache = drafter.new_cache(2, 16);
    let mut got = vec![Vec::new(); 2];
    let mut j = 0;
    for n in [2, 1, 1, 1, 1] {
        let out = drafter.extend(
            feats.clone().slice([0..2, j..j + n, 0..h]),
            toks.clone().slice([0..2, j..j + n]),
            &(j..j + n).collect::<Vec<_>>(),
            &Visibility::causal(n),
            &mut cache,
        );
        cache.commit_all();
        let v: Vec<f32> = out.into_data().try_into_vec_as().unwrap();
        for (r, g) in got.iter_mut().enumerate() {
            g.extend_from_slice(&v[r * n * h..(r + 1) * n * h]);
        }
        j += n;
    }
    assert!(max_abs_diff(&got.concat(), &full) < 1e-4);
}
