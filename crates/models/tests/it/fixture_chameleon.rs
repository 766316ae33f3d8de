//! The Chameleon decoder against transformers' outputs on the `chameleon-tiny` fixture: the HF
//! and Lumina-mGPT weight layouts, pre-norm and Swin-norm blocks, full and KV-cached forwards.

use std::path::{Path, PathBuf};

use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::chameleon::load::{load, load_files};
use lantern_models::checkpoint::read_tensor_data;
use lantern_models::cpu::{HostChameleon, WeightDtype};
use lantern_models::{Chameleon, ChameleonConfig, Visibility};

use super::common::{f32s, i64s};

/// Largest absolute logit difference the fixture's README allows in f32.
const TOLERANCE: f32 = 1e-4;

fn dir() -> PathBuf {
    let d = lantern_models::fixtures::chameleon_tiny();
    assert!(
        d.join("config.json").is_file(),
        "fixtures not found at {} (LANTERN_FIXTURES names the folder holding chameleon-tiny/)",
        d.display()
    );
    d
}

fn device() -> Device {
    lantern_models::backend::test_device()
}

/// `(ids, logits)` of a reference sequence: ids `[L]`, logits `[L·V]`.
fn reference(ids: &str, logits: &str) -> (Vec<u32>, Vec<f32>) {
    let r = read_tensor_data(&dir().join("lm_reference.safetensors")).unwrap();
    let ids = i64s(&r, ids).into_iter().map(|t| t as u32).collect();
    (ids, f32s(&r, logits))
}

fn tokens(ids: &[u32], dev: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, ids.len()]), dev)
}

fn host(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_into_vec_as().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn full_logits(model: &Chameleon, ids: &[u32]) -> Vec<f32> {
    host(model.forward_full(tokens(ids, &model.device())).logits)
}

#[test]
fn hf_layout_logits_match_transformers_on_both_sequence_formats() {
    let model = load(&dir(), &device()).unwrap();
    for (ids, logits) in [("input_ids", "logits"), ("input_ids_anole", "logits_anole")] {
        let (ids, want) = reference(ids, logits);
        let d = max_diff(&full_logits(&model, &ids), &want);
        assert!(d < TOLERANCE, "{logits}: max |Δ| {d}");
    }
}

#[test]
fn lumina_layout_with_grouped_qk_norm_loads_to_the_same_logits() {
    let d = dir();
    let model = load_files(
        &d.join("config.json"),
        &[d.join("model_lumina_layout.safetensors")],
        &device(),
    )
    .unwrap();
    let (ids, want) = reference("input_ids", "logits");
    let diff = max_diff(&full_logits(&model, &ids), &want);
    assert!(diff < TOLERANCE, "max |Δ| {diff}");
}

#[test]
fn swin_norm_blocks_match_transformers() {
    let model = load(&dir().join("swin"), &device()).unwrap();
    assert!(model.config().swin_norm, "the swin fixture sets swin_norm");
    let (ids, want) = reference("input_ids", "logits_swin");
    let d = max_diff(&full_logits(&model, &ids), &want);
    assert!(d < TOLERANCE, "max |Δ| {d}");
}

#[test]
fn cached_prefill_and_single_token_steps_equal_the_full_forward() {
    let model = load(&dir(), &device()).unwrap();
    let (ids, want) = reference("input_ids", "logits");
    let v = model.config().vocab_size;
    let split = ids.len() / 2;
    let mut cache = model.new_cache(1, ids.len());
    let mut got = host(
        model
            .extend(
                tokens(&ids[..split], &model.device()),
                &(0..split).collect::<Vec<_>>(),
                &Visibility::causal(split),
                &mut cache,
            )
            .logits,
    );
    cache.commit_all();
    for (p, &t) in ids.iter().enumerate().skip(split) {
        got.extend(host(
            model
                .extend(
                    tokens(&[t], &model.device()),
                    &[p],
                    &Visibility::causal(1),
                    &mut cache,
                )
                .logits,
        ));
        cache.commit_all();
    }
    assert_eq!(got.len(), ids.len() * v);
    let d = max_diff(&got, &want);
    assert!(d < TOLERANCE, "max |Δ| {d}");
}

#[test]
fn vocabulary_ids_come_from_the_names() {
    let (_, vocab) = ChameleonConfig::from_json_file(&dir().join("config.json")).unwrap();
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("generation.json")).unwrap())
            .unwrap();
    let id = |k: &str| g[k].as_u64().unwrap() as u32;
    assert_eq!(vocab.image_start, id("image_start"));
    assert_eq!(vocab.image_end, id("image_end"));
    assert_eq!(vocab.eol, id("eol"));
    assert_eq!(vocab.eot, id("eot"));
    assert_eq!(vocab.size_base, id("size_token_base"));
    assert_eq!(
        vocab.codebook_size(),
        g["codebook_size"].as_u64().unwrap() as usize
    );
    assert_eq!(vocab.image_ids[0], id("image_token_first"));
    assert_eq!(*vocab.image_ids.last().unwrap(), id("image_token_last"));
    let last = *vocab.image_ids.last().unwrap();
    assert_eq!(vocab.code_of(last), Some(vocab.codebook_size() - 1));
    assert_eq!(vocab.code_of(vocab.eol), None);
}

#[test]
fn a_checkpoint_with_a_wrong_shape_or_a_missing_key_is_refused_by_name() {
    let d = dir();
    let tmp = std::env::temp_dir().join(format!("cham-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    // The swin model's weights under the pre-norm model's config: every shape differs.
    let err = load_files(
        &d.join("config.json"),
        &[d.join("swin").join("model.safetensors")],
        &device(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("shape mismatch for 'model.embed_tokens.weight'"),
        "{err}"
    );
    let missing = load(Path::new(&tmp), &device()).unwrap_err().to_string();
    assert!(missing.contains("model.safetensors"), "{missing}");
    std::fs::remove_dir_all(&tmp).ok();
}

/// Host-engine logits of `ids`: a prefill of the first half, then one token per step.
fn host_logits(model: &HostChameleon, ids: &[u32]) -> Vec<f32> {
    let split = ids.len() / 2;
    let mut cache = model.new_cache(1, ids.len());
    let first: Vec<usize> = (0..split).collect();
    let mut got = model
        .extend(
            &ids[..split],
            &first,
            &Visibility::causal(split),
            &mut cache,
        )
        .logits;
    cache.commit_all();
    for (p, &t) in ids.iter().enumerate().skip(split) {
        got.extend(
            model
                .extend(&[t], &[p], &Visibility::causal(1), &mut cache)
                .logits,
        );
        cache.commit_all();
    }
    got
}

#[test]
fn host_engine_matches_transformers_in_f32_for_every_layout_and_block_order() {
    let d = dir();
    let cases = [
        (load(&d, &device()).unwrap(), "input_ids", "logits"),
        (
            load(&d, &device()).unwrap(),
            "input_ids_anole",
            "logits_anole",
        ),
        (
            load_files(
                &d.join("config.json"),
                &[d.join("model_lumina_layout.safetensors")],
                &device(),
            )
            .unwrap(),
            "input_ids",
            "logits",
        ),
        (
            load(&d.join("swin"), &device()).unwrap(),
            "input_ids",
            "logits_swin",
        ),
    ];
    for (model, ids, logits) in cases {
        let host = HostChameleon::from_burn(&model, WeightDtype::F32);
        let (ids, want) = reference(ids, logits);
        let diff = max_diff(&host_logits(&host, &ids), &want);
        assert!(diff < TOLERANCE, "{logits}: max |Δ| {diff}");
    }
}

#[test]
fn host_engine_cfg_rows_share_tokens_and_bf16_weights_stay_close() {
    let model = load(&dir(), &device()).unwrap();
    let (ids, want) = reference("input_ids", "logits");
    let f32_host = HostChameleon::from_burn(&model, WeightDtype::F32);
    // Two batch rows fed the same tokens give the same logits in both rows.
    let mut cache = f32_host.new_cache(2, ids.len());
    let n = ids.len();
    let pos: Vec<usize> = (0..n).collect();
    let two = f32_host
        .extend(&ids, &pos, &Visibility::causal(n), &mut cache)
        .logits;
    let (a, b) = two.split_at(two.len() / 2);
    assert!(max_diff(a, &want) < TOLERANCE && max_diff(a, b) == 0.0);
    let bf16 = HostChameleon::from_burn(&model, WeightDtype::Bf16);
    let diff = max_diff(&host_logits(&bf16, &ids), &want);
    let spread = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        diff > 0.0 && diff < 0.05 * spread.max(1.0),
        "bf16 max |Δ| {diff} (logit scale {spread})"
    );
}

#[test]
fn meta_layout_with_adjacent_pair_rows_loads_to_the_hf_models_logits() {
    use lantern_models::burn::tensor::TensorData;
    use lantern_models::chameleon::load::{half_to_pairs, load_meta};
    use lantern_models::checkpoint::write_safetensors;
    let d = dir();
    let (cfg, _) = ChameleonConfig::from_json_file(&d.join("config.json")).unwrap();
    let (h, hk, hd) = (
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim(),
    );
    let hf = read_tensor_data(&d.join("model.safetensors")).unwrap();
    let vals = |k: &str| hf[k].clone().try_into_vec_as::<f32>().unwrap();
    let perm = half_to_pairs(hd);
    // Meta keeps one qk-norm vector per model-parallel rank: give every head head 0's, in both.
    let (mut hf_out, mut meta_out) = (Vec::new(), Vec::new());
    for (k, t) in &hf {
        let shape = t.shape().to_vec();
        let mut v = vals(k);
        let meta_key = k
            .replace("model.layers.", "layers.")
            .replace("self_attn.q_proj", "attention.wq")
            .replace("self_attn.k_proj", "attention.wk")
            .replace("self_attn.v_proj", "attention.wv")
            .replace("self_attn.o_proj", "attention.wo")
            .replace("self_attn.q_norm", "attention.q_normalization")
            .replace("self_attn.k_norm", "attention.k_normalization")
            .replace("mlp.gate_proj", "feed_forward.w1")
            .replace("mlp.up_proj", "feed_forward.w3")
            .replace("mlp.down_proj", "feed_forward.w2")
            .replace("post_attention_layernorm", "ffn_norm")
            .replace("input_layernorm", "attention_norm")
            .replace("model.embed_tokens", "tok_embeddings")
            .replace("model.norm", "norm")
            .replace("lm_head", "output");
        let mut meta_v = v.clone();
        let mut meta_shape = shape.clone();
        if k.contains("_norm.") && k.contains("self_attn") {
            let first: Vec<f32> = v[..hd].to_vec();
            v = first.iter().copied().cycle().take(v.len()).collect();
            meta_v = perm.iter().map(|&j| first[j]).collect();
            meta_shape = vec![hd];
        } else if k.contains("q_proj") || k.contains("k_proj") {
            let heads = if k.contains("q_proj") { h } else { hk };
            let d_in = shape[1];
            meta_v = (0..heads * hd)
                .flat_map(|r| {
                    let src = (r / hd) * hd + perm[r % hd];
                    v[src * d_in..(src + 1) * d_in].to_vec()
                })
                .collect();
        }
        hf_out.push((k.clone(), TensorData::new(v, shape)));
        meta_out.push((meta_key, TensorData::new(meta_v, meta_shape)));
    }
    let tmp = std::env::temp_dir().join(format!("cham-meta-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    write_safetensors(&tmp.join("model.safetensors"), &hf_out).unwrap();
    write_safetensors(&tmp.join("consolidated.safetensors"), &meta_out).unwrap();
    std::fs::copy(d.join("config.json"), tmp.join("config.json")).unwrap();
    let params = serde_json::json!({
        "dim": cfg.hidden_size, "n_layers": cfg.num_hidden_layers, "n_heads": h,
        "n_kv_heads": hk, "norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta,
        "multiple_of": 256, "max_seq_len": cfg.max_position_embeddings
    });
    std::fs::write(tmp.join("params.json"), params.to_string()).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    let vocabulary = serde_json::from_value(config["vocabulary_map"].clone()).unwrap();
    let via_hf = load(&tmp, &device()).unwrap();
    let via_meta = load_meta(
        &tmp.join("consolidated.safetensors"),
        &tmp.join("params.json"),
        &vocabulary,
        &device(),
    )
    .unwrap();
    let (ids, _) = reference("input_ids", "logits");
    let diff = max_diff(&full_logits(&via_meta, &ids), &full_logits(&via_hf, &ids));
    std::fs::remove_dir_all(&tmp).ok();
    assert!(diff < 1e-5, "max |Δ| {diff}");
}
