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

#[test]
fn packing_straight_from_the_files_equals_packing_the_burn_model() {
    let d = dir();
    let (ids, _) = reference("input_ids", "logits");
    let model = load(&d, &device()).unwrap();
    for dtype in [WeightDtype::F32, WeightDtype::Bf16] {
        let direct = HostChameleon::load(&d, dtype).unwrap();
        let via_burn = HostChameleon::from_burn(&model, dtype);
        assert_eq!(direct.step_bytes(), via_burn.step_bytes());
        let diff = max_diff(&host_logits(&direct, &ids), &host_logits(&via_burn, &ids));
        assert_eq!(diff, 0.0, "{dtype:?}: the same packed values");
    }
    // Refused by key name as the burn loader refuses: the swin model's weights under this config.
    let tmp = std::env::temp_dir().join(format!("cham-direct-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(d.join("config.json"), tmp.join("config.json")).unwrap();
    std::fs::copy(
        d.join("swin/model.safetensors"),
        tmp.join("model.safetensors"),
    )
    .unwrap();
    let err = HostChameleon::load(&tmp, WeightDtype::F32)
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&tmp).ok();
    assert!(
        err.contains("shape mismatch for 'model.embed_tokens.weight'"),
        "{err}"
    );
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
fn stacked_sequences_of_different_prompt_lengths_decode_like_separate_ones() {
    use lantern_models::cpu::HostKvCache;
    let model = load(&dir(), &device()).unwrap();
    let (ids, _) = reference("input_ids", "logits");
    let host = HostChameleon::from_burn(&model, WeightDtype::F32);
    let (long, short) = (ids.len() - 3, 2.min(ids.len() - 4));
    let next = &ids[long..];
    let prefill = |prompt: &[u32]| {
        let mut c = host.new_cache(1, ids.len());
        let pos: Vec<usize> = (0..prompt.len()).collect();
        host.extend(prompt, &pos, &Visibility::causal(prompt.len()), &mut c);
        c.commit_all();
        c
    };
    let (mut a, mut b) = (prefill(&ids[..long]), prefill(&ids[..short]));
    let mut both = HostKvCache::stack(&[&a, &b], long + next.len());
    let step = |c: &mut HostKvCache, starts: &[usize]| {
        let pos: Vec<usize> = starts
            .iter()
            .flat_map(|s| (0..next.len()).map(move |i| s + i))
            .collect();
        let vis = Visibility::causal(next.len());
        host.extend(next, &pos, &vis, c).logits
    };
    // Row 1's prompt is padded to row 0's length: its tokens keep their own rotary positions
    // and never see the padding.
    let joint = step(&mut both, &[long, short]);
    let separate = [step(&mut a, &[long]), step(&mut b, &[short])].concat();
    let diff = max_diff(&joint, &separate);
    assert!(diff < 1e-5, "two-row forward differs by {diff}");
    let shifted = step(&mut prefill(&ids[..short]), &[long]);
    assert!(
        max_diff(&joint[joint.len() / 2..], &shifted) > 1e-3,
        "the padded row must not run at the longer row's positions"
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

/// Writes a drafter folder (LANTERN's keys) whose fc passes the token embedding through
/// (`fc = [I | 0]`, or `[I | scale·I]` to mix in the features) and whose layer is the fixture
/// target's layer 0, and a one-layer target folder with the same layer 0.
fn one_layer_pair(tmp: &Path, feature_scale: f32) -> (PathBuf, PathBuf) {
    use lantern_models::checkpoint::write_safetensors;
    let d = dir();
    let hf = read_tensor_data(&d.join("model.safetensors")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    config["num_hidden_layers"] = 1.into();
    let width = config["hidden_size"].as_u64().unwrap() as usize;
    let (drafter, target) = (tmp.join("drafter"), tmp.join("target"));
    for p in [&drafter, &target] {
        std::fs::create_dir_all(p).unwrap();
        std::fs::write(p.join("config.json"), config.to_string()).unwrap();
    }
    let layer0 = |k: &String| k.starts_with("model.layers.0.");
    let target_tensors: Vec<(String, TensorData)> = hf
        .iter()
        .filter(|(k, _)| layer0(k) || !k.starts_with("model.layers."))
        .map(|(k, t)| (k.clone(), t.clone()))
        .collect();
    write_safetensors(&target.join("model.safetensors"), &target_tensors).unwrap();
    let mut fc = vec![0f32; width * 2 * width];
    for i in 0..width {
        fc[i * 2 * width + i] = 1.0;
        fc[i * 2 * width + width + i] = feature_scale;
    }
    let mut drafter_tensors: Vec<(String, TensorData)> = hf
        .iter()
        .filter(|(k, _)| layer0(k))
        .map(|(k, t)| (k.trim_start_matches("model.").to_string(), t.clone()))
        .collect();
    drafter_tensors.push((
        "embed_tokens.weight".into(),
        hf["model.embed_tokens.weight"].clone(),
    ));
    drafter_tensors.push(("fc.weight".into(), TensorData::new(fc, [width, 2 * width])));
    drafter_tensors.push((
        "fc.bias".into(),
        TensorData::new(vec![0f32; width], [width]),
    ));
    write_safetensors(&drafter.join("model.safetensors"), &drafter_tensors).unwrap();
    (drafter, target)
}

#[test]
fn drafter_loads_by_lanterns_keys_and_runs_the_targets_layer_with_input_norm() {
    use lantern_models::chameleon::load::load_drafter;
    use lantern_models::cpu::HostChameleonDrafter;
    let tmp = std::env::temp_dir().join(format!("cham-drafter-{}", std::process::id()));
    let (drafter_dir, target_dir) = one_layer_pair(&tmp, 0.0);
    let drafter = load_drafter(&drafter_dir, &device()).unwrap();
    let target = load(&target_dir, &device()).unwrap();
    let (ids, _) = reference("input_ids", "logits");
    let n = ids.len();
    let d = drafter.config().hidden_size;
    let dev = device();
    // With fc = [I | 0] the drafter is the target's layer 0 on the token embeddings; the
    // one-layer target adds only its final norm.
    let features = Tensor::<3>::zeros([1, n, d], &dev);
    let positions: Vec<usize> = (0..n).collect();
    let out = drafter.extend(
        features,
        tokens(&ids, &dev),
        &positions,
        &Visibility::causal(n),
        None,
    );
    let out = host(out);
    let norm_w: Vec<f32> = read_tensor_data(&target_dir.join("model.safetensors")).unwrap()
        ["model.norm.weight"]
        .clone()
        .try_into_vec_as()
        .unwrap();
    let eps = target.config().rms_norm_eps as f32;
    let normed: Vec<f32> = out
        .chunks(d)
        .flat_map(|r| {
            let rms = (r.iter().map(|v| v * v).sum::<f32>() / d as f32 + eps).sqrt();
            r.iter()
                .zip(&norm_w)
                .map(move |(v, w)| v / rms * w)
                .collect::<Vec<_>>()
        })
        .collect();
    let want = host(target.forward_full(tokens(&ids, &dev)).hidden);
    let diff = max_diff(&normed, &want);
    assert!(diff < TOLERANCE, "max |Δ| {diff}");

    // burn and host engine agree when the features matter too, KV-cached over a tree.
    let (mixed_dir, _) = one_layer_pair(&tmp.join("mixed"), 0.5);
    let drafter = load_drafter(&mixed_dir, &device()).unwrap();
    let host_drafter = HostChameleonDrafter::from_burn(&drafter, WeightDtype::F32);
    let feats: Vec<f32> = (0..n * d)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let vis = Visibility::tree(&(0..n).map(|i| i.checked_sub(2)).collect::<Vec<_>>());
    let burn_out = host(drafter.extend(
        Tensor::from_data(TensorData::new(feats.clone(), [1, n, d]), &dev),
        tokens(&ids, &dev),
        &positions,
        &vis,
        Some(&mut drafter.new_cache(1, n)),
    ));
    let mut cache = host_drafter.new_cache(1, n);
    let host_out = host_drafter.extend(&feats, &ids, &positions, &vis, &mut cache);
    std::fs::remove_dir_all(&tmp).ok();
    let diff = max_diff(&host_out, &burn_out);
    assert!(diff < TOLERANCE, "host vs burn drafter: max |Δ| {diff}");
}
