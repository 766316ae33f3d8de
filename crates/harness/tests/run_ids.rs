//! Every shipped config parses to the run ids its recorded results carry (`results/<name>/plan.json`),
//! so that a redesign of the config or spec types cannot silently orphan recorded images.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lantern_harness::config::SweepConfig;
use lantern_harness::plan::expand;
use lantern_harness::runner::{model_paths, sweep_identity};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run ids as a results folder's plan.json recorded them (either layout).
fn recorded_ids(plan: &Path) -> BTreeSet<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let runs = v.get("runs").unwrap_or(&v).as_array().unwrap().clone();
    runs.iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn shipped_configs_keep_the_run_ids_of_their_results() {
    // As `just sweep` runs: from the repository root, with the default fixture folder (model
    // config paths are part of the identity).
    std::env::set_current_dir(repo()).unwrap();
    std::env::remove_var("LANTERN_FIXTURES");
    std::env::remove_var("LANTERN_TINY");
    let mut checked = 0;
    for dir in ["configs", "configs/fixture", "configs/paper"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let cfg = SweepConfig::load(&path).unwrap();
            let plan = Path::new("results").join(cfg.name()).join("plan.json");
            if !plan.is_file() || cfg.data.prompts.is_some() {
                continue;
            }
            let identity = sweep_identity(&cfg, &model_paths(&cfg).unwrap(), None);
            let ids: BTreeSet<String> = expand(&cfg).iter().map(|s| s.run_id(&identity)).collect();
            assert_eq!(ids, recorded_ids(&plan), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} shipped configs have results");
}
