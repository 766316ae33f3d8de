//! Disturbances the runner must survive, made by a bounded CPU hog (one spinning thread more than
//! the machine has cores):
//! - beside part of a small sweep: the images it overlapped are re-timed and flagged, and the
//!   images timed after it are quiet again (Linux only, the run-queue counters; elsewhere that
//!   test checks nothing beyond the sweep running);
//! - beside an `auto` sweep's step-cost measurement: the first in-run check (and any later one
//!   that finds the rounds off the prediction) measures again and re-chooses; the fixed trees
//!   decode what a quiet run of the same sweep decodes, and `auto` is within 10% of the best
//!   fixed tree in both runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lantern_harness::agreement;
use lantern_harness::auto::{read_map, AutoCheck, AutoChoice};
use lantern_harness::config::SweepConfig;
use lantern_harness::records::read_journal;
use lantern_harness::report::read_report;
use lantern_harness::runner::{run_sweep, SweepOptions, MAX_RECHOICES};

const SWEEP: &str = r#"
name = "disturbed"
[model]
preset = "fixture"
[sampling]
temperature = 1.0
cfg = 3.0
[data]
classes = [3]
seeds = 48
[[strategy]]
kind = "ar"
"#;

/// Spins `threads` threads until `stop` is set or `limit` passes.
fn hog(threads: usize, stop: Arc<AtomicBool>, limit: Duration) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) && t.elapsed() < limit {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                std::hint::black_box(x);
            })
        })
        .collect()
}

#[test]
fn images_timed_beside_a_cpu_hog_are_retimed_and_flagged() {
    let _machine = crate::machine();
    let root = std::env::temp_dir().join(format!("lantern-disturb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let cfg = SweepConfig::parse(SWEEP, &root.join("disturbed.toml")).unwrap();
    let opts = SweepOptions {
        results_root: root.clone(),
        progress: false,
        shard: None,
    };
    // Disturbed first half: the hog runs until the sweep has finished, bounded at 60 s.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let threads = hog(cores + 1, stop.clone(), Duration::from_secs(60));
    let disturbed = run_sweep(&cfg, &opts).unwrap();
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let loud = read_journal(&disturbed.dir.join("journal.jsonl")).unwrap();
    // The same sweep again on the quiet machine, under another name.
    let quiet_cfg =
        SweepConfig::parse(&SWEEP.replace("disturbed", "quiet"), &root.join("q.toml")).unwrap();
    let quiet = read_journal(
        &run_sweep(&quiet_cfg, &opts)
            .unwrap()
            .dir
            .join("journal.jsonl"),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(loud.len(), 48);
    if loud
        .iter()
        .all(|r| r.quiet.and_then(|q| q.wait_ms).is_none())
    {
        eprintln!("no run-queue counters on this OS: nothing to check");
        return;
    }
    // Run-queue counters advance at scheduler events, so a millisecond image may not see the
    // hog even when it ran beside it (alone ~all images are caught, beside the other tests of
    // this binary about half): a handful re-timed is the signal, none is the failure.
    let retimed = loud.iter().filter(|r| r.retimed > 0).count();
    assert!(
        retimed >= 4,
        "only {retimed} of {} images beside the hog were re-timed",
        loud.len()
    );
    // Whatever stayed disturbed says why.
    for r in loud.iter().filter(|r| r.disturbed.is_some()) {
        assert!(r.retimed >= 3, "flagged without its re-timings: {r:?}");
    }
    // Same tokens whether disturbed or not: re-timing never changes the image.
    for (a, b) in loud.iter().zip(&quiet) {
        assert_eq!((a.seed, &a.tokens), (b.seed, &b.tokens));
    }
}

/// `auto` beside a neighbour: LANTERN on two fixed chains and `auto` on the 8-layer embedded
/// model. Its step costs are measured while the hog runs (the hog stops once they are
/// written); the pilots and images then run quietly. Images are not re-timed (`retimes = 0`):
/// the check under test is auto's, and re-timings would only lengthen the run.
const AUTO_SWEEP: &str = r#"
name = "auto_disturbed"
[model]
preset = "tiny-peaked"
dtype = "f16"
[sampling]
temperature = 1.0
cfg = 3.0
[data]
classes = [0]
seeds = 10
[runtime]
pilot_images = 1
[timing]
retimes = 0
[quality]
enabled = false
[[strategy]]
kind = "ar"
[[strategy]]
kind = "lantern"
tree = ["chain:2", "chain:6", "auto"]
k = 1000
delta = 0.1
"#;

/// Runs `AUTO_SWEEP` as `name`, the hog beside its step-cost measurement when `hogged`.
fn auto_run(root: &Path, name: &str, hogged: bool) -> PathBuf {
    let text = AUTO_SWEEP.replace("auto_disturbed", name);
    let cfg = SweepConfig::parse(&text, &root.join(format!("{name}.toml"))).unwrap();
    let opts = SweepOptions {
        results_root: root.to_path_buf(),
        progress: false,
        shard: None,
    };
    let costs = root.join(name).join("verify_cost.json");
    let stop = Arc::new(AtomicBool::new(!hogged));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners = hog(cores + 1, stop.clone(), Duration::from_secs(300));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && !costs.exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let out = run_sweep(&cfg, &opts).unwrap();
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    spinners.into_iter().for_each(|t| t.join().unwrap());
    out.dir
}

#[test]
fn auto_rechooses_when_its_costs_were_measured_beside_a_hog() {
    let _machine = crate::machine();
    let root = std::env::temp_dir().join(format!("lantern-auto-hog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let loud = auto_run(&root, "auto_disturbed", true);
    let quiet = auto_run(&root, "auto_quiet", false);
    let choices: BTreeMap<String, AutoChoice> = read_map(&loud.join("auto.json"));
    let (loud, quiet) = (
        read_report(&loud).unwrap().summaries,
        read_report(&quiet).unwrap().summaries,
    );
    let _ = std::fs::remove_dir_all(&root);
    // The costs were measured beside the hog, the rounds quietly. A hog can distort the costs of
    // the trees not chosen while the chosen tree's rounds match their prediction, so the first
    // check always measures the costs and the pilot again (quietly now) and re-chooses; later
    // checks do whenever they find the rounds off the prediction beyond the noise.
    let checks = &choices.values().next().expect("one auto choice").checks;
    let first = checks.first().expect("auto checked its tree");
    let again = |c: &AutoCheck| c.remeasured_ar_step_ms.is_some() && c.rechosen.is_some();
    assert!(again(first), "{first:?}");
    for c in checks[1..]
        .iter()
        .filter(|c| c.check.disagrees())
        .take(MAX_RECHOICES)
    {
        assert!(again(c), "{c:?}");
    }
    // Fixed trees (and AR) never read the step costs: the hog changed nothing they decode (same
    // τ, exactly). Their speedups differ between the runs by the machine's noise alone (CI saw
    // chain:2 at 0.97× and 1.08× in two quiet halves), so this test does not compare them; the
    // acceptance run (experiments/harness/disturbed_methods.sh, 30 images a row) does.
    for (q, l) in quiet.iter().zip(&loud) {
        assert_eq!(q.run_id, l.run_id);
        if !agreement::is_auto(q) {
            assert_eq!((&q.label, q.tau), (&l.label, l.tau));
        }
    }
    // auto within 10% of the best fixed tree (or not told apart from that), in both runs: on this
    // flat landscape (every tree 0.8–1.0×) point values alone differ by 10% between quiet runs.
    for (run, summaries) in [("beside the hog", &loud), ("quiet", &quiet)] {
        let checks = agreement::auto_checks(summaries);
        assert_eq!(checks.len(), 1, "{run}");
        assert!(checks[0].within(), "{run}: {:?}", checks[0]);
    }
}
