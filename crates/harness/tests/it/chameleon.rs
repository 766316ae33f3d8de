//! Sweeps on a Chameleon-family target (the fixture `chameleon-tiny`): the family read from the
//! checkpoint's config and named in every record, captions tokenised into prompts, every strategy
//! kind end to end across forced EOL tokens (greedy lossless methods equal greedy AR), Anole's
//! convention by a key, and inputs that do not fit refused by key before anything is written.
//! Every dimension and id comes from the fixture's JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lantern_decoding::strategy::zipar_forwards_hw;
use lantern_harness::captions::TextTokenizer;
use lantern_harness::config::SweepConfig;
use lantern_harness::records::{read_journal, Record};
use lantern_harness::runner::{plan_sweep, run_sweep, SweepOptions};

fn fixture() -> PathBuf {
    lantern_models::fixtures::chameleon_tiny()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generation(key: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture().join("generation.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()[key].clone()
}

/// `[h, w]` latent grid of a convention's fixture generation.
fn grid(key: &str) -> (usize, usize) {
    let hw = generation(key);
    (
        hw[0].as_u64().unwrap() as usize,
        hw[1].as_u64().unwrap() as usize,
    )
}

/// The fixture's `vocabulary_map` id of `name`.
fn id(name: &str) -> u32 {
    let text = std::fs::read_to_string(fixture().join("config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["vocabulary_map"][name].as_u64().unwrap() as u32
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lantern-cham-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn options(root: &Path) -> SweepOptions {
    SweepOptions {
        results_root: root.join("results"),
        progress: false,
        shard: None,
    }
}

/// The shipped fixture sweep with `overrides`.
fn shipped(overrides: &[&str]) -> SweepConfig {
    let file = repo().join("configs/fixture/chameleon.toml");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    SweepConfig::load_with(&file, &overrides).unwrap()
}

/// Asserts that every greedy record of the `kinds` has greedy AR's tokens for its prompt and seed;
/// returns how many were compared.
fn greedy_equals_ar(records: &[Record], kinds: &[&str]) -> usize {
    let greedy = |r: &&Record| r.config.temperature == 0.0;
    let ar: BTreeMap<(Option<u32>, u64), &Vec<u32>> = records
        .iter()
        .filter(greedy)
        .filter(|r| r.config.strategy == "ar")
        .map(|r| ((r.prompt, r.seed), &r.tokens))
        .collect();
    let mut compared = 0;
    // SJD's official CFG conditions on another unconditional prompt than AR's.
    let own_cfg =
        |r: &&Record| r.config.official_compat != Some(true) || r.config.strategy != "sjd";
    for r in records.iter().filter(greedy).filter(own_cfg) {
        if kinds.contains(&r.config.strategy.as_str()) {
            assert_eq!(
                &&r.tokens,
                &ar[&(r.prompt, r.seed)],
                "greedy {} = greedy AR",
                r.label
            );
            compared += 1;
        }
    }
    compared
}

#[test]
fn every_strategy_kind_runs_on_the_lumina_fixture_and_records_name_the_family() {
    let _machine = crate::machine();
    let root = tmp("lumina");
    // ZipAR at window 2 and at a window wider than any row (each row opens as the one above
    // completes: raster order).
    let cfg = shipped(&[
        "data.seeds=1",
        "sampling.temperature=[0.0, 1.0]",
        "strategy[7].window=[2, 64]",
        "strategy[3].official_compat=[false, true]",
        "strategy[4].official_compat=[false, true]",
    ]);
    let out = run_sweep(&cfg, &options(&root)).unwrap();
    let records = read_journal(&out.dir.join("journal.jsonl")).unwrap();
    let (h, w) = grid("lumina_latent_hw");
    let codes = generation("codebook_size").as_u64().unwrap() as u32;
    let kinds: BTreeSet<&str> = records.iter().map(|r| r.config.strategy.as_str()).collect();
    for kind in [
        "ar",
        "sd",
        "lantern",
        "lantern++",
        "sjd",
        "scd",
        "gsd",
        "zipar",
    ] {
        assert!(kinds.contains(kind), "{kind} ran: {kinds:?}");
    }
    for r in &records {
        assert_eq!(r.family.as_deref(), Some("lumina-mgpt"), "{}", r.label);
        assert_eq!(r.tokens.len(), h * w, "{}", r.label);
        assert!(r.tokens.iter().all(|&t| t < codes), "{}: VQ codes", r.label);
        if r.config.strategy == "zipar" {
            let window = r.config.window.unwrap() as usize;
            assert_eq!(
                r.target_forwards,
                Some(zipar_forwards_hw(h, w, window) as u32),
                "{}: ZipAR's schedule on {h} rows of {w}",
                r.label
            );
        }
        if r.config.strategy.starts_with("lantern") {
            assert_eq!(r.neighbour_source.as_deref(), Some("vqgan_codebook"));
        }
    }
    // LANTERN's Lumina quirks (static trees: p zeroed at the neighbours) and SJD's official
    // CFG run by key.
    for kind in ["lantern++", "sjd"] {
        assert!(records
            .iter()
            .any(|r| r.config.strategy == kind && r.config.official_compat == Some(true)));
    }
    // Greedy: the lossless methods reproduce AR token for token, EOLs and CFG's branch included
    // (3 exact-SD trees, 2 SJD initialisations, SCD; 2 captions × 1 seed each).
    assert_eq!(greedy_equals_ar(&records, &["sd", "sjd", "scd"]), 6 * 2);
    let raster: Vec<Record> = records
        .iter()
        .filter(|r| r.config.strategy != "zipar" || r.config.window == Some(64))
        .cloned()
        .collect();
    assert_eq!(
        greedy_equals_ar(&raster, &["zipar"]),
        2,
        "ZipAR in raster order, through place(), is AR"
    );
    let tables = std::fs::read_to_string(out.dir.join("tables.md")).unwrap();
    assert!(tables.contains("(lumina-mgpt)"), "{tables}");
}

#[test]
fn anoles_convention_is_a_key_and_changes_the_images() {
    let _machine = crate::machine();
    let root = tmp("anole");
    let cfg = shipped(&[
        "model.convention=anole",
        "data.seeds=1",
        "sampling.temperature=0.0",
        "data.prompt_limit=1",
    ]);
    let (plan, _) = plan_sweep(&cfg, None).unwrap();
    let lumina = plan_sweep(
        &shipped(&[
            "data.seeds=1",
            "sampling.temperature=0.0",
            "data.prompt_limit=1",
        ]),
        None,
    )
    .unwrap()
    .0;
    assert_ne!(
        plan.identity, lumina.identity,
        "another convention, other prompts and runs"
    );
    let mut cfg = cfg;
    cfg.strategy.retain(|t| {
        matches!(
            t.get("kind").and_then(|k| k.as_str()),
            Some("ar" | "sd" | "zipar")
        )
    });
    let out = run_sweep(&cfg, &options(&root)).unwrap();
    let records = read_journal(&out.dir.join("journal.jsonl")).unwrap();
    let (h, w) = grid("anole_latent_hw");
    assert!(!records.is_empty());
    for r in &records {
        assert_eq!(r.family.as_deref(), Some("anole"));
        assert_eq!(r.tokens.len(), h * w);
    }
    assert_eq!(
        greedy_equals_ar(&records, &["sd"]),
        3,
        "3 exact-SD trees, 1 image each"
    );
}

#[test]
fn captions_become_the_text_tokenizers_ids_and_the_ids_make_the_run_ids() {
    let _machine = crate::machine();
    let root = tmp("tokenizer");
    let words = ["\u{2581}w03", "\u{2581}w17", "<unk>"];
    let vocab: serde_json::Map<String, serde_json::Value> = words
        .iter()
        .map(|w| (w.to_string(), id(w).into()))
        .collect();
    let tokenizer = |vocab: &serde_json::Map<String, serde_json::Value>, name: &str| {
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "post_processor": null, "decoder": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}",
                              "prepend_scheme": "always", "split": true},
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
        });
        let file = root.join(name);
        std::fs::write(&file, json.to_string()).unwrap();
        file
    };
    let same = tokenizer(&vocab, "same.json");
    let t = TextTokenizer::from_file(&same).unwrap();
    assert_eq!(
        t.encode("w03 w17 w99").unwrap(),
        vec![id(words[0]), id(words[1]), id("<unk>")]
    );
    // The fixture's stand-in tokenizer gives the same ids for the shipped captions: same runs.
    let base = plan_sweep(&shipped(&[]), None).unwrap().0;
    let set = |file: &Path| format!("model.text_tokenizer={}", file.display());
    let with_file = plan_sweep(&shipped(&[&set(&same)]), None).unwrap().0;
    let mut swapped = vocab.clone();
    swapped.insert(words[0].into(), id(words[1]).into());
    swapped.insert(words[1].into(), id(words[0]).into());
    let other = tokenizer(&swapped, "other.json");
    let with_other = plan_sweep(&shipped(&[&set(&other)]), None).unwrap().0;
    let ids = |p: &lantern_harness::plan::SweepPlan| -> Vec<String> {
        p.runs.iter().map(|r| r.run_id.clone()).collect()
    };
    assert_ne!(ids(&with_other), ids(&with_file), "other ids, other runs");
    assert_eq!(
        base.identity.split("|ids:").nth(1),
        with_file.identity.split("|ids:").nth(1),
        "the same ids from a file"
    );
}

#[test]
fn chameleon_inputs_that_do_not_fit_are_refused_by_key() {
    let _machine = crate::machine();
    let root = tmp("refused");
    let opts = options(&root);
    let refused = |overrides: &[&str], needles: &[&str]| {
        let file = repo().join("configs/fixture/chameleon.toml");
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let err = match SweepConfig::load_with(&file, &overrides) {
            Err(e) => e.to_string(),
            Ok(cfg) => run_sweep(&cfg, &opts).unwrap_err().to_string(),
        };
        for n in needles {
            assert!(err.contains(n), "{n:?} missing from {err}");
        }
        assert!(!opts.results_root.join("fixture_chameleon").exists());
    };
    refused(&["model.grid=[3, 6]"], &["even", "3 × 6"]);
    refused(&["model.grid=[0, 6]"], &["model.grid", "≥ 1"]);
    refused(&["model.drafter=random"], &["model.drafter", "from-target"]);
    refused(
        &["model.convention=meta"],
        &["model.convention", "lumina, anole"],
    );
    refused(
        &["data.prompts=", "data.classes=[1]"],
        &["data.classes", "text-conditional"],
    );
    refused(&["model.grid=[4, 500]"], &["max_position_embeddings"]);
    refused(
        &["model.convention=anole", "strategy[4].official_compat=true"],
        &["strategy.official_compat", "Lumina-mGPT targets only"],
    );
    // The Chameleon keys mean nothing to a LlamaGen target.
    let llamagen = repo().join("configs/fixture/methods.toml");
    let err = SweepConfig::load_with(&llamagen, &["model.grid=[4, 4]".to_string()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.grid") && err.contains("LlamaGen"),
        "{err}"
    ); // Nor does SJD's official CFG (Lumina-mGPT's unconditional prompt).
    let cfg =
        SweepConfig::load_with(&llamagen, &["strategy[4].official_compat=true".into()]).unwrap();
    let err = match plan_sweep(&cfg, None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("SJD's official CFG planned on a LlamaGen target"),
    };
    assert!(err.contains("strategy.official_compat"), "{err}");
}
