//! A sweep killed with SIGKILL and re-run finishes the rest without duplicating or losing a row.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
}

#[test]
fn killed_sweep_resumes_without_loss_or_duplicates() {
    let root = std::env::temp_dir().join(format!("lantern-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let config = root.join("resume.toml");
    std::fs::write(
        &config,
        "name = \"resume\"\n[model]\npreset = \"fixture\"\n[data]\nclasses = [1, 2, 3, 4]\nseeds = 40\n\
         [[strategy]]\nkind = \"ar\"\n[[strategy]]\nkind = \"sd\"\ntree = \"dynamic\"\n",
    )
    .unwrap();
    let fixtures = lantern_models::fixtures::root();
    let results = root.join("results");
    let run = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lantern"));
        c.args([
            "sweep",
            config.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ])
        .env("LANTERN_FIXTURES", &fixtures);
        c
    };
    let journal = results.join("resume").join("journal.jsonl");

    let mut child = run().spawn().unwrap();
    let start = Instant::now();
    while lines(&journal).len() < 170 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep finished before it could be killed"
        );
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = lines(&journal).len();
    assert!(before < 320, "killed before the end ({before} rows)");

    let status = run().status().unwrap();
    assert!(status.success());
    let rows = lines(&journal);
    assert_eq!(rows.len(), 2 * 4 * 40, "every image exactly once");
    let keys: HashSet<(String, u64, u64)> = rows
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["run_id"].as_str().unwrap().to_string(),
                v["class"].as_u64().unwrap(),
                v["seed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys.len(), rows.len(), "no duplicates");
    assert!(results.join("resume").join("runs.parquet").is_file());
}
