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
