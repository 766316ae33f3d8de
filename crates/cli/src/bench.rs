//! `lantern bench`: the engine benchmark. Times an AR decode step, target forwards over trees of
//! 1–64 nodes and drafter passes through the same protocol the strategies use, on every
//! requested engine and weight storage of one model set, and prints each as a ratio to the AR
//! step and to the machine's floor (bytes over measured bandwidth, or multiply-adds over the
//! measured kernel peak, whichever is larger). Writes the numbers as JSON.

use std::path::PathBuf;

use lantern_decoding::cost::{measure_step_costs, StepCosts};
use lantern_decoding::engine::{engine_of, models_sized, ModelSet};
use lantern_decoding::model::ImageCondition;
use lantern_models::backend::cpu_threads;
use lantern_models::cpu::roofline::{self, Roofline};
use lantern_models::ModelBundle;
use serde::Serialize;

use crate::models::ModelArgs;

/// Arguments of `lantern bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Models, backend and (ignored: see --engines, --dtypes) engine and weight storage.
    #[command(flatten)]
    model: ModelArgs,
    /// Engines to time, comma-separated (host, burn).
    #[arg(long, default_value = "host,burn")]
    engines: String,
    /// Host-engine weight storages to time, comma-separated (f32, bf16, f16).
    #[arg(long, default_value = "f32,bf16")]
    dtypes: String,
    /// Classifier-free guidance (two rows per forward); `--cfg false` times one row.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    cfg: bool,
    /// Timed repeats per measurement (each after a warm-up; the median is reported).
    #[arg(long, default_value_t = 7)]
    repeats: usize,
    /// Where to write the JSON.
    #[arg(long, default_value = "bench.json")]
    out: PathBuf,
}

/// One engine and weight storage, measured.
#[derive(Serialize)]
struct Row {
    engine: String,
    dtype: String,
    /// Bytes of target matrices a step streams.
    target_bytes: usize,
    /// Multiply-adds per token row of a target forward.
    target_macs: usize,
    /// Bytes of drafter matrices a drafter pass streams, its logits' head included.
    drafter_bytes: Option<usize>,
    /// Multiply-adds per element row of a drafter pass, its logits' head included.
    drafter_macs: Option<usize>,
    costs: StepCosts,
    /// The machine's limits at this step's working set (its target matrices): the better of
    /// the two readings, so the floor is the fastest the machine was seen to go.
    roofline: Roofline,
    /// The readings taken before and after the steps were timed (a shared machine's bandwidth
    /// moves between them; the spread says how far the ratios can be trusted).
    roofline_readings: [Roofline; 2],
}

/// The roofline at a `working_set` read just before and just after `timed` runs: what `timed`
/// returned, the better reading per limit, and both readings.
fn bracketed<T>(working_set: usize, timed: impl FnOnce() -> T) -> (T, Roofline, [Roofline; 2]) {
    eprintln!(
        "measuring the roofline at a {:.1} MB working set, before and after the steps…",
        working_set as f64 / 1e6
    );
    let before = roofline::measure(working_set, 5);
    let out = timed();
    let after = roofline::measure(working_set, 5);
    let best = Roofline {
        read_gbps: before.read_gbps.max(after.read_gbps),
        peak_gflops: before.peak_gflops.max(after.peak_gflops),
        ..before
    };
    (out, best, [before, after])
}

/// The report written to `--out`.
#[derive(Serialize)]
struct Report {
    model: String,
    threads: usize,
    cpu: String,
    /// The device the burn engine ran on (the CPU, or a GPU adapter and driver).
    device: String,
    isa: String,
    rows: Vec<Row>,
}

/// Step costs of `set` on `cond`: verifies of 1–64 tokens (up to half its context) and drafter
/// expansions.
fn step_costs(
    set: &dyn ModelSet,
    cond: &ImageCondition,
    cfg: bool,
    repeats: usize,
) -> Result<StepCosts, Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = [1usize, 2, 4, 8, 16, 32, 64]
        .into_iter()
        .filter(|&n| n <= set.cost_context() / 2)
        .collect();
    let expands = [1usize, 4, 10];
    let mut models = models_sized(set, set.has_drafter(), 64, 16);
    Ok(measure_step_costs(
        models.as_mut(),
        cond,
        cfg,
        &sizes,
        &expands,
        repeats,
    )?)
}

fn measure(
    bundle: &ModelBundle,
    cfg: bool,
    repeats: usize,
) -> Result<Row, Box<dyn std::error::Error>> {
    let c = bundle.gpt.config();
    let cond = match c.model_type {
        lantern_models::config::ModelType::C2i => ImageCondition::Class(0),
        lantern_models::config::ModelType::T2i => ImageCondition::Caption {
            embeddings: vec![0.0; c.cls_token_num * c.caption_dim],
            tokens: c.cls_token_num,
            dim: c.caption_dim,
            valid: None,
        },
    };
    // Matrices as the engine stores them; burn keeps f32.
    let (target_bytes, target_macs, drafter_bytes, drafter_macs) = match &bundle.host {
        Some(h) => (
            h.gpt.step_bytes(),
            h.gpt.step_macs(),
            h.drafter
                .as_ref()
                .map(|d| d.step_bytes() + h.gpt.head().bytes()),
            h.drafter
                .as_ref()
                .map(|d| d.step_macs() + h.gpt.head().macs()),
        ),
        None => {
            let h = lantern_models::cpu::HostGpt::from_burn(&bundle.gpt, bundle.dtype);
            let d = bundle
                .drafter
                .as_ref()
                .map(|d| lantern_models::cpu::HostDrafter::from_burn(d, bundle.dtype));
            (
                h.step_bytes(),
                h.step_macs(),
                d.as_ref().map(|d| d.step_bytes() + h.head().bytes()),
                d.as_ref().map(|d| d.step_macs() + h.head().macs()),
            )
        }
    };
    let (costs, roofline, roofline_readings) =
        bracketed(target_bytes, || step_costs(bundle, &cond, cfg, repeats));
    Ok(Row {
        costs: costs?,
        roofline,
        roofline_readings,
        engine: engine_of(bundle).name().into(),
        dtype: bundle.dtype.name().into(),
        target_bytes,
        target_macs,
        drafter_bytes,
        drafter_macs,
    })
}

fn print(row: &Row) {
    let (c, roof) = (&row.costs, &row.roofline);
    let ar = c.ar_step();
    let rows = c.rows;
    let [before, after] = &row.roofline_readings;
    println!(
        "\n{} engine, {} weights ({:.1} MB of target matrices, {} rows per forward, prefix {}); \
         floor: read {:.1} GB/s at this working set (before the steps {:.1}, after {:.1}), \
         f32 product peak {:.0} GFLOP/s ({:.0}, {:.0}); the AR step streams {:.1} GB/s:",
        row.engine,
        row.dtype,
        row.target_bytes as f64 / 1e6,
        rows,
        c.prefix,
        roof.read_gbps,
        before.read_gbps,
        after.read_gbps,
        roof.peak_gflops,
        before.peak_gflops,
        after.peak_gflops,
        row.target_bytes as f64 / (ar * 1e6),
    );
    println!("| step | ms | × AR step | floor ms | × floor |");
    println!("|---|---|---|---|---|");
    for &(n, ms) in &c.verify_ms {
        let floor = roof.floor_ms(row.target_bytes, rows * n * row.target_macs);
        let name = if n == 1 {
            "AR decode step".to_string()
        } else {
            format!("verify {n} tree tokens")
        };
        println!(
            "| {name} | {ms:.3} | {:.2} | {floor:.3} | {:.2} |",
            ms / ar,
            ms / floor
        );
    }
    if let (Some(root), Some(bytes), Some(macs)) =
        (c.draft_root_ms, row.drafter_bytes, row.drafter_macs)
    {
        println!(
            "| drafter root pass (catch-up + root) | {root:.3} | {:.2} | — | — |",
            root / ar
        );
        for &(r, ms) in &c.draft_expand_ms {
            let floor = roof.floor_ms(bytes, rows * r * macs);
            println!(
                "| drafter expansion, {r} element(s) + logits | {ms:.3} | {:.2} | {floor:.3} | {:.2} |",
                ms / ar,
                ms / floor
            );
        }
    }
}

/// A Chameleon-family shape to time: `--gpt random` with a `--gpt-config` JSON whose
/// `model_type` is `chameleon` (the released ids when it has no `vocabulary_map`).
fn chameleon_shape(a: &Args) -> Option<PathBuf> {
    let config = PathBuf::from(a.model.gpt_config.as_deref()?);
    let random = a.model.gpt.as_deref() == Some(std::path::Path::new("random"));
    let text = std::fs::read_to_string(&config).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    (random && v["model_type"] == "chameleon").then_some(config)
}

/// Times a random-weight Chameleon-family target of the shape in `config` on the host engine,
/// in every weight storage of `--dtypes`: Anole's 512 px layout (32 × 32 tokens; its KV caches
/// leave a 7B model's bf16 weights room in 24 GB), a 16-token caption.
fn chameleon(a: &Args, config: &std::path::Path) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    use lantern_models::chameleon::layout::{Convention, ImageLayout};
    use lantern_models::chameleon::{ChameleonConfig, ChameleonSet, ChameleonVocab};
    let shape = ChameleonConfig::shape_from_json_file(config)?;
    let vocab = ChameleonConfig::from_json_file(config)
        .map(|(_, v)| v)
        .unwrap_or_else(|_| ChameleonVocab::released());
    let mut rows = Vec::new();
    for dtype in a.dtypes.split(',') {
        let dtype = lantern_models::cpu::WeightDtype::parse(dtype)?;
        let t = std::time::Instant::now();
        let target = lantern_models::cpu::HostChameleon::random(&shape, vocab.clone(), dtype, 0);
        eprintln!(
            "made random {} weights in {:.1} s",
            dtype.name(),
            t.elapsed().as_secs_f64()
        );
        let layout = ImageLayout {
            convention: Convention::Anole,
            h: 32,
            w: 32,
            vocab: vocab.clone(),
        };
        let text: Vec<u32> = (0..16).map(|i| vocab.size_base + 100 + i).collect();
        let cond = ImageCondition::Prompt(layout.prompt(&text));
        let (target_bytes, target_macs) = (target.step_bytes(), target.step_macs());
        let set = ChameleonSet {
            target,
            drafter: None,
            drafter_is_derived: false,
            vq: None,
            layout,
            dtype,
        };
        // The floor's bandwidth is read beside the weights, so at most 4 GiB of working set
        // (far beyond any cache: memory-bound like the weights themselves).
        let working_set = target_bytes.min(4 << 30);
        let (costs, roofline, roofline_readings) =
            bracketed(working_set, || step_costs(&set, &cond, a.cfg, a.repeats));
        let row = Row {
            roofline,
            roofline_readings,
            engine: "host".into(),
            dtype: dtype.name().into(),
            target_bytes,
            target_macs,
            drafter_bytes: None,
            drafter_macs: None,
            costs: costs?,
        };
        print(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// Runs the benchmark.
pub fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(config) = chameleon_shape(&a) {
        let rows = chameleon(&a, &config)?;
        return write(&a, config.display().to_string(), rows);
    }
    let paths = a.model.paths()?;
    println!(
        "{} threads, {} kernels",
        cpu_threads(),
        lantern_models::cpu::isa::isa().name()
    );
    let mut rows = Vec::new();
    for engine in a.engines.split(',') {
        let dtypes: Vec<&str> = if engine == "host" {
            a.dtypes.split(',').collect()
        } else {
            vec!["f32"]
        };
        for dtype in dtypes {
            let args = ModelArgs {
                engine: engine.to_string(),
                dtype: dtype.to_string(),
                ..a.model.clone()
            };
            let bundle = args.load(paths.clone(), true, 0)?;
            let row = measure(&bundle, a.cfg, a.repeats)?;
            print(&row);
            rows.push(row);
        }
    }
    write(&a, paths.gpt.display().to_string(), rows)
}

/// Writes the report to `--out`.
fn write(a: &Args, model: String, rows: Vec<Row>) -> Result<(), Box<dyn std::error::Error>> {
    let report = Report {
        model,
        threads: cpu_threads(),
        cpu: lantern_harness::runner::device_description("cpu"),
        device: lantern_harness::runner::device_description(&a.model.backend),
        isa: lantern_models::cpu::isa::isa().name().into(),
        rows,
    };
    std::fs::write(&a.out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
