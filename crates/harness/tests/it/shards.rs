//! Sweeps beyond one machine and one file: two shards merged by `lantern report` give the rows of
//! one unsharded run; `--set` overrides are validated like the file and recorded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lantern_harness::config::SweepConfig;
use lantern_harness::plan::expand;
use lantern_harness::records::{merge_journals, read_parquet};
use lantern_harness::report::write_report;
use lantern_harness::runner::{run_sweep, SweepOptions};
use lantern_harness::shard::Shard;

fn fixtures() -> PathBuf {
    lantern_models::fixtures::llamagen_tiny()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lantern-shards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SWEEP: &str = r#"
name = "sharded"
[model]
preset = "fixture"
[sampling]
temperature = [0.0, 1.0]
cfg = 3.0
[data]
classes = [3]
seeds = 2
[quality]
enabled = false
[[strategy]]
kind = "ar"
[[strategy]]
kind = "sd"
tree = "chain:3"
[[strategy]]
kind = "lantern"
tree = "chain:3"
k = 10
delta = 0.2
[[strategy]]
kind = "sjd"
window = 4
[[strategy]]
kind = "zipar"
window = 2
"#;

/// What must agree between runs: the image and how it was made, not the timings.
type Row = (String, Option<u32>, u64, Vec<u32>, u32, String);

fn rows(dir: &Path) -> BTreeSet<Row> {
    merge_journals(dir)
        .unwrap()
        .records
        .into_iter()
        .map(|r| {
            (
                r.run_id,
                r.class,
                r.seed,
                r.tokens,
                r.steps,
                format!("{:.6}", r.tau),
            )
        })
        .collect()
}

fn opts(root: &Path, shard: Option<Shard>) -> SweepOptions {
    SweepOptions {
        results_root: root.to_path_buf(),
        progress: false,
        shard,
    }
}

#[test]
fn two_shards_and_a_report_equal_one_run() {
    let _machine = crate::machine();
    let cfg = SweepConfig::parse(SWEEP, Path::new("configs/sharded.toml")).unwrap();
    let configs = expand(&cfg).len();
    let (one, two) = (tmp("one"), tmp("two"));
    let whole = run_sweep(&cfg, &opts(&one, None)).unwrap();
    let mut generated = 0;
    for index in 0..2 {
        let shard = Shard { index, count: 2 };
        let out = run_sweep(&cfg, &opts(&two, Some(shard))).unwrap();
        assert!(out.generated > 0, "shard {index} got no configuration");
        generated += out.generated;
        assert!(out
            .dir
            .join(format!("journal.shard-{index}-of-2.jsonl"))
            .is_file());
        assert!(
            !out.dir.join("tables.md").exists(),
            "a shard leaves reports to `report`"
        );
    }
    assert_eq!(generated, whole.generated);
    let merged_dir = two.join("sharded");
    write_report(&merged_dir, false).unwrap();
    assert_eq!(
        rows(&merged_dir),
        rows(&whole.dir),
        "the same images, made the same way"
    );
    for file in ["runs.parquet", "summary.parquet"] {
        let (a, b) = (
            read_parquet(&whole.dir.join(file)).unwrap(),
            read_parquet(&merged_dir.join(file)).unwrap(),
        );
        assert_eq!(a.height(), b.height(), "{file}");
        assert_eq!(a.get_column_names(), b.get_column_names(), "{file}");
    }
    assert_eq!(
        read_parquet(&merged_dir.join("summary.parquet"))
            .unwrap()
            .height(),
        configs
    );
    let tables = std::fs::read_to_string(merged_dir.join("tables.md")).unwrap();
    assert!(
        tables.contains("Merged from 2 journals (0 duplicate"),
        "{tables}"
    );

    // Greedy rows: exact SD and SJD reproduce AR's tokens, and the table says so.
    let summary = read_parquet(&merged_dir.join("summary.parquet")).unwrap();
    let strategy = summary.column("strategy").unwrap().str().unwrap().clone();
    let temperature = summary
        .column("temperature")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    let equals = summary.column("equals_ar").unwrap().f64().unwrap().clone();
    for i in 0..summary.height() {
        let s = strategy.get(i).unwrap();
        match (temperature.get(i), s) {
            (Some(0.0), "sd" | "sjd") => assert_eq!(equals.get(i), Some(1.0), "{s}"),
            (Some(0.0), "ar") | (Some(1.0), _) => assert_eq!(equals.get(i), None, "{s}"),
            _ => assert!(equals.get(i).is_some(), "{s}"),
        }
    }
    assert!(
        tables.contains("Greedy check: every exact configuration"),
        "{tables}"
    );

    // A shard journal that repeats an image is merged once; one that contradicts it is reported.
    let journal = merged_dir.join("journal.shard-0-of-2.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let first = text.lines().next().unwrap().to_string();
    std::fs::write(merged_dir.join("journal.copy.jsonl"), format!("{first}\n")).unwrap();
    let mut bad: serde_json::Value = serde_json::from_str(&first).unwrap();
    bad["tokens"][0] = (bad["tokens"][0].as_u64().unwrap() + 1).into();
    std::fs::write(merged_dir.join("journal.zbad.jsonl"), format!("{bad}\n")).unwrap();
    let merged = merge_journals(&merged_dir).unwrap();
    assert_eq!(merged.records.len(), rows(&whole.dir).len());
    assert_eq!((merged.duplicates, merged.conflicts.len()), (1, 1));
    write_report(&merged_dir, false).unwrap();
    let tables = std::fs::read_to_string(merged_dir.join("tables.md")).unwrap();
    assert!(tables.contains("1 conflicting duplicates"), "{tables}");

    // A zstd-compressed journal (how the reference results are committed) reads as the plain one.
    let packed = merged_dir.join("journal.shard-0-of-2.jsonl.zst");
    std::fs::write(
        &packed,
        zstd::stream::encode_all(text.as_bytes(), 19).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(&journal).unwrap();
    let again = merge_journals(&merged_dir).unwrap();
    let tokens = |m: &lantern_harness::records::Merged| -> Vec<Vec<u32>> {
        m.records.iter().map(|r| r.tokens.clone()).collect()
    };
    assert_eq!(tokens(&again), tokens(&merged));
    assert_eq!((again.duplicates, again.conflicts.len()), (1, 1));
}

#[test]
fn set_overrides_are_validated_and_recorded() {
    let _machine = crate::machine();
    let dir = tmp("set");
    let file = dir.join("sweep.toml");
    std::fs::write(&file, SWEEP).unwrap();
    let sets = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cfg = SweepConfig::load_with(
        &file,
        &sets(&[
            "data.seeds=1",
            "strategy[2].delta=0.05",
            "name=\"overridden\"",
        ]),
    )
    .unwrap();
    assert_eq!(cfg.data.seeds, 1);
    assert_eq!(cfg.name(), "overridden");
    let lantern = cfg.strategy_grid(2).unwrap();
    assert_eq!(lantern[0].delta, Some(0.05));
    for (set, needles) in [
        ("data.seeds=0", &["data.seeds", "≥ 1"][..]),
        ("strategy[2].delta=2", &["strategy[2].delta", "[0, 1]"]),
        ("model.bogus=1", &["--set model.bogus=1", "bogus"]),
        ("strategy[9].k=1", &["strategy[9]", "5 [[strategy]] tables"]),
        ("data.seeds", &["key=value"]),
    ] {
        let err = SweepConfig::load_with(&file, &sets(&[set]))
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(err.contains(n), "--set {set}: {err:?} lacks {n:?}");
        }
        assert!(err.contains("sweep.toml"), "{err}");
    }
    // A preset replaced by explicit files: the shipped config runs on other checkpoints.
    let fx = fixtures();
    let files = sets(&[
        "model.preset=",
        &format!("model.gpt={}", fx.join("gpt_c2i.pt").display()),
        "model.gpt_config=",
    ]);
    let err = SweepConfig::load_with(&file, &files)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.gpt_config"), "{err}");

    let cfg = SweepConfig::load_with(&file, &sets(&["data.seeds=1"])).unwrap();
    let out = run_sweep(&cfg, &opts(&dir, None)).unwrap();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["overrides"][0], "data.seeds=1");
}
