//! Sweep files: every bad input is refused before work starts (naming file, key, value and what
//! is allowed, writing nothing); a smoke sweep runs end to end and its Parquet files read back
//! with the documented columns; a changed config gets new run ids.

use std::path::{Path, PathBuf};

use lantern_decoding::spec::Kind;
use lantern_harness::config::{ConfigError, SweepConfig};
use lantern_harness::plan::expand;
use lantern_harness::records::read_parquet;
use lantern_harness::runner::{model_identity, model_paths, run_sweep, HarnessError, SweepOptions};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lantern-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const GOOD: &str = r#"
name = "t"
[model]
preset = "fixture"
[sampling]
temperature = 1.0
cfg = 3.0
[data]
classes = [3]
seeds = 1
[[strategy]]
kind = "lantern"
k = [10, 20]
delta = 0.1
"#;

fn parse(text: &str) -> Result<SweepConfig, ConfigError> {
    SweepConfig::parse(text, Path::new("configs/test.toml"))
}

/// Replaces the first occurrence of `from` in the good config.
fn variant(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn bad_inputs_name_file_key_value_and_allowed() {
    let _machine = crate::machine();
    let cases: Vec<(String, &[&str])> = vec![
        ("name = [".into(), &["test.toml", "line"]),
        (
            variant("seeds = 1", "seeds = 1\nbogus = 2"),
            &["test.toml", "bogus"],
        ),
        (
            variant("temperature = 1.0", "temperature = \"hot\""),
            &["test.toml", "temperature"],
        ),
        (
            variant("k = [10, 20]", "k = 0"),
            &["strategy[0].k", "= 0", "≥ 1"],
        ),
        (
            variant("delta = 0.1", "delta = 1.5"),
            &["strategy[0].delta", "1.5", "[0, 1]"],
        ),
        (
            variant("delta = 0.1", "delta = -0.1"),
            &["strategy[0].delta", "-0.1"],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"lantern++\"\nlambda = 0.5",
            ),
            &["strategy[0].lambda", "0.5", "≥ 1"],
        ),
        (
            variant("cfg = 3.0", "cfg = 3.0\ntop_p = 0.0"),
            &["sampling.top_p", "(0, 1]"],
        ),
        (
            variant("temperature = 1.0", "temperature = -1.0"),
            &["sampling.temperature", "≥ 0"],
        ),
        (variant("seeds = 1", "seeds = 0"), &["data.seeds", "≥ 1"]),
        (
            variant("kind = \"lantern\"", "kind = \"medusa\""),
            &["strategy[0].kind", "lantern++"],
        ),
        (
            variant("kind = \"lantern\"", "kind = \"ar\""),
            &["strategy[0].", "does not apply to kind 'ar'"],
        ),
        (
            variant("delta = 0.1", "delta = 0.1\ntree = \"bush\""),
            &["strategy[0].tree", "naive_extend_57"],
        ),
        (
            GOOD.split("[[strategy]]").next().unwrap().to_string(),
            &["strategy", "at least one"],
        ),
        (
            variant("preset = \"fixture\"", "preset = \"huge\""),
            &[
                "model.preset",
                "tiny, tiny-peaked, fixture or fixture-chameleon",
            ],
        ),
        (variant("classes = [3]", "classes = []"), &["data.classes"]),
        (
            variant("k = [10, 20]", "k = []"),
            &["strategy[0].k", "non-empty list"],
        ),
        (
            variant("k = [10, 20]", "k = [10, \"many\"]"),
            &["strategy[0].k", "\"many\"", "integer"],
        ),
        (
            variant("delta = 0.1", "delta = 0.1\nrelax = \"loose\""),
            &["strategy[0].relax", "lantern, bounded"],
        ),
        (
            variant("delta = 0.1", "delta = 0.1\ntemperature = 2.0"),
            &["strategy[0]", "temperature", "unknown field"],
        ),
        (
            format!("{GOOD}[timing]\nrepeats = 0\n"),
            &["timing.repeats", "≥ 1"],
        ),
        (
            format!("{GOOD}[timing]\nretimes = 11\n"),
            &["timing.retimes", "11", "0–10"],
        ),
        (
            variant(
                "preset = \"fixture\"",
                "preset = \"fixture\"\ndtype = \"f8\"",
            ),
            &["model.dtype", "f8", "f32, bf16, f16"],
        ),
        (
            format!("{GOOD}[runtime]\nengine = \"gpu\"\n"),
            &["runtime.engine", "gpu", "auto, host, burn"],
        ),
        (
            variant("k = [10, 20]\ndelta = 0.1", "coupling = \"maximal\""),
            &["strategy[0].coupling", "does not apply to kind 'lantern'"],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"sjd\"\ninit = \"diagonal\"",
            ),
            &[
                "strategy[0].init",
                "\"diagonal\"",
                "horizontal, vertical, random",
            ],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"sjd\"\ncoupling = \"gumbel\"",
            ),
            &[
                "strategy[0].coupling",
                "does not apply to kind 'sjd'",
                "window, init",
            ],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"scd\"\ncoupling = \"soft\"",
            ),
            &["strategy[0].coupling", "\"soft\"", "maximal, gumbel"],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"gsd\"\nd_quantile = 1.5",
            ),
            &["strategy[0].d_quantile", "1.5", "[0, 1]"],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"gsd\"\nd_thr = 0.5\nd_quantile = 0.1",
            ),
            &["strategy[0].d_thr", "not both"],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"gsd\"\np_thr = 0.0",
            ),
            &["strategy[0].p_thr", "(0, 1]"],
        ),
        (
            variant(
                "kind = \"lantern\"\nk = [10, 20]\ndelta = 0.1",
                "kind = \"zipar\"\nwindow = 0",
            ),
            &["strategy[0].window", "≥ 1"],
        ),
        (
            variant("cfg = 3.0", "cfg = 3.0\ntemperature_rule = \"hot\""),
            &[
                "sampling.temperature_rule",
                "hot",
                "fixed (default), entropy",
            ],
        ),
        (
            format!("{GOOD}[runtime]\npilot_images = 0\n"),
            &["runtime.pilot_images", "≥ 1"],
        ),
        (
            variant("delta = 0.1", "delta = 0.1\ntree = \"dynamic@0\""),
            &["strategy[0].tree", "dynamic@0", "budget"],
        ),
        (
            format!("{GOOD}[quality]\nextractor = \"dinov2\"\n"),
            &["quality.extractor", "dinov2", "inception-v3-fid"],
        ),
        (
            format!("{GOOD}[quality]\nextractor = \"inception-v3-fid\"\n"),
            &[
                "quality.extractor_weights",
                "(none)",
                "inception-v3-fid weights",
            ],
        ),
        (
            format!(
                "{GOOD}[quality]\nextractor = \"clip\"\nextractor_weights = \"nowhere/clip.pt\"\n"
            ),
            &[
                "quality.extractor_weights",
                "nowhere/clip.pt",
                "an existing file",
            ],
        ),
        (
            format!("{GOOD}[quality]\nextractor_weights = \"Cargo.toml\"\n"),
            &[
                "quality.extractor_weights",
                "efficientnet-lite0 does not take",
            ],
        ),
        (
            format!("{GOOD}[quality]\nclip_activation = \"relu\"\n"),
            &["quality.clip_activation", "relu", "quick-gelu or gelu"],
        ),
        (
            variant("seeds = 1", "seeds = 1\nprompt_limit = 5"),
            &["data.prompt_limit", "nothing without `prompts`"],
        ),
        (
            format!("{GOOD}[quality]\nclip_weights = \"Cargo.toml\"\n"),
            &["quality.clip_weights", "needs captions"],
        ),
        (
            format!("{GOOD}[quality]\npr_extractor = \"vgg19\"\n"),
            &["quality.pr_extractor", "vgg19", "vgg16"],
        ),
        (
            format!("{GOOD}[quality]\npr_extractor = \"vgg16\"\n"),
            &["quality.pr_extractor_weights", "(none)", "vgg16 weights"],
        ),
        (
            format!("{GOOD}[quality]\npr_extractor_weights = \"Cargo.toml\"\n"),
            &[
                "quality.pr_extractor_weights",
                "nothing without `pr_extractor`",
            ],
        ),
        (
            format!("{GOOD}[quality]\nhps_weights = \"Cargo.toml\"\n"),
            &["quality.hps_weights", "needs captions"],
        ),
        (
            format!("{GOOD}[quality]\ninception_resize = \"lanczos\"\n"),
            &[
                "quality.inception_resize",
                "lanczos",
                "clean or pytorch-fid",
            ],
        ),
    ];
    for (text, needles) in cases {
        let err = parse(&text).expect_err(&text).to_string();
        for n in needles {
            assert!(err.contains(n), "error {err:?} lacks {n:?}");
        }
    }
    parse(GOOD).unwrap();
}

#[test]
fn model_problems_are_refused_before_anything_is_written() {
    let _machine = crate::machine();
    let root = tmp("refused");
    let opts = SweepOptions {
        results_root: root.clone(),
        progress: false,
        shard: None,
    };
    // A class the model lacks.
    let cfg = parse(&variant("classes = [3]", "classes = [3, 999]")).unwrap();
    let err = run_sweep(&cfg, &opts).unwrap_err();
    assert!(matches!(err, HarnessError::Config(_)), "{err}");
    assert!(err.to_string().contains("data.classes = 999"), "{err}");
    // A missing checkpoint.
    let text = GOOD.replace(
        "preset = \"fixture\"",
        "gpt = \"nowhere/gpt.pt\"\ngpt_config = \"GPT-B\"\ndrafter = \"random\"",
    );
    let err = run_sweep(&parse(&text).unwrap(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.gpt") && err.contains("nowhere/gpt.pt"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        0,
        "nothing is written for a refused config"
    );
}

#[test]
fn smoke_sweep_writes_documented_parquet_and_reports() {
    let _machine = crate::machine();
    let root = tmp("smoke");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml");
    let cfg = SweepConfig::load(&config).unwrap();
    let opts = SweepOptions {
        results_root: root.clone(),
        progress: false,
        shard: None,
    };
    let out = run_sweep(&cfg, &opts).unwrap();
    let specs = expand(&cfg).len();
    let images = specs * 2 * 2;
    assert_eq!(out.generated, images);

    let runs = read_parquet(&out.dir.join("runs.parquet")).unwrap();
    assert_eq!(runs.height(), images);
    for col in [
        "strategy",
        "tree",
        "k",
        "delta",
        "lambda",
        "temperature",
        "top_k",
        "top_p",
        "cfg",
        "class",
        "seed",
        "tokens",
        "steps",
        "tau",
        "latency_ms",
        "draft_ms",
        "verify_ms",
        "vq_decode_ms",
        "accepted_per_step",
        "run_id",
        "gpt_model",
        "git_commit",
        "backend",
        "device",
        "threads",
        "init",
        "coupling",
        "grouping",
        "temperature_rule",
        "tvd_emitted",
        "target_forwards",
        "drafter_forwards",
        "latencies_ms",
        "warmup",
        "peak_rss_mb",
        "equals_ar",
        "host",
        "cpu",
        "burn",
    ] {
        assert!(runs.column(col).is_ok(), "runs.parquet lacks {col}");
    }
    // Parameters read back as the decimals the config wrote.
    let delta = runs.column("delta").unwrap().f64().unwrap().clone();
    assert!((0..runs.height()).any(|i| delta.get(i) == Some(0.2)));
    assert_eq!(runs.column("cfg").unwrap().f64().unwrap().get(0), Some(3.0));
    // Drafter forwards only where a drafter runs; target forwards = steps + prefill.
    let drafter = runs
        .column("drafter_forwards")
        .unwrap()
        .u32()
        .unwrap()
        .clone();
    let target = runs
        .column("target_forwards")
        .unwrap()
        .u32()
        .unwrap()
        .clone();
    let steps = runs.column("steps").unwrap().u32().unwrap().clone();
    for i in 0..runs.height() {
        let drafted = strategy_of(&runs, i)
            .is_some_and(|s| ["sd", "lantern", "lantern++"].contains(&s.as_str()));
        assert_eq!(drafter.get(i).unwrap() > 0, drafted, "row {i}");
        assert_eq!(target.get(i), steps.get(i).map(|s| s + 1), "row {i}");
    }
    // Null where a column does not apply: k only exists for lantern and lantern++.
    let strategy = runs.column("strategy").unwrap().str().unwrap().clone();
    let k = runs.column("k").unwrap().u32().unwrap().clone();
    for i in 0..runs.height() {
        let relaxed = strategy.get(i).is_some_and(|s| s.starts_with("lantern"));
        assert_eq!(relaxed, k.get(i).is_some(), "row {i}");
    }
    let summary = read_parquet(&out.dir.join("summary.parquet")).unwrap();
    assert_eq!(summary.height(), specs);
    let speedup = summary.column("speedup").unwrap().f64().unwrap().clone();
    assert_eq!(speedup.null_count(), 0, "every row has an AR baseline");
    let tables = std::fs::read_to_string(out.dir.join("tables.md")).unwrap();
    assert!(
        tables.contains("| method |") && tables.contains("lantern++"),
        "{tables}"
    );
    assert!(out.dir.join("acceptance_lantern.png").is_file());
    assert!(out.dir.join("accepted_length_lantern.png").is_file());
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["runs"].as_array().unwrap().len(), specs);
    assert!(plan["hardware"]["cpu"].is_string() && plan["hardware"]["burn"].is_string());
    assert!(tables.contains("**Hardware.**"), "{tables}");
    assert!(out.dir.join("verify_cost.json").is_file());

    // Running again generates nothing new.
    let again = run_sweep(&cfg, &opts).unwrap();
    assert_eq!((again.generated, again.skipped), (0, images));
}

fn strategy_of(df: &polars::prelude::DataFrame, i: usize) -> Option<String> {
    df.column("strategy")
        .unwrap()
        .str()
        .unwrap()
        .get(i)
        .map(String::from)
}

#[test]
fn changed_configs_get_new_run_ids() {
    let _machine = crate::machine();
    let a = parse(GOOD).unwrap();
    let b = parse(&variant("delta = 0.1", "delta = 0.2")).unwrap();
    let id = model_identity(&model_paths(&a).unwrap());
    let ids = |c: &SweepConfig| expand(c).iter().map(|s| s.run_id(&id)).collect::<Vec<_>>();
    let (ia, ib) = (ids(&a), ids(&b));
    assert_eq!(
        ia.len(),
        3,
        "two lantern configs plus the added AR baseline"
    );
    assert_eq!(ia[0], ib[0], "the AR baseline is unchanged");
    assert_ne!(ia[1], ib[1]);
    assert_eq!(ids(&a), ia, "run ids are stable");
}

#[test]
fn training_free_grids_expand_with_their_defaults() {
    let _machine = crate::machine();
    let cfg = parse(
        r#"
name = "t"
[model]
preset = "fixture"
[sampling]
temperature_rule = ["fixed", "entropy"]
[data]
classes = [3]
seeds = 1
[[strategy]]
kind = "sjd"
init = ["vertical", "random"]
[[strategy]]
kind = "scd"
window = [4, 8]
coupling = ["maximal", "gumbel"]
[[strategy]]
kind = "gsd"
d_quantile = [0.1, 1.0]
[[strategy]]
kind = "zipar"
"#,
    )
    .unwrap();
    let specs = expand(&cfg);
    // Per temperature rule: an added AR, 2 SJD, 4 SCD, 2 GSD and 1 ZipAR configuration.
    assert_eq!(specs.len(), 2 * 10);
    let labels: Vec<String> = specs.iter().map(|s| s.label()).collect();
    assert!(
        labels.contains(&"sjd L=16 init=random".to_string()),
        "{labels:?}"
    );
    assert!(labels.contains(&"scd L=8 gumbel".to_string()), "{labels:?}");
    assert!(
        labels.contains(&"zipar L=8 entropy-T".to_string()),
        "{labels:?}"
    );
    let gsd = specs.iter().find(|s| s.strategy.kind == Kind::Gsd).unwrap();
    assert_eq!(gsd.strategy.init_name(), Some("horizontal"));
    assert_eq!(
        gsd.strategy.grouping_label().as_deref(),
        Some("G=7 p<0.15 d<q0.1")
    );
    for s in &specs {
        s.strategy.strategy().unwrap();
    }
    let ids: std::collections::HashSet<String> = specs.iter().map(|s| s.run_id("m")).collect();
    assert_eq!(
        ids.len(),
        specs.len(),
        "every configuration has its own run id"
    );
}
